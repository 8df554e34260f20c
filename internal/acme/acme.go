// Package acme obtains and renews the service's certificates from an ACME CA
// (Let's Encrypt, or any CA speaking RFC 8555) and serves them.
//
// It wraps certmagic, Caddy's certificate manager, which brings what a
// hoster with thousands of names needs: on-demand issuance at the first
// handshake guarded by a decision function, storage shared by replicas with
// lock files so that one name is ordered once, renewal ahead of expiry
// steered by ACME Renewal Information (ARI) where the CA offers it, OCSP
// stapling where the certificate names a responder, and HTTP-01 and
// TLS-ALPN-01 answered by the service's own listeners.
//
// On top of certmagic this package decides which names get certificates
// (only names the configuration serves: a handshake for an unserved name
// never starts an order), paces orders to stay inside the CA's limits
// (on-demand handshakes go first), checks before each order that the name
// reaches this service, backs off exponentially per name after a failure,
// and counts all of it in metrics with a bounded set of labels.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"

	"mailautoconf/internal/config"
)

// TLSALPNProto is the ALPN protocol of the TLS-ALPN-01 challenge (RFC
// 8737). The HTTPS listener must offer it, or Go's TLS stack refuses the
// CA's validation handshake before the certificate is chosen.
const TLSALPNProto = "acme-tls/1"

// Defaults of the per-name back-off after a failure: 5 minutes, doubling,
// at most a day. Five minutes keep a failing name below Let's Encrypt's 5
// failed authorizations per name and hour (0, 5, 15, 35, 75 minutes).
const (
	DefaultRetryMin = 5 * time.Minute
	DefaultRetryMax = 24 * time.Hour
)

// Names says which host names get certificates. The server builds one
// from every configuration it loads.
type Names struct {
	// Listed are obtained in advance, in this order: autoconfig.<d> and
	// autodiscover.<d> of every served domain and alias, tls.acme.names,
	// signing.acme_name.
	Listed []string
	// Served reports whether a host name is served, for names that are
	// not listed: autoconfig.<d> and autodiscover.<d> under "*.parent"
	// domains, known only when a client asks. Nil: only listed names.
	Served func(host string) bool
	// Covered reports whether a certificate file (tls.certificates)
	// covers the name. Files win: no order for such a name. Nil: none.
	Covered func(host string) bool
}

// names is Names with the list as a set.
type names struct {
	Names
	listed map[string]bool
}

// wanted reports whether name may get a certificate from the CA.
func (n *names) wanted(name string) bool {
	if n == nil {
		return false
	}
	if n.Covered != nil && n.Covered(name) {
		return false
	}
	return n.listed[name] || (n.Served != nil && n.Served(name))
}

// Options are the parts of a Manager that do not come from tls.acme.
type Options struct {
	// HTTPAddr and HTTPSAddr are the addresses this process's plain and
	// HTTPS listeners are bound to (after Listen, so with real ports).
	// certmagic would open a listener of its own for a challenge on a
	// port nobody listens on; these tell it that the service's listeners
	// answer. Without HTTPSAddr, TLS-ALPN-01 is not offered to the CA.
	HTTPAddr, HTTPSAddr string
	Logger              *slog.Logger
	// Registerer receives the metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// RetryMin and RetryMax bound the per-name back-off (defaults
	// DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// RenewCheckInterval is how often certificates in memory are checked
	// for renewal (certmagic's default, 10 minutes, when zero).
	RenewCheckInterval time.Duration
}

