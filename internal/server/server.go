// Package server wires the protocol handlers into one HTTP service: routes,
// limits, timeouts, error pages and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/acme"
	"mailautoconf/internal/batch"
	"mailautoconf/internal/config"
	"mailautoconf/internal/filewatch"
	"mailautoconf/internal/limit"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/watchdog"
)

// Limits that protect the service from slow or greedy clients. Every
// legitimate request is a few hundred bytes.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
	MaxBodyBytes      = 64 << 10
	DrainTimeout      = 10 * time.Second
)

// Options configure a Server. Empty listen addresses fall back to the
// configuration's listen section.
type Options struct {
	HTTPAddr    string // plain HTTP; default 127.0.0.1:8080
	HTTPSAddr   string // HTTPS; off when empty and not configured
	MetricsAddr string // a separate /metrics listener; off when empty
	DNSAddr     string // authoritative DNS, UDP and TCP; off when empty
	// ConfigPath is the configuration file, watched for changes and re-read
	// on SIGHUP. Empty for the built-in demo.
	ConfigPath string
	Version    string
	Logger     *slog.Logger
	// PollInterval is how often the configuration and certificate files
	// are checked for changes; default 2s.
	PollInterval time.Duration
	// SignalOnly reloads the configuration on SIGHUP only, never because
	// the file changed. Tests that count reloads use it: a file written
	// before a SIGHUP would otherwise be reloaded by the file watch as
	// well, once or twice depending on which comes first.
	SignalOnly bool
	// Settle is how long a changed configuration file must stay the
	// same (size, modification time and content) before it is loaded;
	// default 500ms.
	Settle time.Duration
	// Timeouts override the HTTP timeouts (zero fields keep the defaults).
	Timeouts Timeouts
	// ACMERenewCheck is how often the managed certificates (tls.acme) are
	// checked for renewal; certmagic's default, 10 minutes, when zero.
	ACMERenewCheck time.Duration
	// Reloaded, when set, is called after a reload put a new
	// configuration in force (the binary re-tunes the garbage collector
	// to the new configuration's heap).
	Reloaded func()
}

// Timeouts of the HTTP servers.
type Timeouts struct {
	ReadHeader, Read, Write, Idle, Drain time.Duration
}

func (t *Timeouts) defaults() {
	for _, d := range []struct {
		f   *time.Duration
		def time.Duration
	}{{&t.ReadHeader, ReadHeaderTimeout}, {&t.Read, ReadTimeout}, {&t.Write, WriteTimeout}, {&t.Idle, IdleTimeout}, {&t.Drain, DrainTimeout}} {
		if *d.f <= 0 {
			*d.f = d.def
		}
	}
}

// Server is the running service.
type Server struct {
	opts    Options
	log     *slog.Logger
	state   atomic.Pointer[State]
	ready   atomic.Bool
	echo    *echo.Echo
	metrics *metrics.Metrics
	certs   *certStore
	// applyMu serialises the builds of new states (reloads, new extra
	// domains) and the opening of listeners.
	applyMu sync.Mutex
	// extra is the domains of other sources in force (SetExtraDomains).
	extra []settings.Domain
	// skipped is the domains the state in force leaves out, with their
	// reasons, so that a directory refresh logs only new ones.
	skipped map[string]bool
	// mailboxes gives per-mailbox answers (SetMailboxes); nil for none.
	mailboxes settings.MailboxLookup
	// started is the configuration the listeners were opened with.
	started *config.Config
	// routeOf finds the route a request was routed to, for its endpoint
	// name and whether it is an operator endpoint.
	routeOf route.Index
	// ctxPool recycles the per-request *web.Context (see observe).
	ctxPool sync.Pool
	// access collects answered requests for the access log and the
	// metrics (accesslog.go); accessLines is its line buffer.
	access      *batch.Queue[accessEntry]
	accessLines []byte
	// static holds the routes without parameters by path (serveStatic);
	// bodyLimit is the front middleware's body limit. Both are set once,
	// when the routes are built.
	static    map[string]*staticRoute
	bodyLimit echo.MiddlewareFunc
	// date is the Date header of the current second.
	date httpDate

	// acme is the certificate manager of tls.acme, from Listen until
	// Serve ends; nil without tls.acme (and in `check`).
	acme atomic.Pointer[acme.Manager]
	// signer signs Apple profiles with the managed certificate of
	// signing.acme_name; kept across reloads.
	signer *acmeSigner

	listeners []*listener
	hup       chan os.Signal // SIGHUP, registered in Listen
	// watchdog holds the plain listeners' connections to their timeouts
	// (created in Listen, run by Serve).
	watchdog *watchdog.Watchdog
	// connCounts: the listeners' counts of connections they closed, for
	// the metrics (set by Listen).
	connCounts atomic.Pointer[connCounts]
	file       *filewatch.Watcher // the configuration file, from Listen on; nil for the demo
	dns        *dnsListeners
}

