package autodiscover

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/config"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
)

// BenchmarkPOX measures the per-request work of an Autodiscover POX answer:
// parsing Outlook's request document (parse: the fast path ParseRequest
// takes for it; parse-full: etree, for every other shape), resolving the
// address and filling the provider's pre-rendered answer.
func BenchmarkPOX(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	cat := settings.New(cfg)
	r, err := NewRenderer(cat)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + NSRequest + `"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>` + NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`)
	b.Run("parse-full", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := parseFull(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := ParseRequest(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	s, err := cat.ForAddress("alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		var out []byte
		for b.Loop() {
			if out = r.AppendSettings(out[:0], s); len(out) == 0 {
				b.Fatal("empty answer")
			}
		}
	})
	b.Run("parse+render", func(b *testing.B) {
		b.ReportAllocs()
		current := func() (*settings.Catalog, *Renderer) { return cat, r }
		now := time.Now()
		var out []byte // the handler's pooled buffer
		for b.Loop() {
			ar, err := ParseRequest(body)
			if err != nil {
				b.Fatal(err)
			}
			// No request context: nothing is noted for an access log.
			if out = answer(nil, out[:0], current, ar, now); len(out) == 0 {
				b.Fatal("empty answer")
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing, so that the
// handler benchmarks count the handler's allocations only.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// BenchmarkHandler measures whole requests through echo's router and the
// handlers (without the server's middleware): Outlook's POX request, with
// Outlook's spelling of the path, and its v2 JSON request.
func BenchmarkHandler(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	cat := settings.New(cfg)
	r, err := NewRenderer(cat)
	if err != nil {
		b.Fatal(err)
	}
	// As the server mounts them, from the route table: the path case is
	// fixed before echo routes the request.
	e := echo.New()
	cur := func() (*settings.Catalog, *Renderer) { return cat, r }
	handlers := map[string]echo.HandlerFunc{
		route.HandleAutodiscoverPOX:  Handler(cur),
		route.HandleAutodiscoverJSON: JSONHandler(cur),
	}
	for _, rt := range route.Table() {
		if h, ok := handlers[rt.Handler]; ok {
			for _, m := range rt.Methods {
				e.Add(m, rt.Path, h)
			}
		}
	}
	run := func(b *testing.B, req *http.Request, body []byte, want string) {
		b.ReportAllocs()
		w := &discardWriter{h: http.Header{}}
		var rd bytes.Reader
		path := req.URL.Path
		for b.Loop() {
			req.URL.Path = path
			clear(w.h)
			w.n = 0
			if body != nil {
				rd.Reset(body)
				req.Body = io.NopCloser(&rd)
			}
			CanonicalizePath(req.URL)
			e.ServeHTTP(w, req)
		}
		if w.code != http.StatusOK || w.n == 0 || w.h.Get("Content-Type") != want {
			b.Fatalf("status %d, %d bytes, %v", w.code, w.n, w.h)
		}
	}
	b.Run("pox", func(b *testing.B) {
		body := []byte(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + NSRequest + `"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>` + NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`)
		req := httptest.NewRequest(http.MethodPost, "/Autodiscover/Autodiscover.xml", nil)
		run(b, req, body, ContentType)
	})
	b.Run("json", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1", nil)
		run(b, req, nil, jsonContentType)
	})
}