// Manager obtains, renews and serves the managed certificates.
type Manager struct {
	cfg     config.ACME
	opts    Options
	log     *slog.Logger
	cache   *certmagic.Cache
	bg      *certmagic.Config // pre-issue and renewal in the background
	hs      *certmagic.Config // TLS handshakes, with the on-demand decision
	issuer  *certmagic.ACMEIssuer
	storage certmagic.Storage
	pacer   *pacer
	check   *prechecker
	metrics *metrics

	names atomic.Pointer[names]
	queue queue

	mu    sync.Mutex
	state map[string]*nameState // names that failed, until they succeed
	known map[string]bool       // names with a certificate in memory

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// nameState is the back-off of a name that failed.
type nameState struct {
	failures int
	retryAt  time.Time
	failedAt time.Time
	stage    string
	lastErr  string
}

// New prepares a manager for the tls.acme section. It reads (or creates)
// the storage directory but contacts no CA: the account is registered with
// the first order, in the background.
func New(cfg *config.ACME, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if err := os.MkdirAll(cfg.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("ACME storage: %w", err)
	}
	roots, err := rootPool(cfg.CARoots)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:     *cfg,
		opts:    opts,
		log:     opts.Logger.With("component", "acme"),
		storage: &certmagic.FileStorage{Path: cfg.Storage},
		pacer:   newPacer(time.Hour/time.Duration(max(cfg.OrdersPerHour, 1)), time.Now()),
		metrics: newMetrics(),
		state:   map[string]*nameState{},
		known:   map[string]bool{},
		done:    make(chan struct{}),
	}
	m.queue.init()
	m.ctx, m.cancel = context.WithCancel(context.Background())
	zl := zapToSlog(opts.Logger.Handler())

	token, err := loadPrecheckToken(m.ctx, m.storage)
	if err != nil {
		return nil, fmt.Errorf("ACME storage %s: %w", cfg.Storage, err)
	}
	m.check = newPrechecker(token, cfg.PrecheckPort, cfg.Resolver)

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		// Every certificate is renewed by the background configuration,
		// also those first loaded during a handshake: certmagic's own
		// maintenance skips configurations with on-demand set.
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.bg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             zl,
	})
	template := certmagic.Config{
		Storage: m.storage,
		OnEvent: m.onEvent,
		Logger:  zl,
	}
	m.bg = certmagic.New(m.cache, template)
	host, httpPort := splitAddr(opts.HTTPAddr)
	_, tlsPort := splitAddr(opts.HTTPSAddr)
	m.issuer = certmagic.NewACMEIssuer(m.bg, certmagic.ACMEIssuer{
		// For Let's Encrypt, certmagic retries a failed order against
		// the staging CA first (TestCA), whose limits are far higher.
		CA:    cfg.Directory,
		Email: cfg.Email,
		// Configuring a CA is accepting its subscriber agreement.
		Agreed:                  true,
		TrustedRoots:            roots,
		ListenHost:              host,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		DisableTLSALPNChallenge: opts.HTTPSAddr == "",
		Logger:                  zl,
	})
	m.bg.Issuers = []certmagic.Issuer{m.issuer}
	hs := template
	hs.Issuers = m.bg.Issuers
	hs.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	m.hs = certmagic.New(m.cache, hs)

	m.names.Store(&names{listed: map[string]bool{}})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(collector{m}); err != nil {
			m.cache.Stop()
			return nil, fmt.Errorf("ACME metrics: %w", err)
		}
	}
	go m.work()
	return m, nil
}

// rootPool is the system's roots plus the configured ones.
func rootPool(files []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_roots: %w", err)
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("tls.acme.ca_roots: %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// splitAddr returns the host and port of a listener address, "" and 0
// when it has none.
func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// Close stops the background work: queue, renewals, OCSP updates. Orders
// in flight are cancelled; what they stored stays valid for the next start.
// Close may be called more than once.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		m.cache.Stop()
	})
}

// Update puts a new set of names in force: listed names without a
// certificate are queued, and certificates of names no longer served are
// dropped from memory (they stay in storage, so serving a name again does
// not order it again).
func (m *Manager) Update(n Names) {
	ns := &names{Names: n, listed: make(map[string]bool, len(n.Listed))}
	for _, name := range n.Listed {
		ns.listed[strings.ToLower(name)] = true
	}
	m.names.Store(ns)

	m.mu.Lock()
	var drop []certmagic.SubjectIssuer
	for name := range m.known {
		if !ns.wanted(name) {
			drop = append(drop, certmagic.SubjectIssuer{Subject: name})
			delete(m.known, name)
		}
	}
	for name := range m.state {
		if !ns.wanted(name) {
			delete(m.state, name)
		}
	}
	m.mu.Unlock()
	if len(drop) > 0 {
		m.cache.RemoveManaged(drop)
	}
	var todo []string
	for _, name := range n.Listed {
		name = strings.ToLower(name)
		if ns.wanted(name) && !m.inMemory(name) {
			todo = append(todo, name)
		}
	}
	m.queue.replace(todo)
}

// inMemory reports whether a certificate for name is loaded.
func (m *Manager) inMemory(name string) bool {
	return len(m.cache.AllMatchingCertificates(name)) > 0
}

// GetCertificate is the tls.Config callback: the managed certificate for
// the client's name, loaded from storage or obtained on demand when the
// name is served, and the TLS-ALPN-01 answer while the CA validates.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx, cancel := withCancelOnFailure(hello.Context())
	defer cancel()
	return m.hs.GetCertificateWithContext(ctx, hello)
}

// cancelKey carries the cancel function of an attempt started here (a
// queue entry, a handshake) in its context.
//
// certmagic retries a failed order after a minute, then two, and so on,
// within the attempt's context: a handshake would hang for minutes, the
// queue would stall on one name. The back-off here is per name and longer
// than certmagic's first retry, so when an order fails the attempt ends at
// once (onEvent cancels it) and the name waits for its own next turn.
type cancelKey struct{}

