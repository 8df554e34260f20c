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
	"golang.org/x/net/netutil"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/config"
	"mailautoconf/internal/dnsserver"
	"mailautoconf/internal/filewatch"
	"mailautoconf/internal/limit"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/page"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
	"mailautoconf/mobileconfig"
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

// State is everything rendered from one configuration. It is replaced as a
// whole on reload, so a request sees either the old or the new configuration,
// never a mix.
type State struct {
	Catalog    *settings.Catalog
	Autoconfig *autoconfig.Renderer
	// Mobileconfig renders (and signs) Apple profiles; it holds the
	// signing certificate, so a reload re-reads renewed files.
	Mobileconfig *mobileconfig.Renderer
	// Autodiscover renders Microsoft Autodiscover (POX and v2 JSON).
	Autodiscover *autodiscover.Renderer
	// DNS is the zones of the authoritative DNS server, packed once.
	DNS *dnsserver.Zones
	// Page is the settings page for people.
	Page *page.Renderer
}

// NewState renders a validated configuration.
func NewState(cfg *config.Config) (*State, error) {
	cat := settings.New(cfg)
	ac, err := autoconfig.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	mc, err := mobileconfig.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	ad, err := autodiscover.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	zones, err := dnsserver.New(cat)
	if err != nil {
		return nil, fmt.Errorf("building DNS zones: %w", err)
	}
	pg, err := page.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	return &State{Catalog: cat, Autoconfig: ac, Mobileconfig: mc, Autodiscover: ad, DNS: zones, Page: pg}, nil
}

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
	// Settle is how long a changed configuration file must stay the
	// same (size, modification time and content) before it is loaded;
	// default 500ms.
	Settle time.Duration
	// Timeouts override the HTTP timeouts (zero fields keep the defaults).
	Timeouts Timeouts
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
	proxies atomic.Pointer[proxies]
	limits  config.Limits
	logAddr bool
	// requestBudget limits every request of a client but the operator
	// endpoints, expensiveBudget the expensive answers (web.Budget); nil
	// when off.
	requestBudget   *budget
	expensiveBudget web.Budget
	// metricsNets may read /metrics on the main listeners.
	metricsNets atomic.Pointer[networks]
	// routeOf finds the route a request was routed to, for its endpoint
	// name and whether it is an operator endpoint.
	routeOf route.Index
	// ctxPool recycles the per-request *web.Context (see observe).
	ctxPool sync.Pool

	listeners []*listener
	hup       chan os.Signal     // SIGHUP, registered in Listen
	file      *filewatch.Watcher // the configuration file, from Listen on; nil for the demo
	dns       *dnsListeners
}

// listener is one HTTP(S) server with its socket.
type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
	// clients caps the connections of each client (see limit.Listener).
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
		metrics: metrics.New(opts.Version, cfg.Metrics.PerDomain),
		limits:  cfg.Limits,
		logAddr: cfg.Log.Addresses,
		routeOf: route.NewIndex(),
	}
	if err := s.apply(cfg); err != nil {
		return nil, err
	}
	s.requestBudget = s.newBudget(cfg.Limits.RatePerSecond, cfg.Limits.Burst)
	if b := s.newBudget(cfg.Limits.ExpensivePerSecond, cfg.Limits.ExpensiveBurst); b != nil {
		s.expensiveBudget = b
	}
	if opts.HTTPSAddr != "" {
		if len(cfg.TLS.Certificates) == 0 {
			return nil, errors.New("HTTPS needs at least one entry in tls.certificates")
		}
	}
	e, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.echo = e
	return s, nil
}

// apply renders cfg and puts it in force together with its certificates and
// trusted proxies. Nothing changes when any part fails.
func (s *Server) apply(cfg *config.Config) error {
	st, err := NewState(cfg)
	if err != nil {
		return err
	}
	certs, err := loadCerts(cfg.TLS.Certificates)
	if err != nil {
		return err
	}
	px, err := newProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	nets := cfg.Metrics.AllowedNetworks
	if nets == nil {
		nets = config.DefaultMetricsNetworks
	}
	mn, err := parseNetworks(nets)
	if err != nil {
		return fmt.Errorf("metrics.allowed_networks: %w", err)
	}
	if s.certs == nil {
		s.certs = &certStore{}
	}
	s.certs.set(certs, s.metrics)
	s.proxies.Store(px)
	s.metricsNets.Store(&mn)
	s.state.Store(st)
	n := 0
	for _, p := range cfg.Providers {
		n += len(p.Domains) + len(p.Aliases)
	}
	s.metrics.Domains.Set(float64(n))
	return nil
}

// State returns the configuration in force.
func (s *Server) State() *State { return s.state.Load() }

// Metrics returns the server's metrics, e.g. for the DNS server to count.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Reload replaces the configuration. On error the old one stays in force.
// Either way the reload metrics record the result.
func (s *Server) Reload(cfg *config.Config) error {
	if err := s.apply(cfg); err != nil {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadOK.Set(0)
		return fmt.Errorf("reloading configuration: %w", err)
	}
	s.metrics.Reloads.WithLabelValues("success").Inc()
	s.metrics.LastReloadOK.Set(1)
	s.metrics.LastReloadTime.SetToCurrentTime()
	if s.opts.Reloaded != nil {
		s.opts.Reloaded()
	}
	return nil
}

// Handler returns the HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s }

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	t := s.opts.Timeouts
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Listen opens the listeners. Addr and friends are valid afterwards.
func (s *Server) Listen() error {
	s.startWatching()
	open := func(name, addr string, h http.Handler, tlsConfig *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listening for %s on %s: %w", name, addr, err)
		}
		// The per-client cap sits inside the listener's: a connection
		// it refuses is closed before it takes a slot for long.
		clients := limit.NewListener(ln, s.limits.MaxConnectionsPerClient, s.connClient)
		ln = clients
		if max := s.limits.MaxConnections; max > 0 {
			ln = netutil.LimitListener(ln, max)
		}
		srv := s.newHTTPServer(h)
		if tlsConfig != nil {
			srv.TLSConfig = tlsConfig
		}
		s.listeners = append(s.listeners, &listener{name: name, ln: ln, srv: srv, clients: clients})
		return nil
	}
	if err := open("http", s.opts.HTTPAddr, s, nil); err != nil {
		return err
	}
	if s.opts.HTTPSAddr != "" {
		if err := open("https", s.opts.HTTPSAddr, s, s.certs.tlsConfig()); err != nil {
			return err
		}
	}
	if s.opts.MetricsAddr != "" {
		if err := open("metrics", s.opts.MetricsAddr, s.metricsListenerHandler(), nil); err != nil {
			return err
		}
	}
	if err := s.listenDNS(); err != nil {
		s.closeListeners()
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
	if s.proxies.Load().isTrusted(peer) {
		return netip.Addr{}, false
	}
	return limit.Key(peer, s.limits.IPv6Prefix), true
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
	return first
}
