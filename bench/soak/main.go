// Command soak runs the real mailautoconf binary under a mixed load (every
// HTTP endpoint, DNS over UDP and TCP) for a while, reloading its
// configuration with SIGHUP every few seconds, and then stops it with
// SIGTERM while the load still runs. It reports the requests sent, the
// answers that were not the expected ones, transport errors, the memory
// (RSS) and goroutines of the server, and how the shutdown went; it exits 1
// when any of the promises below is broken:
//
//   - every valid request gets its expected answer, reloads included (a
//     reload swaps the whole rendered configuration atomically, so there is
//     no window in which a request sees no or half a configuration);
//   - no transport errors before SIGTERM;
//   - RSS at the end is within -max-rss-growth of RSS after the warm-up;
//   - once the load stops, the server's goroutines return to their idle
//     baseline (no per-connection or per-reload leak);
//   - on SIGTERM, requests already in flight complete, later connections
//     are refused or closed without a partial answer, and the process
//     exits 0 within the drain timeout.
//
// bench/soak/run builds the binary and runs this program; see there.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o Options
	flag.StringVar(&o.Binary, "bin", "", "the mailautoconf binary to run (required)")
	flag.DurationVar(&o.Duration, "duration", 60*time.Second, "how long the mixed load runs")
	flag.IntVar(&o.Conns, "conns", 256, "concurrent clients, each with its own HTTP connection, UDP socket and DNS TCP connection")
	flag.DurationVar(&o.HUP, "hup", 5*time.Second, "interval between configuration changes with SIGHUP")
	flag.DurationVar(&o.WarmUp, "warmup", 0, "load before the first RSS sample (default: a sixth of -duration, at most 10s)")
	flag.Float64Var(&o.MaxRSSGrowth, "max-rss-growth", 0.10, "allowed RSS growth from the warm-up to the end (0.10 = 10 %)")
	flag.DurationVar(&o.Drain, "drain", 10*time.Second, "the server's drain timeout: the longest a SIGTERM may take")
	flag.Parse()
	if o.Binary == "" {
		fmt.Fprintln(os.Stderr, "soak: -bin is required (bench/soak/run builds it)")
		os.Exit(2)
	}
	o.Log = os.Stderr
	rep, err := Run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	rep.Print(os.Stdout)
	if fails := rep.Failures(); len(fails) > 0 {
		os.Exit(1)
	}
}
