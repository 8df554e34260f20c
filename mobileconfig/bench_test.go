package mobileconfig_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/mobileconfig"
)

// benchRenderer builds the renderer of cfg and resolves addr.
func benchRenderer(b *testing.B, cfg *config.Config, addr string) (*mobileconfig.Renderer, *settings.Catalog, settings.Settings) {
	b.Helper()
	cat := settings.New(cfg)
	r, err := mobileconfig.NewRenderer(cat)
	if err != nil {
		b.Fatal(err)
	}
	s, err := cat.ForAddress(addr)
	if err != nil {
		b.Fatal(err)
	}
	return r, cat, s
}

func signedBenchConfig(b *testing.B, rsa bool) *config.Config {
	b.Helper()
	dir := b.TempDir()
	newPKI(b, rsa).write(b, dir)
	return mustSigningConfig(b, dir, relativeSigning)
}

// BenchmarkUnsigned: filling the per-provider template for one address.
func BenchmarkUnsigned(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	r, _, s := benchRenderer(b, cfg, "alice@example.com")
	req := mobileconfig.Request{Settings: s, Name: "Alice Example"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Profile(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnsignedAppend: the same into a reused buffer, as the handler
// does with its pool.
func BenchmarkUnsignedAppend(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	r, _, s := benchRenderer(b, cfg, "alice@example.com")
	req := mobileconfig.Request{Settings: s, Name: "Alice Example"}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		if buf, err = r.Unsigned(buf[:0], req); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so that
// BenchmarkHandler counts the handler's allocations only.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// BenchmarkHandler: a whole unsigned profile request through echo's
// router and the handler, without the server's middleware.
func BenchmarkHandler(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	r, cat, _ := benchRenderer(b, cfg, "alice@example.com")
	e := echo.New()
	e.GET("/mobileconfig", mobileconfig.Handler(func() (*settings.Catalog, *mobileconfig.Renderer) { return cat, r }))
	req := httptest.NewRequest(http.MethodGet, "/mobileconfig?emailaddress=alice@example.com", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.n = 0
		e.ServeHTTP(w, req)
	}
	if w.code != http.StatusOK || w.n == 0 || w.h.Get("Content-Type") != mobileconfig.ContentType {
		b.Fatalf("status %d, %d bytes, %v", w.code, w.n, w.h)
	}
}

// BenchmarkSigned: a new address every time, so every request signs
// (the cache never hits): the worst case.
func BenchmarkSigned(b *testing.B) {
	for _, key := range []struct {
		name string
		rsa  bool
	}{{"ecdsa-p256", false}, {"rsa-2048", true}} {
		b.Run(key.name, func(b *testing.B) {
			r, cat, _ := benchRenderer(b, signedBenchConfig(b, key.rsa), "alice@example.com")
			addrs := make([]settings.Settings, 1<<14)
			for i := range addrs {
				s, err := cat.ForAddress(fmt.Sprintf("user%d@example.com", i))
				if err != nil {
					b.Fatal(err)
				}
				addrs[i] = s
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := r.Profile(mobileconfig.Request{Settings: addrs[i%len(addrs)]}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkSignedCached: the same profile again (a person downloading it
// twice, or on two devices): rendering plus a cache lookup.
func BenchmarkSignedCached(b *testing.B) {
	r, _, s := benchRenderer(b, signedBenchConfig(b, true), "alice@example.com")
	req := mobileconfig.Request{Settings: s}
	if _, err := r.Profile(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Profile(req); err != nil {
			b.Fatal(err)
		}
	}
}