func withCancelOnFailure(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	return context.WithValue(ctx, cancelKey{}, cancel), cancel
}

// Wanted reports whether name may get a managed certificate: a served
// name that no certificate file covers.
func (m *Manager) Wanted(name string) bool {
	return m.names.Load().wanted(strings.ToLower(name))
}

// HandleHTTPChallenge answers the CA's HTTP-01 requests and the
// pre-check on /.well-known/acme-challenge/, and reports whether it
// handled the request. Requests for names that get no certificate are
// answered 404 without looking into the storage.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, challengePrefix) {
		return false
	}
	if r.URL.Path == precheckPath {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(m.check.token))
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if m.Wanted(host) && m.issuer.HandleHTTPChallenge(w, r) {
		return true
	}
	http.NotFound(w, r)
	return true
}

// Certificate returns the managed certificate for name when one is in
// memory and valid now: the signer of Apple profiles for
// signing.acme_name. The certificate changes when it is renewed, so
// callers ask again instead of keeping it.
func (m *Manager) Certificate(name string) (*tls.Certificate, bool) {
	now := time.Now()
	for _, c := range m.cache.AllMatchingCertificates(strings.ToLower(name)) {
		if c.Leaf != nil && now.After(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter) {
			cert := c.Certificate
			return &cert, true
		}
	}
	return nil, false
}

// decide is certmagic's on-demand decision, asked at a handshake for a
// name whose certificate is not in memory. A certificate already in
// storage is loaded for any wanted name; a new one is ordered only with
// on_demand, outside the name's back-off.
func (m *Manager) decide(ctx context.Context, name string) error {
	if !m.names.Load().wanted(name) {
		m.metrics.denied.WithLabelValues(deniedUnserved).Inc()
		return fmt.Errorf("%s is not served", name)
	}
	if m.storage.Exists(ctx, certmagic.StorageKeys.SiteCert(m.issuer.IssuerKey(), name)) {
		return nil
	}
	if !m.cfg.OnDemandEnabled() {
		m.metrics.denied.WithLabelValues(deniedDisabled).Inc()
		return fmt.Errorf("%s has no certificate yet and on-demand issuance is off", name)
	}
	if until := m.retryAt(name); time.Now().Before(until) {
		m.metrics.denied.WithLabelValues(deniedBackoff).Inc()
		return fmt.Errorf("%s failed recently; next try after %s", name, until.Format(time.RFC3339))
	}
	return nil
}

// onEvent follows certmagic's work. Before every order (new, renewal or
// on demand) it is the gate: the name must still be served and not backing
// off, the pacer must allow an order, and the pre-check must pass.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	kind := kindNew
	if renewal {
		kind = kindRenewal
	}
	switch event {
	case "cert_obtaining":
		if !m.names.Load().wanted(name) {
			return certmagic.ErrNoRetry{Err: fmt.Errorf("%s is no longer served: no order", name)}
		}
		if until := m.retryAt(name); time.Now().Before(until) {
			return certmagic.ErrNoRetry{Err: fmt.Errorf("%s failed recently; next try after %s", name, until.Format(time.RFC3339))}
		}
		urgent := ctx.Value(certmagic.ClientHelloInfoCtxKey) != nil
		if err := m.pacer.wait(ctx, urgent); err != nil {
			return certmagic.ErrNoRetry{Err: fmt.Errorf("waiting for the order rate: %w", err)}
		}
		if m.cfg.PrecheckEnabled() {
			if err := m.check.check(ctx, name); err != nil {
				m.failed(name, stagePrecheck, err)
				return certmagic.ErrNoRetry{Err: err}
			}
		}
		m.log.Info("ordering certificate", "name", name, "kind", kind, "on_demand", urgent)
	case "cert_obtained":
		m.metrics.orders.WithLabelValues(kind, "success").Inc()
		m.succeeded(name)
		m.log.Info("certificate obtained", "name", name, "kind", kind, "issuer", data["issuer"])
	case "cert_failed":
		m.metrics.orders.WithLabelValues(kind, "failure").Inc()
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		m.failed(name, stageOrder, err)
		if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
			cancel()
		}
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		m.mu.Lock()
		for _, s := range sans {
			m.known[s] = true
		}
		m.mu.Unlock()
	}
	return nil
}

// retryAt is when a failed name may be tried again (zero: now).
func (m *Manager) retryAt(name string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.state[name]; st != nil {
		return st.retryAt
	}
	return time.Time{}
}

