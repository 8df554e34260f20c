package autodiscover

import (
	"testing"
	"time"

	"mailautoconf/internal/config"
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
			if out = answer(out[:0], current, ar, now); len(out) == 0 {
				b.Fatal("empty answer")
			}
		}
	})
}
