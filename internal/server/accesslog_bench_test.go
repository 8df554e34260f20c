//go:build unix

package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"mailautoconf/internal/fastlog"
)

// BenchmarkAccessLog is BenchmarkHandler with the binary's log handler
// (log=fastlog) and with slog's own text handler (log=slog), both to
// io.Discard, in the same run: what the service's handler saves on a whole
// request. Compare with benchstat -col /log. cpu-ns/op is the process's
// CPU time per request (getrusage), which holds up better than wall time
// on a busy machine.
func BenchmarkAccessLog(b *testing.B) {
	for _, lg := range []struct {
		name string
		h    slog.Handler
	}{
		{"fastlog", fastlog.New(io.Discard, false, nil)},
		{"slog", slog.NewTextHandler(io.Discard, nil)},
	} {
		h := benchServer(b, lg.h)
		for _, tc := range []struct{ name, target string }{
			{"autoconfig", "/mail/config-v1.1.xml?emailaddress=alice@example.com"},
			{"json", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1"},
			{"mobileconfig", "/mobileconfig?emailaddress=alice@example.com"},
		} {
			b.Run("log="+lg.name+"/"+tc.name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, tc.target, strings.NewReader(""))
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				b.ReportAllocs()
				var before, after syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
				for b.Loop() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
				cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
