package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/config"
	"mailautoconf/internal/dnsserver"
	"mailautoconf/internal/limit"
	"mailautoconf/internal/page"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
	"mailautoconf/mobileconfig"
	"mailautoconf/pacc"
)

// State is everything built from one load: the configuration and the
// domains of other sources. It is replaced as a whole on reload, so a
// request sees either the old or the new load, never a mix, and a reload
// rebuilds everything but the listeners (see config.Config.StartOnly).
type State struct {
	Catalog    *settings.Catalog
	Autoconfig *autoconfig.Renderer
	// Mobileconfig renders (and signs) Apple profiles; it holds the
	// signing certificate, so a reload re-reads renewed files.
	Mobileconfig *mobileconfig.Renderer
	// Autodiscover renders Microsoft Autodiscover (POX and v2 JSON).
	Autodiscover *autodiscover.Renderer
	// PACC holds each provider's PACC document; the DNS zones publish
	// the digest of these very bytes.
	PACC *pacc.Renderer
	// DNS is the zones of the authoritative DNS server, packed once.
	DNS *dnsserver.Zones
	// Page is the settings page for people.
	Page *page.Renderer

	// What the HTTP front reads per request.
	proxies *proxies
	limiter *rateLimiter // nil when the rate limit is off
	// expensive is the budget for expensive answers (web.Budget), nil
	// when off.
	expensive *rateLimiter
	// metricsNets may read /metrics on the main listeners.
	metricsNets networks
	limits      config.Limits
	// logAddresses logs whole addresses (log.addresses).
	logAddresses bool
	// perDomain counts requests per domain (metrics.per_domain).
	perDomain bool
}

// NewState builds everything the service serves from one load: the
// catalog of a validated configuration and of the extra domains of other
// sources (settings.New: a row that breaks a rule is left out and listed
// by Catalog.Skipped), every protocol's renderer, the DNS zones, and the
// operational settings (trusted proxies, the HTTP limits, what the access
// log and the metrics record), with every default applied. It reads the
// signing files the configuration names and nothing else: no network, no
// database.
func NewState(cfg *config.Config, extra ...settings.Domain) (*State, error) {
	cat := settings.New(cfg, extra...)
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
	pc, err := pacc.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	zones, err := dnsserver.New(cat, pc)
	if err != nil {
		return nil, fmt.Errorf("building DNS zones: %w", err)
	}
	pg, err := page.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	px, err := newProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	limits := cfg.Limits.WithDefaults()
	nets := cfg.Metrics.AllowedNetworks
	if nets == nil {
		nets = config.DefaultMetricsNetworks
	}
	mn, err := parseNetworks(nets)
	if err != nil {
		return nil, fmt.Errorf("metrics.allowed_networks: %w", err)
	}
	return &State{
		Catalog: cat, Autoconfig: ac, Mobileconfig: mc, Autodiscover: ad, PACC: pc, DNS: zones, Page: pg,
		proxies:      px,
		limiter:      newRateLimiter(limits.RatePerSecond, limits.Burst),
		expensive:    newRateLimiter(limits.ExpensivePerSecond, limits.ExpensiveBurst),
		metricsNets:  mn,
		limits:       limits,
		logAddresses: cfg.Log.Addresses,
		perDomain:    cfg.Metrics.PerDomain,
	}, nil
}

// Domains is the number of served domains, alias domains included.
func (st *State) Domains() int {
	n := 0
	for _, p := range st.Catalog.Providers {
		n += len(p.Domains) + len(p.Aliases)
	}
	return n
}

// rateLimiter limits requests per client IP with a token bucket per address
// (golang.org/x/time/rate through echo's store, which also expires idle
// entries so the table cannot grow without bound).
type rateLimiter struct {
	rate  float64
	burst int
	store *middleware.RateLimiterMemoryStore
	retry string // the Retry-After value
}

// newRateLimiter returns the limiter of limits (with defaults), nil when
// the limit is off.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimiter{
		rate:  perSecond,
		burst: burst,
		store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate:      rate.Limit(perSecond),
			Burst:     burst,
			ExpiresIn: 3 * time.Minute,
		}),
		retry: strconv.Itoa(max(1, int(1/perSecond+0.999))),
	}
}

// clientKey is the key the rate limits count a request's client under:
// an IPv4 address or an IPv6 network of limits.ipv6_prefix bits.
func (st *State) clientKey(r *http.Request) string {
	return limit.KeyString(st.proxies.clientIPString(r), st.limits.IPv6Prefix)
}

// stateBudget is the expensive-answer budget of one state (web.Budget).
type stateBudget struct{ st *State }

// Spend implements web.Budget.
func (b stateBudget) Spend(r *http.Request) (bool, string) {
	ok, _ := b.st.expensive.store.Allow(b.st.clientKey(r))
	return ok, b.st.expensive.retry
}

// budget returns the expensive-answer budget, nil when it is off.
func (st *State) budget() web.Budget {
	if st.expensive == nil {
		return nil
	}
	return stateBudget{st}
}

// sameAs reports whether two limiters (either may be nil) limit alike.
func (rl *rateLimiter) sameAs(o *rateLimiter) bool {
	if rl == nil || o == nil {
		return rl == o
	}
	return rl.rate == o.rate && rl.burst == o.burst
}

