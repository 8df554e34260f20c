package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/redact"
	"mailautoconf/internal/web"
)

// logRequest writes the access line and counts the request.
func (s *Server) logRequest(c echo.Context, info web.Info, start time.Time) {
	end := time.Now()
	elapsed := end.Sub(start)
	st := s.State()
	r := c.Request()
	status := c.Response().Status
	endpoint := s.routeOf.Endpoint(c.Path())
	client := metrics.ClientFamily(r.UserAgent())
	outcome := info.Outcome
	if outcome == "" {
		outcome = outcomeOf(status)
	}
	s.metrics.ObserveRequest(endpoint, outcome, client, elapsed)
	if info.Domain != "" && st.perDomain && outcome == metrics.OutcomeOK {
		// Counted by the configured domain ("*.parent" for any name
		// under a wildcard entry), never by the name a client sent.
		if entry := st.Catalog.Entry(info.Domain); entry != "" {
			s.metrics.DomainRequests.WithLabelValues(entry).Inc()
		}
	}
	h := s.log.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	attrs := [8]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", s.logged(r.URL.Path)),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("client", client),
		slog.String("remote", st.proxies.clientIPString(r)),
	}
	n := 6
	if info.Domain != "" {
		attrs[n] = slog.String("domain", info.Domain)
		n++
	}
	if info.Address != nil && st.logAddresses {
		attrs[n] = slog.String("address", info.Address.String())
		n++
	}
	if fh, ok := h.(*fastlog.Handler); ok {
		// The service's own handler takes the line as its parts,
		// without a slog.Record, which allocates for more than five
		// attributes: a method outside slog's Handler interface, worth
		// it by BenchmarkAccessLog.
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

// logged is text from a request as it may be logged: without the local
// part of any address in it unless log.addresses is on. Paths are where
// addresses hide: Outlook's /autodiscover/autodiscover.json/v1.0/<address>,
// and any made-up path a client sends; the query string is never logged.
func (s *Server) logged(text string) string {
	if s.State().logAddresses {
		return text
	}
	return redact.Addresses(text)
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
