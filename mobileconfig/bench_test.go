package mobileconfig_test

import (
	"fmt"
	"testing"

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
