package server_test

import (
	"runtime"
	"strconv"
	"testing"

	"mailautoconf/bench/benchconf"
	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/settings"
)

// BenchmarkLoad measures what a start or a reload costs with a hoster's
// configuration: parsing and validation, then rendering every provider's
// documents and packing every domain's DNS zone. live-MB is the heap the
// loaded state keeps (the target is an RSS under 64 MB with 100,000
// domains; bench/run measures the RSS of the real process).
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		data := benchconf.YAML(benchconf.Options{Domains: n})
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			var st *server.State
			for b.Loop() {
				st = nil
				cfg, err := config.Parse("bench.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				if st, err = server.NewState(cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MB")
			runtime.KeepAlive(st)
		})
	}
}

// BenchmarkDirectoryDomains measures what a directory refresh that changed
// costs the server: the state rebuilt with 100,000 domains from the
// directory beside a small configuration (every renderer and the DNS
// zones). The directory's own read is BenchmarkLoad100k in
// internal/directory; together they must stay under 2 s.
func BenchmarkDirectoryDomains(b *testing.B) {
	cfg, err := config.Parse("bench.yaml", benchconf.YAML(benchconf.Options{Domains: 10}))
	if err != nil {
		b.Fatal(err)
	}
	extra := make([]settings.Domain, 100_000)
	for i := range extra {
		extra[i] = settings.Domain{Name: "customer" + strconv.Itoa(i) + ".example"}
	}
	b.ReportAllocs()
	var st *server.State
	for b.Loop() {
		if st, err = server.NewState(cfg, extra...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := st.Domains(); n < 100_000 {
		b.Fatalf("%d domains served", n)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MB")
	runtime.KeepAlive(st)
}
