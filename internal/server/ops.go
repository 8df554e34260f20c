package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"mailautoconf/autodiscover"
	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/web"
)

// forwardedHeaders are dropped from requests that do not come from a trusted
// proxy, so that nothing downstream (echo's RealIP and Scheme included) can
// be fooled by them.
//
// Non-canonical spellings ("x-forwarded-for") never reach a handler:
// net/http canonicalises header names while reading the request.
var forwardedHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Protocol", "X-Forwarded-Ssl",
	"X-Forwarded-Host", "X-Url-Scheme", "X-Real-Ip", "Forwarded",
}

// ServeHTTP prepares a request before echo routes it: X-Forwarded-Host from
// trusted proxies applied, the X-Forwarded-* headers of everyone else
// removed, and the Autodiscover paths in their registered case (see
// autodiscover.CanonicalPath). Done here rather than as echo
// pre-middlewares, which echo wraps anew for every request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	px := s.proxies.Load()
	if px.fromProxy(r) {
		r.Host = px.host(r)
	} else {
		// The names are in canonical form already, so the map is
		// used directly: Header.Del canonicalises every name on every
		// request, although a client rarely sends any of them.
		for _, h := range forwardedHeaders {
			if _, ok := r.Header[h]; ok {
				delete(r.Header, h)
			}
		}
	}
	autodiscover.CanonicalizePath(r.URL)
	s.echo.ServeHTTP(w, r)
}

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
	limited := s.rateLimiter()
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
			wc.Context, wc.Info = c, web.Info{}
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
func (s *Server) guard(c echo.Context, next echo.HandlerFunc, limited func(echo.Context) (bool, error), bodyLimit echo.MiddlewareFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic in handler", "path", c.Request().URL.Path, "panic", fmt.Sprint(r))
			err = echo.NewHTTPError(http.StatusInternalServerError)
		}
	}()
	r := c.Request()
	if limited != nil && !isOps(r.URL.Path) {
		if denied, err := limited(c); denied {
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

// logRequest writes the access line and counts the request.
func (s *Server) logRequest(c echo.Context, info web.Info, start time.Time) {
	end := time.Now()
	elapsed := end.Sub(start)
	r := c.Request()
	status := c.Response().Status
	endpoint := metrics.Endpoint(r.URL.Path)
	client := metrics.ClientFamily(r.UserAgent())
	outcome := info.Outcome
	if outcome == "" {
		outcome = outcomeOf(status)
	}
	s.metrics.ObserveRequest(endpoint, outcome, client, elapsed)
	if info.Domain != "" && s.metrics.PerDomain() && outcome == metrics.OutcomeOK {
		s.metrics.DomainRequests.WithLabelValues(info.Domain).Inc()
	}
	h := s.log.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	attrs := [8]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("client", client),
		slog.String("remote", s.proxies.Load().clientIPString(r)),
	}
	n := 6
	if info.Domain != "" {
		attrs[n] = slog.String("domain", info.Domain)
		n++
	}
	if info.Address != nil && s.logAddr {
		attrs[n] = slog.String("address", info.Address.String())
		n++
	}
	if fh, ok := h.(*fastlog.Handler); ok {
		// The service's own handler takes the line as its parts.
		_ = fh.Log(r.Context(), end, slog.LevelInfo, "request", attrs[:n]...)
		return
	}
	// The record is built here rather than through Logger.LogAttrs,
	// which would also capture the caller's program counter (a stack
	// walk per request) for a source location the access log does not
	// print, and read the clock a second time.
	rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	rec.AddAttrs(attrs[:n]...)
	_ = h.Handle(r.Context(), rec)
}

func outcomeOf(status int) string {
	switch {
	case status == http.StatusNotFound:
		return metrics.OutcomeUnknownDomain
	case status == http.StatusTooManyRequests:
		return metrics.OutcomeRateLimited
	case status >= 500:
		return metrics.OutcomeError
	case status >= 400:
		return metrics.OutcomeBadRequest
	}
	return metrics.OutcomeOK
}

// isOps reports whether a path is an operator endpoint, exempt from the rate
// limit (probes and scrapes come often from few addresses).
func isOps(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// rateLimiter limits requests per client IP with a token bucket per address
// (golang.org/x/time/rate through echo's store, which also expires idle
// entries so the table cannot grow without bound). The function it returns
// answers 429 to a request over the limit and reports it denied; it is nil when
// the limit is off.
func (s *Server) rateLimiter() func(echo.Context) (denied bool, err error) {
	l := s.limits
	if l.RatePerSecond < 0 {
		return nil
	}
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate:      rate.Limit(l.RatePerSecond),
		Burst:     l.Burst,
		ExpiresIn: 3 * time.Minute,
	})
	retry := strconv.Itoa(max(1, int(1/l.RatePerSecond+0.999)))
	return func(c echo.Context) (bool, error) {
		if ok, _ := store.Allow(s.proxies.Load().clientIPString(c.Request())); ok {
			return false, nil
		}
		web.SetOutcome(c, metrics.OutcomeRateLimited)
		c.Response().Header().Set("Retry-After", retry)
		return true, c.String(http.StatusTooManyRequests, "too many requests, slow down\n")
	}
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
	// autodiscover.<served domain>, or the one host that
	// dns.autodiscover_target gives for many domains.
	cat := s.State().Catalog
	if _, err := cat.ForHost(host, "autodiscover."); err != nil && !cat.IsAutodiscoverTarget(host) {
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

func (s *Server) healthz(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

func (s *Server) readyz(c echo.Context) error {
	if !s.ready.Load() || s.State() == nil {
		return c.String(http.StatusServiceUnavailable, "not ready\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
}

// watch reloads the configuration on SIGHUP and when its file changes, and
// the TLS certificates when theirs change, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	hup, stamp := s.hup, s.stamp
	defer signal.Stop(hup)
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading configuration")
			s.reloadFile()
			stamp = fileStamp(s.opts.ConfigPath)
		case <-t.C:
			if st := fileStamp(s.opts.ConfigPath); st != stamp {
				stamp = st
				s.log.Info("configuration file changed: reloading", "file", s.opts.ConfigPath)
				s.reloadFile()
			}
		}
		if changed, err := s.certs.refresh(s.metrics); err != nil {
			s.log.Error("reloading TLS certificates; keeping the old ones", "err", err)
		} else if changed {
			s.log.Info("TLS certificates reloaded")
		}
	}
}

// startWatching registers for SIGHUP and notes the configuration file's
// version. It runs in Listen, before Serve returns control to anyone: a
// SIGHUP that arrives before the handler is registered would end the
// process, and a file change before the first look would go unnoticed.
func (s *Server) startWatching() {
	s.hup = make(chan os.Signal, 1)
	signal.Notify(s.hup, syscall.SIGHUP)
	s.stamp = fileStamp(s.opts.ConfigPath)
}

// reloadFile reloads the configuration file. A broken file is logged and
// counted, and the configuration in force keeps serving.
func (s *Server) reloadFile() {
	if s.opts.ConfigPath == "" {
		s.log.Info("no configuration file to reload (built-in demo)")
		return
	}
	cfg, err := config.Load(s.opts.ConfigPath)
	if err == nil {
		err = s.Reload(cfg)
	} else {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadOK.Set(0)
	}
	if err != nil {
		s.log.Error("configuration rejected; the previous one stays in force", "err", err)
		return
	}
	s.log.Info("configuration reloaded", "file", s.opts.ConfigPath)
}

// fileStamp identifies a version of a file by modification time and size.
func fileStamp(path string) string {
	if path == "" {
		return ""
	}
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
}