// deny answers 429 to a request of client over the limit and reports it
// denied.
func (rl *rateLimiter) deny(c echo.Context, client string) (bool, error) {
	if ok, _ := rl.store.Allow(client); ok {
		return false, nil
	}
	return true, web.TooManyRequests(c, rl.retry)
}

// apply builds the state of cfg and the extra domains and puts it in force
// together with its certificates. Nothing changes when any part fails.
// The caller holds applyMu.
func (s *Server) apply(cfg *config.Config, extra []settings.Domain) error {
	return s.applyState(cfg, extra, false)
}

// applyState is apply; with quiet, domains left out are logged only when
// they were not left out, for the same reason, by the state before (a
// directory refreshed every few minutes would repeat every line).
func (s *Server) applyState(cfg *config.Config, extra []settings.Domain, quiet bool) error {
	st, err := NewState(cfg, extra...)
	if err != nil {
		return err
	}
	st.Catalog.Mailboxes = s.mailboxes // before anyone sees the catalog
	certs, err := loadCerts(cfg.CertificateFiles())
	if err != nil {
		return err
	}
	if err := s.signWithACME(st); err != nil {
		return err
	}
	if old := s.state.Load(); old != nil {
		// The same limit: clients keep their buckets, so that a reload
		// is no way around the limit.
		if old.limiter.sameAs(st.limiter) {
			st.limiter = old.limiter
		}
		if old.expensive.sameAs(st.expensive) {
			st.expensive = old.expensive
		}
	}
	if s.certs == nil {
		s.certs = &certStore{}
	}
	s.certs.set(certs, s.metrics)
	s.metrics.SetPerDomain(st.perDomain)
	s.state.Store(st)
	for _, l := range s.listeners {
		// The inner (per-client) cap first: raising the listener's cap
		// releases a waiting Accept at once, and that connection must
		// meet the new per-client cap, not the old one.
		l.clients.SetMax(st.limits.MaxConnectionsPerClient)
		l.conns.setMax(st.limits.MaxConnections)
	}
	s.extra = extra
	s.updateACME(st)
	s.metrics.Domains.Set(float64(st.Domains()))
	s.metrics.DomainsSkipped.Set(float64(len(st.Catalog.Skipped())))
	skipped := make(map[string]bool)
	for _, sk := range st.Catalog.Skipped() {
		key := sk.Domain.Name + "\x00" + sk.Domain.Provider + "\x00" + sk.Reason
		skipped[key] = true
		if !quiet || !s.skipped[key] {
			s.log.Warn("domain not served", "domain", sk.Domain.Name, "provider", sk.Domain.Provider, "reason", sk.Reason)
		}
	}
	s.skipped = skipped
	return nil
}

// Reload puts a new configuration in force, with the extra domains in
// force. On error the old state stays. Either way the reload metrics
// record the result. Keys read at start only (config.Config.StartOnly)
// keep their running values; a change of one is logged.
func (s *Server) Reload(cfg *config.Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.reload(cfg, s.extra)
}

// SetExtraDomains puts the served domains of another source (a database,
// a directory) in force with the configuration in force, replacing the
// previous ones: the whole state is rebuilt and swapped, as on a reload.
// Rows that break a rule are left out and logged; an error means nothing
// changed.
func (s *Server) SetExtraDomains(extra []settings.Domain) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.applyOther(extra)
}

// SetMailboxes gives the server per-mailbox answers: every state from now
// on asks l about the address of a request whose answer depends on the
// mailbox (settings.Catalog.WithMailbox). The state is rebuilt at once.
func (s *Server) SetMailboxes(l settings.MailboxLookup) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mailboxes = l
	return s.applyOther(s.extra)
}

// applyOther puts a state with the domains or mailboxes of other sources in
// force, with the configuration in force. It is not a reload of the
// configuration: the reload metrics and the start-only check are left
// alone (a directory counts its own loads, and a refresh every few minutes
// would otherwise repeat the start-only warning of a changed file).
func (s *Server) applyOther(extra []settings.Domain) error {
	if err := s.applyState(s.State().Catalog.Config, extra, true); err != nil {
		return fmt.Errorf("applying the domains of other sources: %w", err)
	}
	if s.opts.Reloaded != nil {
		s.opts.Reloaded()
	}
	return nil
}

func (s *Server) reload(cfg *config.Config, extra []settings.Domain) error {
	if err := s.apply(cfg, extra); err != nil {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadOK.Set(0)
		return fmt.Errorf("reloading configuration: %w", err)
	}
	s.metrics.Reloads.WithLabelValues("success").Inc()
	s.metrics.LastReloadOK.Set(1)
	s.metrics.LastReloadTime.SetToCurrentTime()
	changed := startOnlyChanges(s.started, cfg)
	if acmeChanged(s.started, cfg) {
		changed = append(changed, "tls.acme (but its names)")
	}
	if len(changed) > 0 {
		s.log.Warn("read at start only: restart the service to use the new values", "keys", strings.Join(changed, ", "))
	}
	if s.opts.Reloaded != nil {
		s.opts.Reloaded()
	}
	return nil
}

// startOnlyChanges lists the start-only keys whose values differ.
func startOnlyChanges(a, b *config.Config) []string {
	var out []string
	bv := b.StartOnly()
	for i, kv := range a.StartOnly() {
		if kv.Value != bv[i].Value {
			out = append(out, kv.Key)
		}
	}
	return out
}
