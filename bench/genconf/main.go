// Command genconf prints a generated configuration of many domains (see
// package benchconf), for the load harness and for trying large
// configurations by hand:
//
//	go run ./bench/genconf -domains 100000 > /tmp/big.yaml
package main

import (
	"flag"
	"fmt"
	"os"

	"mailautoconf/bench/benchconf"
)

func main() {
	var o benchconf.Options
	flag.IntVar(&o.Domains, "domains", 10000, "number of domains")
	flag.BoolVar(&o.NoRateLimit, "no-rate-limit", true, "switch the per-client HTTP rate limit off")
	flag.StringVar(&o.SigningCert, "signing-cert", "", "PEM certificate for signed profiles")
	flag.StringVar(&o.SigningKey, "signing-key", "", "PEM key for signed profiles")
	flag.Parse()
	if o.Domains < 1 {
		fmt.Fprintln(os.Stderr, "genconf: -domains must be at least 1")
		os.Exit(2)
	}
	if _, err := os.Stdout.Write(benchconf.YAML(o)); err != nil {
		fmt.Fprintln(os.Stderr, "genconf:", err)
		os.Exit(1)
	}
}