// listener is one HTTP(S) server with its socket.
type listener struct {
	name  string
	ln    net.Listener
	srv   *http.Server
	conns *connLimit // limits.max_connections, changed on reload
	// clients caps the connections of each client (see limit.Listener;
	// limits.max_connections_per_client, changed on reload).
	clients *limit.Listener
}

// New creates a server for a configuration. It does not listen yet.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 500 * time.Millisecond
	}
	opts.Timeouts.defaults()
	for _, a := range []struct {
		opt      *string
		cfg, def string
	}{
		{&opts.HTTPAddr, cfg.Listen.HTTP, "127.0.0.1:8080"},
		{&opts.HTTPSAddr, cfg.Listen.HTTPS, ""},
		{&opts.MetricsAddr, cfg.Listen.Metrics, ""},
		{&opts.DNSAddr, cfg.Listen.DNS, ""},
	} {
		if *a.opt == "" {
			*a.opt = a.cfg
		}
		if *a.opt == "" {
			*a.opt = a.def
		}
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: metrics.New(opts.Version),
		started: cfg,
		routeOf: route.NewIndex(),
	}
	s.access = s.newAccessLog()
	s.metrics.Registry.MustRegister(newSigningExpiry(s), newConnClosed(s))
	if err := s.apply(cfg, nil); err != nil {
		return nil, err
	}
	if opts.HTTPSAddr != "" && len(cfg.TLS.Certificates) == 0 && cfg.TLS.ACME == nil {
		return nil, errors.New("HTTPS needs tls.acme or at least one entry in tls.certificates")
	}
	e, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.echo = e
	return s, nil
}

// State returns the configuration in force.
func (s *Server) State() *State { return s.state.Load() }

// Metrics returns the server's metrics, e.g. for the DNS server to count.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Handler returns the HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s }

// newHTTPServer returns the http.Server of one listener. With a watchdog
// (the plain HTTP/1.1 listeners) the timeouts are the watchdog's, and
// net/http's are off: it would otherwise set socket deadlines several
// times per request (see internal/watchdog). The HTTPS listener keeps
// net/http's timeouts, since HTTP/2 runs its own timers on them.
func (s *Server) newHTTPServer(h http.Handler, wd *watchdog.Watchdog) *http.Server {
	t := s.opts.Timeouts
	srv := &http.Server{
		Handler:        h,
		MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if wd != nil {
		srv.ConnState = wd.ConnState
		return srv
	}
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Write, t.Idle
	return srv
}

// Listen opens the listeners. Addr and friends are valid afterwards.
func (s *Server) Listen() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.startWatching()
	t := s.opts.Timeouts
	s.watchdog = watchdog.New(watchdog.Timeouts{Head: t.ReadHeader, Read: t.Read, Write: t.Write, Idle: t.Idle})
	open := func(name, addr string, h http.Handler, tlsConfig *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listening for %s on %s: %w", name, addr, err)
		}
		// The per-client cap sits inside the listener's: a connection
		// it refuses is closed before it takes a slot for long.
		lim := s.State().limits
		clients := limit.NewListener(ln, lim.MaxConnectionsPerClient, s.connClient)
		conns := newConnLimit(lim.MaxConnections)
		wd := s.watchdog
		if tlsConfig != nil {
			wd = nil
		}
		srv := s.newHTTPServer(h, wd)
		if tlsConfig != nil {
			srv.TLSConfig = tlsConfig
		}
		s.listeners = append(s.listeners, &listener{name: name, ln: conns.listener(clients, wd), srv: srv, conns: conns, clients: clients})
		return nil
	}
	if err := open("http", s.opts.HTTPAddr, s.plainHandler(), nil); err != nil {
		return err
	}
	if s.opts.HTTPSAddr != "" {
		if err := open("https", s.opts.HTTPSAddr, s, s.tlsConfig()); err != nil {
			return err
		}
	}
	if s.opts.MetricsAddr != "" {
		if err := open("metrics", s.opts.MetricsAddr, s.metricsListenerHandler(), nil); err != nil {
			return err
		}
	}
	cc := &connCounts{wd: s.watchdog}
	for _, l := range s.listeners {
		cc.clients = append(cc.clients, l.clients)
	}
	s.connCounts.Store(cc)
	if err := s.listenDNS(); err != nil {
		s.closeListeners()
		return err
	}
	if err := s.startACME(); err != nil {
		s.closeListeners()
		if s.dns != nil {
			s.dns.udp.Close()
			s.dns.tcp.Close()
			s.dns = nil
		}
		return err
	}
	return nil
}

