package config_test

import (
	"runtime"
	"strconv"
	"testing"

	"mailautoconf/bench/benchconf"
	"mailautoconf/internal/config"
)

// BenchmarkParse measures loading a hoster's configuration: YAML decoding,
// defaults and validation. The target is under 2 s for 100,000 domains.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		data := benchconf.YAML(benchconf.Options{Domains: n})
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				c, err := config.Parse("bench.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				runtime.KeepAlive(c)
			}
		})
	}
}
