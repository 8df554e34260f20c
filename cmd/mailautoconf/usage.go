package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// What each subcommand's --help prints before its options.
const (
	serveUsage = `Usage: mailautoconf serve [options]

Runs the service: autoconfig, Autodiscover, Apple profiles and the settings
page over HTTP(S), and DNS when --dns or listen.dns is set. Without --config
it serves the built-in demo configuration. With tls.acme it obtains and
renews the HTTPS certificates of the served names itself, in the background;
--acme-renew-check sets how often they are checked for renewal.
SIGHUP reloads the configuration; SIGTERM stops after the requests in flight.

Options:
`
	checkUsage = `Usage: mailautoconf check --config FILE
       mailautoconf check FILE

Validates a configuration file the way serve would load it (certificates
included; tls.acme is checked, no CA is contacted). Exit status: 0 when
valid, 1 when not, 2 on a usage error.

Options:
`
	recordsUsage = `Usage: mailautoconf records [--config FILE] [--zone] [DOMAIN...]

Prints the DNS records of the served domains (all, or the DOMAINs given) as
zone-file lines, for publishing them in a DNS server you already run.
With a directory block, its domains are read once and printed too.

Options:
`
	versionUsage = `Usage: mailautoconf version

Prints the version (also: mailautoconf --version).
`
)

// parseFlags parses a subcommand's arguments. -h, -help and --help ask for
// the usage, which is not an error: it goes to stdout, exit status 0. A
// usage error goes to stderr, followed by the usage: exit status 2. ok is
// false when the command is done, with exit status code.
func parseFlags(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr) // where fs.Parse reports a bad flag
	fs.Usage = func() {} // printed below, to the right stream
	switch err := fs.Parse(args); {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs, usage, stdout)
		return 0, false
	default:
		printUsage(fs, usage, stderr)
		return 2, false
	}
}

// printUsage writes the subcommand's usage text and its options to w.
func printUsage(fs *flag.FlagSet, usage string, w io.Writer) {
	fmt.Fprint(w, usage)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}