// connClient is the client a TCP peer's connections count for, or false
// for a trusted proxy: every client behind it comes through its
// connections, so it must not be held to one client's share (the proxy
// limits its own clients; the rate limit still counts each of them by
// X-Forwarded-For).
func (s *Server) connClient(peer netip.Addr) (netip.Addr, bool) {
	st := s.State()
	if st.proxies.isTrusted(peer) {
		return netip.Addr{}, false
	}
	return limit.Key(peer, st.limits.IPv6Prefix), true
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.ln.Close()
	}
	s.listeners = nil
}

func (s *Server) addr(name string) net.Addr {
	for _, l := range s.listeners {
		if l.name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// Addr is the plain HTTP listener's address.
func (s *Server) Addr() net.Addr { return s.addr("http") }

// HTTPSAddr is the HTTPS listener's address, nil without HTTPS.
func (s *Server) HTTPSAddr() net.Addr { return s.addr("https") }

// MetricsAddr is the separate metrics listener's address, if any.
func (s *Server) MetricsAddr() net.Addr { return s.addr("metrics") }

// hasHTTPS reports whether this server itself serves HTTPS, the condition
// for redirecting anything to https.
func (s *Server) hasHTTPS() bool { return s.opts.HTTPSAddr != "" }

// Serve serves until ctx is cancelled, then stops accepting connections and
// lets in-flight requests finish within the drain timeout.
func (s *Server) Serve(ctx context.Context) error {
	if s.listeners == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	// The watchdog runs from before the first connection until the
	// connections have drained: a client that stops reading its answer
	// is still cut off during shutdown.
	dctx, stopWatchdog := context.WithCancel(context.Background())
	watchdogDone := make(chan struct{})
	go func() { defer close(watchdogDone); s.watchdog.Run(dctx) }()
	defer func() { stopWatchdog(); <-watchdogDone }()
	errc := make(chan error, len(s.listeners))
	for _, l := range s.listeners {
		go func() {
			var err error
			if l.srv.TLSConfig != nil {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("serving %s: %w", l.name, err)
			}
			errc <- err
		}()
		s.log.Info("listening", l.name, l.ln.Addr().String())
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watch(wctx)

	s.metrics.LastReloadOK.Set(1)
	s.metrics.LastReloadTime.SetToCurrentTime()
	s.ready.Store(true)

	dnsErr := s.startDNS()
	var first error
	select {
	case first = <-errc:
		// A listener failed: stop the others too.
	case first = <-dnsErr:
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down", "drain_timeout", s.opts.Timeouts.Drain)
	s.stopACME()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeouts.Drain)
	defer cancel()
	if err := s.stopDNS(sctx); err != nil && first == nil {
		first = err
	}
	for _, l := range s.listeners {
		if err := l.srv.Shutdown(sctx); err != nil && first == nil {
			first = fmt.Errorf("draining %s connections: %w", l.name, err)
		}
	}
	n := len(s.listeners)
	if first != nil && ctx.Err() == nil {
		n-- // the failed listener already reported
	}
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	// The lines and counts of the last requests; any request still
	// answered after this is written as it ends.
	s.access.Close()
	return first
}
