package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"mailautoconf/internal/dnsserver"
	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// records prints the DNS records of the configuration as zone-file lines,
// for hosters who publish them in the DNS they already run.
func records(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("records", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	zone := fs.Bool("zone", false, "print complete zones ($ORIGIN, $TTL, SOA, NS) instead of lines to paste")
	if code, ok := parseFlags(fs, recordsUsage, args, stdout, stderr); !ok {
		return code
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cat := settings.New(cfg)
	// The PACC documents are rendered as the server renders them, so
	// that the _ua-auto-config records vouch for the bytes it serves.
	pc, err := pacc.NewRenderer(cat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	zones, err := dnsserver.New(cat, pc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := dnsserver.Export(stdout, cat, zones, fs.Args(), *zone); err != nil {
		fmt.Fprintln(stderr, "mailautoconf records:", err)
		if errors.Is(err, dnsserver.ErrNotServed) {
			return 2
		}
		return 1
	}
	return 0
}