// failed records a failure and schedules the next try: RetryMin, doubled
// with every further failure up to RetryMax.
func (m *Manager) failed(name, stage string, err error) {
	now := time.Now()
	m.mu.Lock()
	st := m.state[name]
	if st == nil {
		st = &nameState{}
		m.state[name] = st
	}
	st.failures++
	delay := m.opts.RetryMin
	for i := 1; i < st.failures && delay < m.opts.RetryMax; i++ {
		delay *= 2
	}
	delay = min(delay, m.opts.RetryMax)
	st.retryAt, st.failedAt, st.stage, st.lastErr = now.Add(delay), now, stage, err.Error()
	failures := st.failures
	m.mu.Unlock()
	m.metrics.failures.WithLabelValues(stage).Inc()
	m.log.Warn("certificate not obtained", "name", name, "stage", stage, "failures", failures, "retry_in", delay, "error", err)
	if m.names.Load().listed[name] {
		time.AfterFunc(delay, func() { m.queue.push(name) })
	}
}

// succeeded clears a name's back-off.
func (m *Manager) succeeded(name string) {
	m.mu.Lock()
	delete(m.state, name)
	m.mu.Unlock()
}

// failedSince reports whether a failure of name was recorded at or after t.
func (m *Manager) failedSince(name string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[name]
	return st != nil && !st.failedAt.Before(t)
}

// work is the background queue: one name at a time, each loaded from
// storage or ordered (the pacer in onEvent spaces the orders).
func (m *Manager) work() {
	defer close(m.done)
	for {
		name, ok := m.queue.pop(m.ctx)
		if !ok {
			return
		}
		m.ensure(name)
	}
}

// ensure gets a certificate for a listed name into memory: from storage,
// or from the CA. Once in memory, certmagic's maintenance renews it (also
// one loaded from storage that is already due).
func (m *Manager) ensure(name string) {
	if !m.names.Load().wanted(name) || m.inMemory(name) {
		return
	}
	if time.Now().Before(m.retryAt(name)) {
		return // queued again when its back-off ends
	}
	ctx, cancel := withCancelOnFailure(m.ctx)
	defer cancel()
	start := time.Now()
	// Not ManageSync: its synchronous order is "interactive" in
	// certmagic's sense and asks for an account e-mail on the terminal
	// when none is configured.
	_, err := m.bg.CacheManagedCertificate(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		if err = m.bg.ObtainCertAsync(ctx, name); err == nil {
			_, err = m.bg.CacheManagedCertificate(ctx, name)
		}
	}
	if err == nil {
		m.succeeded(name)
		return
	}
	if m.ctx.Err() != nil {
		return
	}
	if !m.failedSince(name, start) {
		m.failed(name, stageStorage, err)
	}
}

// Status is what the manager knows about one name, for check and probe.
type Status struct {
	Name     string
	NotAfter time.Time // zero without certificate in memory
	Issuer   string
	Failures int
	Stage    string
	LastErr  string
	RetryAt  time.Time
}

// Status reports on name.
func (m *Manager) Status(name string) Status {
	name = strings.ToLower(name)
	s := Status{Name: name}
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && c.Leaf.NotAfter.After(s.NotAfter) {
			s.NotAfter, s.Issuer = c.Leaf.NotAfter, c.Leaf.Issuer.String()
		}
	}
	m.mu.Lock()
	if st := m.state[name]; st != nil {
		s.Failures, s.Stage, s.LastErr, s.RetryAt = st.failures, st.stage, st.lastErr, st.retryAt
	}
	m.mu.Unlock()
	return s
}

// summary is the state behind the gauges.
type summary struct {
	valid, renewalDue, expired int
	missing, failing, queued   int
	left                       []float64 // seconds until expiry, per certificate
	earliest                   time.Time
}

func (m *Manager) summary(now time.Time) summary {
	var s summary
	m.mu.Lock()
	known := make([]string, 0, len(m.known))
	for n := range m.known {
		known = append(known, n)
	}
	for _, st := range m.state {
		if now.Before(st.retryAt) {
			s.failing++
		}
	}
	m.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range known {
		for _, c := range m.cache.AllMatchingCertificates(n) {
			if c.Leaf == nil || seen[c.Hash()] {
				continue
			}
			seen[c.Hash()] = true
			switch {
			case now.After(c.Leaf.NotAfter):
				s.expired++
			case c.NeedsRenewal(m.bg):
				s.renewalDue++
			default:
				s.valid++
			}
			s.left = append(s.left, max(c.Leaf.NotAfter.Sub(now).Seconds(), 0))
			if s.earliest.IsZero() || c.Leaf.NotAfter.Before(s.earliest) {
				s.earliest = c.Leaf.NotAfter
			}
		}
	}
	for n := range m.names.Load().listed {
		if m.names.Load().wanted(n) && !m.inMemory(n) {
			s.missing++
		}
	}
	s.queued = m.queue.len()
	return s
}
