package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"mailautoconf/autodiscover"
	"mailautoconf/internal/address"
	"mailautoconf/internal/limit"
	"mailautoconf/internal/web"
)

// front is the one middleware every routed request passes through. echo
// wraps the handler in its middlewares anew for every request (a closure
// per middleware), so the steps are done here in order instead of as
// separate middlewares: recover from panics, the per-client rate limit,
// the POX redirect to HTTPS, the body limit, then the handler; and around
// all of it the access log and the metrics.
//
// Every request is counted and logged, a request that panicked too: one
// access line with method, path, status, duration, client family and
// domain. The query string is never logged (it holds addresses), the local
// part of an address only when the configuration asks for it, and request
// headers (Authorization: Basic …, which Outlook and Thunderbird send to
// Autodiscover) never.
//
// The handlers below it see a *web.Context, recycled through a pool, in
// which they leave what the log and the metrics need (web.Note,
// web.SetOutcome).
func (s *Server) front() echo.MiddlewareFunc {
	limited, expensive := s.requestBudget, s.expensiveBudget
	bodyLimit := middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: fmt.Sprintf("%dB", MaxBodyBytes),
		// Autodiscover enforces its own, smaller limit and answers an
		// oversized body with an Autodiscover error document.
		Skipper: autodiscover.SkipBodyLimit,
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			wc, _ := s.ctxPool.Get().(*web.Context)
			if wc == nil {
				wc = new(web.Context)
			}
			wc.Context, wc.Info, wc.Budget = c, web.Info{}, expensive
			if err := s.guard(wc, next, limited, bodyLimit); err != nil {
				c.Error(err)
			}
			info := wc.Info
			wc.Context, wc.Info = nil, web.Info{}
			s.ctxPool.Put(wc)
			s.logRequest(c, info, start)
			return nil
		}
	}
}

// guard runs the steps before the handler, and the handler. A panic
// becomes a logged error and a bare 500: the client never sees a stack
// trace.
func (s *Server) guard(c echo.Context, next echo.HandlerFunc, limited *budget, bodyLimit echo.MiddlewareFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic in handler", "path", s.logged(c.Request().URL.Path), "panic", s.logged(fmt.Sprint(r)))
			err = echo.NewHTTPError(http.StatusInternalServerError)
		}
	}()
	r := c.Request()
	if limited != nil && !s.routeOf.Ops(c.Path()) {
		if ok, retry := limited.Spend(r); !ok {
			return web.TooManyRequests(c, retry)
		}
	}
	if u, ok := s.poxRedirect(r); ok {
		return c.Redirect(http.StatusFound, u)
	}
	if r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) {
		// Nothing to limit (every GET): skip the body limit's reader.
		return next(c)
	}
	return bodyLimit(next)(c)
}

// budget is a token bucket per client: an IPv4 address, an IPv6 network
// of limits.ipv6_prefix bits (golang.org/x/time/rate through echo's store,
// which also expires idle entries so the table cannot grow without bound).
// The server has two: one for every request, one for expensive answers
// (web.Budget).
type budget struct {
	store *middleware.RateLimiterMemoryStore
	retry string
	key   func(*http.Request) string
}

// newBudget returns the budget of perSecond tokens per client, burst at
// once, or nil when perSecond is negative (off; the configuration turns 0
// into the default).
func (s *Server) newBudget(perSecond float64, burst int) *budget {
	if perSecond <= 0 {
		return nil
	}
	return &budget{
		store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate:      rate.Limit(perSecond),
			Burst:     burst,
			ExpiresIn: 3 * time.Minute,
		}),
		retry: strconv.Itoa(max(1, int(1/perSecond+0.999))),
		key:   s.clientKey,
	}
}

// Spend implements web.Budget.
func (b *budget) Spend(r *http.Request) (bool, string) {
	ok, _ := b.store.Allow(b.key(r))
	return ok, b.retry
}

// clientKey is the key the rate limits count a request's client under.
func (s *Server) clientKey(r *http.Request) string {
	return limit.KeyString(s.proxies.Load().clientIPString(r), s.limits.IPv6Prefix)
}

// poxRedirect returns the HTTPS URL a plain-HTTP Autodiscover POX request is
// redirected to, but only when this server serves HTTPS and the Host is one
// of ours (no open redirect). Outlook's last Autodiscover step is exactly this: a GET to
// http://autodiscover.<domain>/autodiscover/autodiscover.xml that must
// answer 302 with an https URL, which Outlook then POSTs to (after asking
// the user whether to trust the redirect).
func (s *Server) poxRedirect(r *http.Request) (string, bool) {
	if !s.hasHTTPS() || !strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") ||
		s.proxies.Load().scheme(r) == "https" {
		return "", false
	}
	host, err := address.HostDomain(r.Host)
	if err != nil {
		return "", false
	}
	if _, err := s.State().Catalog.ForHost(host, "autodiscover."); err != nil {
		return "", false
	}
	u := url.URL{Scheme: "https", Host: host, Path: "/autodiscover/autodiscover.xml"}
	// Behind a proxy the public HTTPS port is the proxy's (443);
	// otherwise it is our listener's.
	if a := s.HTTPSAddr(); a != nil && !s.proxies.Load().fromProxy(r) {
		if _, port, err := net.SplitHostPort(a.String()); err == nil && port != "443" {
			u.Host = net.JoinHostPort(host, port)
		}
	}
	return u.String(), true
}
