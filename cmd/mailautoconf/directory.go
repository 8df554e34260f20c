package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/directory"
	"mailautoconf/internal/settings"
)

// checkTimeout bounds what check waits for the directory.
const checkTimeout = 30 * time.Second

// checkDirectory connects to the configured directory, runs its queries
// once and reports what serve would get: the number of domains, the first
// rows that would be skipped and why, and whether the mailbox lookup
// works. A source that cannot be read is an error: serve would start
// without its domains.
func checkDirectory(cfg *config.Config, stdout io.Writer) error {
	d := cfg.Directory
	s := directory.SettingsFrom(d)
	src, err := directory.Open(d, s)
	if err != nil {
		return err
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	rows, problems, err := directory.Read(ctx, src, nil)
	if err != nil {
		return fmt.Errorf("reading the domains from %s: %w", src.Kind(), err)
	}
	// The rows meet the file's domains and providers as serve puts them
	// together: a row naming an unknown provider, or a domain the file
	// already serves, is skipped there.
	skipped := settings.New(cfg, (&directory.Snapshot{Rows: rows}).Domains()...).Skipped()
	for _, sk := range skipped {
		problems = append(problems, sk.Domain.Name+": "+sk.Reason)
	}
	fmt.Fprintf(stdout, "directory (%s): %d domain(s), %d row(s) skipped\n", src.Kind(), len(rows)-len(skipped), len(problems))
	for i, p := range problems {
		if i == 5 {
			fmt.Fprintf(stdout, "  … and %d more\n", len(problems)-i)
			break
		}
		fmt.Fprintf(stdout, "  skipped: %s\n", p)
	}
	if !src.HasMailbox() {
		return nil
	}
	// Any address will do to see that the query runs; one at a served
	// domain is the most telling.
	probe := "postmaster@example.com"
	for _, r := range rows {
		if !strings.HasPrefix(r.Domain, "*.") {
			probe = "postmaster@" + r.Domain
			break
		}
	}
	_, found, err := src.Mailbox(ctx, probe)
	if err != nil {
		return fmt.Errorf("looking up a mailbox in %s: %w", src.Kind(), err)
	}
	state := "not known"
	if found {
		state = "found"
	}
	fmt.Fprintf(stdout, "directory (%s): mailbox lookup works (%s: %s)\n", src.Kind(), probe, state)
	return nil
}
