package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"mailautoconf/internal/probe"
)

// connectToFlag collects repeated --connect-to FROM=TO options.
type connectToFlag map[string]string

func (c connectToFlag) String() string { return "" }

func (c connectToFlag) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok || from == "" || to == "" {
		return fmt.Errorf("want HOST:PORT=HOST:PORT or :PORT=HOST:PORT, got %q", v)
	}
	c[strings.ToLower(from)] = to
	return nil
}

const probeUsage = `Usage: mailautoconf probe ADDRESS [options]

Looks at the domain of ADDRESS the way Thunderbird, Outlook, Apple Mail and
SRV-aware clients do, shows what each would configure and reports where the
sources disagree. Exit status: 0 when every client would get a working TLS
configuration, 1 when not, 2 on a usage error.

Options:
`

// probeCmd runs `mailautoconf probe`.
func probeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	resolver := fs.String("resolver", "", "DNS server (host or host:port) for every lookup (default: the first of /etc/resolv.conf)")
	insecure := fs.Bool("insecure", false, "read answers even when a certificate fails verification (the failure is still reported)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	connect := fs.Bool("connect", false, "also open every advertised IMAP/POP3/SMTP port and check TLS or STARTTLS")
	caFile := fs.String("ca", "", "PEM file of extra trusted CA certificates (e.g. a private CA)")
	timeout := fs.Duration("timeout", probe.DefaultTimeout, "limit of each query, fetch and connection")
	profileURL := fs.String("profile-url", "", "where Apple's .mobileconfig is fetched (default https://autoconfig.DOMAIN/mobileconfig)")
	connectTo := connectToFlag{}
	fs.Var(connectTo, "connect-to", "send connections for HOST:PORT (or :PORT, any host) to another HOST:PORT; repeatable")

	// The address may come before or after the options.
	var rest []string
	for {
		if code, ok := parseFlags(fs, probeUsage, args, stdout, stderr); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "mailautoconf probe: give exactly one e-mail address")
		printUsage(fs, probeUsage, stderr)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "mailautoconf probe: --timeout must be positive")
		return 2
	}
	opts := probe.Options{
		Resolver:   *resolver,
		ConnectTo:  connectTo,
		Insecure:   *insecure,
		Connect:    *connect,
		Timeout:    *timeout,
		ProfileURL: *profileURL,
	}
	if *caFile != "" {
		pool, err := loadCAs(*caFile)
		if err != nil {
			fmt.Fprintln(stderr, "mailautoconf probe:", err)
			return 2
		}
		opts.RootCAs = pool
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A hard ceiling, whatever hangs: every step has its own timeout, and
	// the steps run in a few parallel rounds.
	ctx, cancel := context.WithTimeout(ctx, 10**timeout+5*time.Second)
	defer cancel()
	rep, err := probe.Run(ctx, rest[0], opts)
	if err != nil {
		fmt.Fprintln(stderr, "mailautoconf", err)
		return 2
	}
	if *asJSON {
		if err := probe.WriteJSON(stdout, rep); err != nil {
			fmt.Fprintln(stderr, "mailautoconf probe:", err)
			return 2
		}
	} else {
		probe.WriteText(stdout, rep, colourful(stdout))
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// colourful reports whether w is a terminal that wants colours (NO_COLOR
// unset, https://no-color.org).
func colourful(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// loadCAs returns the system roots plus the certificates of a PEM file.
func loadCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
