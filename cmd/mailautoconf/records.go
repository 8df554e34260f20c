package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"mailautoconf/internal/directory"
	"mailautoconf/internal/dnsserver"
	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// records prints the DNS records of the configuration as zone-file lines,
// for hosters who publish them in the DNS they already run. With a
// directory block, the directory's domains are read once and included (or
// the ones kept in storage, saying so, when it cannot be read).
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
	var extra []settings.Domain
	if cfg.Directory != nil {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		snap, err := directory.Once(ctx, cfg.Directory)
		cancel()
		switch {
		case snap == nil:
			fmt.Fprintln(stderr, "mailautoconf records: directory:", err)
			return 1
		case err != nil:
			fmt.Fprintf(stderr, "mailautoconf records: directory not read (%v); printing the domains kept in storage, read at %s\n",
				err, snap.Loaded.Format(time.RFC3339))
		}
		extra = snap.Domains()
	}
	cat := settings.New(cfg, extra...)
	for _, sk := range cat.Skipped() {
		fmt.Fprintf(stderr, "mailautoconf records: %s not served: %s\n", sk.Domain.Name, sk.Reason)
	}
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
