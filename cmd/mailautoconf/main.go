// Command mailautoconf publishes mail client auto-configuration (Thunderbird
// autoconfig, Outlook Autodiscover, Apple profiles, DNS SRV records) from one
// configuration file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/directory"
	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/server"
	"mailautoconf/pacc"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module's build information is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `mailautoconf publishes mail client auto-configuration.

Usage:
  mailautoconf serve [--config FILE] [--http ADDR]   run the service (demo configuration without --config)
                     [--dns ADDR]                    also answer DNS (UDP and TCP) for the served domains
                     [--https ADDR] [--metrics ADDR] [--log-format text|json]
                     [--acme-renew-check DURATION]   how often managed certificates are checked for renewal
  mailautoconf check --config FILE                   validate a configuration file
  mailautoconf records [--config FILE] [--zone] [DOMAIN...]
                                                     print the DNS records as zone-file lines
  mailautoconf probe ADDRESS [--resolver ADDR] [--insecure] [--connect] [--json]
                                                     show what each mail client would configure for ADDRESS
  mailautoconf version                               print the version (also --version)
  mailautoconf help [COMMAND]                        print this, or a command's options (also COMMAND --help)
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "records":
		return records(args[1:], stdout, stderr)
	case "probe":
		return probeCmd(args[1:], stdout, stderr)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if code, ok := parseFlags(fs, versionUsage, args[1:], stdout, stderr); !ok {
			return code
		}
		if fs.NArg() != 0 {
			fmt.Fprintf(stderr, "mailautoconf version: unexpected argument %q\n\n%s", fs.Arg(0), versionUsage)
			return 2
		}
		fmt.Fprintln(stdout, "mailautoconf", versionString())
		return 0
	case "--version", "-version", "-v":
		fmt.Fprintln(stdout, "mailautoconf", versionString())
		return 0
	case "help", "--help", "-help", "-h":
		// Asking for help is not an error: stdout, exit status 0.
		// `help COMMAND` is `COMMAND --help`.
		if len(args) == 2 && args[0] == "help" && args[1] != "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "mailautoconf: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// loadConfig loads the file, or the built-in demo when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Demo()
	}
	return config.Load(path)
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file to validate")
	if code, ok := parseFlags(fs, checkUsage, args, stdout, stderr); !ok {
		return code
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "mailautoconf check: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Render everything serve would render: this also loads and checks the
	// signing certificate and the TLS certificates (key matches, not
	// expired), so check catches what would make serve fail.
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	n, wild := 0, 0
	for _, p := range cfg.Providers {
		n += len(p.Domains)
		for _, d := range p.Domains {
			if strings.HasPrefix(d, "*.") {
				wild++
			}
		}
	}
	fmt.Fprintf(stdout, "%s: OK, %d provider(s), %d domain(s)\n", *path, len(cfg.Providers), n)
	// Not an error (every other client is served), but easy to miss:
	// PACC can describe only implicit TLS on the standard ports.
	st := srv.State()
	for i, p := range st.Catalog.Providers {
		if st.PACC.For(p) == nil {
			fmt.Fprintf(stdout, "%s: providers[%d] (%s): no PACC document: %v\n", *path, i, p.ID, pacc.ErrNothing)
		}
	}
	if a := cfg.TLS.ACME; a != nil {
		// What serve will ask the CA for, so that an operator sees
		// the count before the first order (the CA's limits).
		names := srv.ManagedNames()
		fmt.Fprintf(stdout, "%s: tls.acme: %d name(s) obtained in advance from %s", *path, len(names), a.Directory)
		if wild > 0 && a.OnDemandEnabled() {
			fmt.Fprintf(stdout, ", names under %d *.parent domain(s) on demand", wild)
		}
		fmt.Fprintf(stdout, "; storage %s\n", a.Storage)
	}
	// Everything else is rebuilt by a reload; say which keys are not, so
	// that an operator who changed one knows to restart.
	var keys []string
	for _, kv := range cfg.StartOnly() {
		keys = append(keys, fmt.Sprintf("%s=%q", kv.Key, kv.Value))
	}
	fmt.Fprintf(stdout, "%s: read at start only (a reload keeps the running values, restart to change them): %s\n", *path, strings.Join(keys, " "))
	if cfg.Directory != nil {
		if err := checkDirectory(cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "%s: directory: %v\n", *path, err)
			return 1
		}
	}
	return 0
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	httpAddr := fs.String("http", "", "HTTP listen address (default: the configuration's, or 127.0.0.1:8080)")
	httpsAddr := fs.String("https", "", "HTTPS listen address (default: the configuration's listen.https; off without)")
	metricsAddr := fs.String("metrics", "", "separate /metrics listen address (default: the configuration's listen.metrics)")
	logFormat := fs.String("log-format", "", "log format: text or json (default: the configuration's log.format, or text)")
	dnsAddr := fs.String("dns", "", "authoritative DNS listen address, UDP and TCP (default: the configuration's listen.dns; off without)")
	renewCheck := fs.Duration("acme-renew-check", 0, "how often the managed certificates (tls.acme) are checked for renewal, a duration such as 1h or 30s, at least 1s (default: 10m)")
	if code, ok := parseFlags(fs, serveUsage, args, stdout, stderr); !ok {
		return code
	}
	// Zero when not given: certmagic's default. A given value is taken
	// as it is, so a shorter one than a second (or 0) is a mistake, not
	// a way back to the default: every check walks all certificates in
	// memory.
	if given(fs, "acme-renew-check") && *renewCheck < minRenewCheck {
		fmt.Fprintf(stderr, "mailautoconf serve: --acme-renew-check %s: must be at least %s\n", *renewCheck, minRenewCheck)
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	format := *logFormat
	if format == "" {
		format = cfg.Log.Format
	}
	// The access log writes a line per request; batching the writes
	// saves a system call per request (bench/README.md).
	logw := fastlog.NewWriter(stderr, 0, 0)
	defer logw.Close()
	// fastlog's handler writes what slog's text and JSON handlers write,
	// access lines in about half their time (internal/fastlog).
	var h slog.Handler
	switch format {
	case "", "text":
		h = fastlog.New(logw, false, nil)
	case "json":
		h = fastlog.New(logw, true, nil)
	default:
		fmt.Fprintf(stderr, "mailautoconf serve: --log-format %q is not text or json\n", format)
		return 2
	}
	log := slog.New(h)
	srv, err := server.New(cfg, server.Options{
		HTTPAddr:    *httpAddr,
		HTTPSAddr:   *httpsAddr,
		MetricsAddr: *metricsAddr,
		DNSAddr:     *dnsAddr,
		ConfigPath:  *path,
		Version:     versionString(),
		Logger:      log,
		Reloaded:    func() { tuneGC(log) },

		ACMERenewCheck: *renewCheck,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Directory != nil {
		// The directory's domains (or the ones kept in storage) are in
		// the catalog before the first request; later reads swap in a
		// new catalog from the loader's goroutine.
		dir, err := directory.Start(ctx, cfg.Directory, srv, srv.Metrics().Registry, log, directory.LoaderOptions{})
		if err != nil {
			fmt.Fprintf(stderr, "directory: %v\n", err)
			return 1
		}
		if dir.Resolver != nil {
			if err := srv.SetMailboxes(dir.Resolver); err != nil {
				fmt.Fprintf(stderr, "directory: %v\n", err)
				return 1
			}
		}
		go dir.Run(ctx)
	}
	tuneGC(log)
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *path == "" {
		printDemo(stdout, srv.Addr().String())
		if a, ok := srv.DNSAddr().(*net.UDPAddr); ok {
			fmt.Fprintf(stdout, "  dig -p %d @%s _imaps._tcp.example.com SRV\n", a.Port, a.IP)
		}
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

// minRenewCheck is the shortest --acme-renew-check: short enough for
// certificates that live a minute (a test CA), long enough that the checks
// cannot keep a core busy with many certificates in memory.
const minRenewCheck = time.Second

// given tells whether the flag name was set on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// gcHeadroom is how much the heap may grow beyond what the configuration
// keeps alive before a collection runs.
const gcHeadroom = 24 << 20

// maxGOGC caps the percentage: the runtime's smallest heap goal is 4 MB
// times GOGC/100, so a higher value would let even an empty heap grow past
// the headroom.
const maxGOGC = 100 * gcHeadroom / (4 << 20)

// tuneGC sets the garbage collector's target from the heap the loaded
// configuration keeps. A request allocates little, but with the default
// GOGC=100 and a live heap of a few megabytes (a small configuration) the
// collector runs many times a second under load and shrinks the connection
// goroutines' stacks, which then grow again: together 10–15 % of the CPU in
// profiles. A fixed headroom of gcHeadroom instead keeps collections rare
// for small configurations and leaves large ones (100,000 domains: tens of
// MB live) at the default, so memory stays bounded either way. GOGC set in
// the environment wins. Measured at start and after every reload.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := max(ms.HeapAlloc, 1<<20)
	pct := int(min(max(gcHeadroom*100/live, 100), maxGOGC))
	debug.SetGCPercent(pct)
	debug.FreeOSMemory() // return what loading the configuration used
	log.Debug("garbage collector tuned", "live_heap_bytes", live, "gogc", pct)
}

// demoPOX is the smallest Autodiscover request the service answers with
// Outlook settings: no namespace and no AcceptableResponseSchema are needed
// (scripted clients leave both out), which keeps the banner line short.
const demoPOX = `<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request></Autodiscover>`

// printDemo prints what a newcomer can try against the demo: one line for
// each client's view (a person's browser, Thunderbird, Outlook, Apple Mail,
// PACC),
// each with the real listening address so that it can be copied as it is.
func printDemo(w io.Writer, addr string) {
	fmt.Fprintf(w, `mailautoconf %s is serving the built-in demo configuration (example.com, example.net).
Open in a browser:
  http://%[2]s/    (settings page for people)
  http://%[2]s/mobileconfig?emailaddress=alice@example.com    (profile for iPhone, iPad, Mac)
Try:
  curl 'http://%[2]s/mail/config-v1.1.xml?emailaddress=alice@example.com'
  curl -H 'Host: autoconfig.example.com' 'http://%[2]s/mail/config-v1.1.xml'
  curl 'http://%[2]s/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob@example.net'
  curl -i 'http://%[2]s/mail/config-v1.1.xml?emailaddress=bob@unknown.org'
  curl -H 'Content-Type: text/xml' -d '%[3]s' 'http://%[2]s/autodiscover/autodiscover.xml'
  curl -H 'Host: ua-auto-config.example.com' 'http://%[2]s/.well-known/user-agent-configuration.json'
`, versionString(), addr, demoPOX)
}
