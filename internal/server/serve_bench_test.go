package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mailautoconf/internal/config"
	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/server"
)

// BenchmarkHandler measures what the service adds to a request inside the
// process, next to a handler that writes the same bytes (the in-process
// counterpart of bench/baseline): routing, middleware, metrics, the access
// log (the binary's handler, to io.Discard) and rendering.
func BenchmarkHandler(b *testing.B) {
	h := benchServer(b, fastlog.New(io.Discard, false, nil))
	const pox = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	for _, tc := range []struct{ name, method, target, body string }{
		{"autoconfig", "GET", "/mail/config-v1.1.xml?emailaddress=alice@example.com", ""},
		{"pox", "POST", "/autodiscover/autodiscover.xml", pox},
		{"json", "GET", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1", ""},
		{"mobileconfig", "GET", "/mobileconfig?emailaddress=alice@example.com", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: status %d", tc.name, rec.Code)
		}
		fixed := rec.Body.Bytes()
		ctype := rec.Header().Get("Content-Type")
		run := func(b *testing.B, h http.Handler) {
			b.ReportAllocs()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			body := strings.NewReader(tc.body)
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				body.Reset(tc.body)
				req.Body = io.NopCloser(body)
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		}
		b.Run(tc.name+"/ours", func(b *testing.B) { run(b, h) })
		b.Run(tc.name+"/fixed", func(b *testing.B) {
			run(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", ctype)
				_, _ = w.Write(fixed)
			}))
		})
	}
}

// benchServer is the demo configuration's handler, logging to lh, without
// the rate limit.
func benchServer(b *testing.B, lh slog.Handler) http.Handler {
	b.Helper()
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	cfg.Limits.RatePerSecond = -1
	srv, err := server.New(cfg, server.Options{Logger: slog.New(lh)})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
