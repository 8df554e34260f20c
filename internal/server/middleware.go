package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"mailautoconf/autodiscover"
	"mailautoconf/internal/address"
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
	bodyLimit := middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: fmt.Sprintf("%dB", MaxBodyBytes),
		// Autodiscover enforces its own, smaller limit and answers an
		// oversized body with an Autodiscover error document.
		Skipper: autodiscover.SkipBodyLimit,
	})
	s.bodyLimit = bodyLimit
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			s.observe(c, next)
			return nil
		}
	}
}

// observe runs the front middleware's steps around next; routes without
// parameters come here directly (serveStatic).
func (s *Server) observe(c echo.Context, next echo.HandlerFunc) {
	start := time.Now()
	c.Response().Header()["Date"] = s.date.header(start)
	wc, _ := s.ctxPool.Get().(*web.Context)
	if wc == nil {
		wc = new(web.Context)
	}
	wc.Context, wc.Info, wc.Budget = c, web.Info{}, s.State().budget()
	if err := s.guard(wc, next, s.bodyLimit); err != nil {
		c.Error(err)
	}
	info := wc.Info
	wc.Context, wc.Info = nil, web.Info{}
	s.ctxPool.Put(wc)
	s.logRequest(c, info, start)
}

// guard runs the steps before the handler, and the handler. A panic
// becomes a logged error and a bare 500: the client never sees a stack
// trace.
func (s *Server) guard(c echo.Context, next echo.HandlerFunc, bodyLimit echo.MiddlewareFunc) (err error) {
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
	if st := s.State(); st.limiter != nil && !s.routeOf.Ops(c.Path()) {
		if denied, err := st.limiter.deny(c, st.clientKey(r)); denied {
			return err
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

// poxRedirect returns the HTTPS URL a plain-HTTP Autodiscover POX request is
// redirected to, but only when this server serves HTTPS and the Host is one
// of ours (no open redirect). Outlook's last Autodiscover step is exactly this: a GET to
// http://autodiscover.<domain>/autodiscover/autodiscover.xml that must
// answer 302 with an https URL, which Outlook then POSTs to (after asking
// the user whether to trust the redirect).
func (s *Server) poxRedirect(r *http.Request) (string, bool) {
	if !s.hasHTTPS() || !strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") ||
		s.State().proxies.scheme(r) == "https" {
		return "", false
	}
	host, err := address.HostDomain(r.Host)
	if err != nil {
		return "", false
	}
	// autodiscover.<served domain>, or the one host that
	// dns.autodiscover_target gives for many domains.
	cat := s.State().Catalog
	if _, err := cat.ForHost(host, "autodiscover."); err != nil && !cat.IsAutodiscoverTarget(host) {
		return "", false
	}
	u := url.URL{Scheme: "https", Host: host, Path: "/autodiscover/autodiscover.xml"}
	// Behind a proxy the public HTTPS port is the proxy's (443);
	// otherwise it is our listener's.
	if a := s.HTTPSAddr(); a != nil && !s.State().proxies.fromProxy(r) {
		if _, port, err := net.SplitHostPort(a.String()); err == nil && port != "443" {
			u.Host = net.JoinHostPort(host, port)
		}
	}
	return u.String(), true
}
