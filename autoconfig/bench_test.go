package autoconfig_test

import (
	"testing"

	"mailautoconf/autoconfig"
	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// BenchmarkAppend measures the per-request work of an autoconfig answer:
// resolving the address and filling the provider's pre-rendered document,
// into a reused buffer (zero allocations is the goal) and into a new one
// (what the handler does: the buffer goes to the response writer).
func BenchmarkAppend(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	cat := settings.New(cfg)
	r, err := autoconfig.NewRenderer(cat)
	if err != nil {
		b.Fatal(err)
	}
	s, err := cat.ForAddress("alice@example.com")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("render", func(b *testing.B) {
		buf := r.Append(nil, s)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = r.Append(buf[:0], s)
		}
	})
	b.Run("resolve+render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, err := cat.ForAddress("alice@example.com")
			if err != nil {
				b.Fatal(err)
			}
			if len(r.Append(nil, s)) == 0 {
				b.Fatal("empty document")
			}
		}
	})
}
