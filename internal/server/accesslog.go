package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/batch"
	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/redact"
	"mailautoconf/internal/web"
)

// Access lines and request metrics are written in batches (internal/batch):
// a request only records what they need (accessEntry) and a batch is
// formatted and counted at once, by the request that fills it or at most
// accessDelay after its first request. Done per request, the same work cost
// several times as much under load as in a tight loop (bench/README.md).
// A scrape of /metrics flushes the batch first, so it counts every request
// answered before it; the lines reach the log within accessDelay plus the
// log writer's own delay (fastlog.Writer).
const (
	accessBatch = 256
	accessDelay = 20 * time.Millisecond
)

// accessEntry is one answered request as the access line and the metrics
// need it. Its strings are the request's own (nothing is copied); the path
// is redacted when the line is written.
type accessEntry struct {
	end     time.Time
	elapsed time.Duration
	method  string
	path    string // r.URL.Path
	route   string // the route's path, for the endpoint label
	ua      string
	remote  string
	domain  string
	address *address.Address // nil: the request named no mailbox
	outcome string           // from the handler; empty: from the status
	status  int
	// addresses: log.addresses was on when the request was answered.
	addresses bool
}

// newAccessLog returns the queue of access entries. A logger whose handler
// is not the service's own (fastlog: tests, embedding) is given every line
// as the request ends, since it may expect them right away.
func (s *Server) newAccessLog() *batch.Queue[accessEntry] {
	if _, ok := s.log.Handler().(*fastlog.Handler); !ok {
		return batch.New(1, accessDelay, s.writeAccess)
	}
	return batch.New(accessBatch, accessDelay, s.writeAccess)
}

// FlushLog writes the access lines, and counts in the metrics, the requests
// answered so far; otherwise that happens within accessDelay (a scrape of
// /metrics flushes first).
func (s *Server) FlushLog() { s.access.Flush() }

// logRequest records the request for the access log and the metrics.
func (s *Server) logRequest(c echo.Context, info web.Info, start time.Time) {
	// time.Since reads only the monotonic clock (time.Now reads both
	// clocks): the end is the start plus the time taken.
	elapsed := time.Since(start)
	st := s.State()
	r := c.Request()
	s.access.Add(accessEntry{
		end:       start.Add(elapsed),
		elapsed:   elapsed,
		method:    r.Method,
		path:      r.URL.Path,
		route:     c.Path(),
		ua:        r.Header.Get("User-Agent"),
		remote:    st.proxies.clientIPString(r),
		domain:    info.Domain,
		address:   info.Address,
		outcome:   info.Outcome,
		status:    c.Response().Status,
		addresses: st.logAddresses,
	})
}

// writeAccess counts a batch of requests and writes their access lines:
// one line per request with method, path, status, duration, client family,
// remote address, and the domain and address when the request named them.
// The query string is never logged (it holds addresses), the local part of
// an address only when log.addresses is on, and request headers
// (Authorization: Basic …, which Outlook and Thunderbird send to
// Autodiscover) never.
func (s *Server) writeAccess(entries []accessEntry) {
	st := s.State()
	ctx := context.Background()
	h := s.log.Handler()
	enabled := h.Enabled(ctx, slog.LevelInfo)
	fh, _ := h.(*fastlog.Handler)
	// lines is only used here, and the queue never runs two batches at
	// once.
	lines := s.accessLines[:0]
	for i := range entries {
		e := &entries[i]
		client := metrics.ClientFamily(e.ua)
		outcome := e.outcome
		if outcome == "" {
			outcome = outcomeOf(e.status)
		}
		s.metrics.ObserveRequest(s.routeOf.Endpoint(e.route), outcome, client, e.elapsed)
		if e.domain != "" && st.perDomain && outcome == metrics.OutcomeOK {
			// Counted by the configured domain ("*.parent" for any
			// name under a wildcard entry), never by the name a
			// client sent.
			if entry := st.Catalog.Entry(e.domain); entry != "" {
				s.metrics.DomainRequests.WithLabelValues(entry).Inc()
			}
		}
		if !enabled {
			continue
		}
		if fh != nil {
			// Field by field (fastlog.Line), the line the attributes
			// below make.
			ln := fh.Begin(lines, e.end, slog.LevelInfo, "request")
			ln.String("method", e.method)
			if e.addresses {
				ln.String("path", e.path)
			} else {
				ln.StringFunc("path", e.path, redact.AppendAddresses)
			}
			ln.Int("status", int64(e.status))
			ln.Duration("duration", e.elapsed)
			ln.String("client", client)
			ln.String("remote", e.remote)
			if e.domain != "" {
				ln.String("domain", e.domain)
			}
			if e.address != nil && e.addresses {
				ln.String("address", e.address.String())
			}
			if b, ok := ln.End(); ok {
				lines = b
				continue
			}
		}
		path := e.path
		if !e.addresses {
			path = redact.Addresses(path)
		}
		attrs := [8]slog.Attr{
			slog.String("method", e.method),
			slog.String("path", path),
			slog.Int("status", e.status),
			slog.Duration("duration", e.elapsed),
			slog.String("client", client),
			slog.String("remote", e.remote),
		}
		n := 6
		if e.domain != "" {
			attrs[n] = slog.String("domain", e.domain)
			n++
		}
		if e.address != nil && e.addresses {
			attrs[n] = slog.String("address", e.address.String())
			n++
		}
		if fh != nil {
			// A line that needs quoting or escaping is written by
			// the standard handler, after the lines before it.
			_ = fh.WriteLines(lines)
			lines = lines[:0]
			_ = fh.Log(ctx, e.end, slog.LevelInfo, "request", attrs[:n]...)
			continue
		}
		// The record is built here rather than through Logger.LogAttrs,
		// which would also capture the caller's program counter (a
		// stack walk per request) for a source location the access log
		// does not print.
		rec := slog.NewRecord(e.end, slog.LevelInfo, "request", 0)
		rec.AddAttrs(attrs[:n]...)
		_ = h.Handle(ctx, rec)
	}
	if fh != nil {
		_ = fh.WriteLines(lines)
	}
	if cap(lines) <= accessBatch<<10 {
		s.accessLines = lines[:0]
	}
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
