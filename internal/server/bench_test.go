package server_test

import (
	"runtime"
	"strconv"
	"testing"

	"mailautoconf/bench/benchconf"
	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
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
