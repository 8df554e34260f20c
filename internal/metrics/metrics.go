// Package metrics defines the service's Prometheus metrics. Every label has
// a small, fixed set of values: no per-address label, and a per-domain
// counter only when the configuration asks for it.
package metrics

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mailautoconf/internal/route"
)

// Outcome label values: the result of a request as the metrics count it.
// The server derives it from the HTTP status; handlers whose status does
// not tell it (Autodiscover answers errors with 200) set it through
// web.SetOutcome. Endpoint label values are the route table's
// (internal/route).
const (
	OutcomeOK            = "ok"
	OutcomeUnknownDomain = "unknown-domain"
	OutcomeBadRequest    = "bad-request"
	OutcomeRateLimited   = "rate-limited"
	OutcomeError         = "error"
)

// Metrics holds the collectors of one server, in a registry of its own (no
// global registry: two servers in one process, as in tests, do not clash).
type Metrics struct {
	Registry       *prometheus.Registry
	Requests       *prometheus.CounterVec
	DomainRequests *prometheus.CounterVec
	Duration       *prometheus.HistogramVec
	DNSQueries     *prometheus.CounterVec
	Reloads        *prometheus.CounterVec
	LastReloadOK   prometheus.Gauge
	LastReloadTime prometheus.Gauge
	Domains        prometheus.Gauge
	DomainsSkipped prometheus.Gauge
	CertNotAfter   *prometheus.GaugeVec
	perDomain      atomic.Bool

	// requests and durations hold the children of Requests and Duration
	// for every known label combination, looked up once here: finding a
	// child through WithLabelValues hashes the values and takes a lock on
	// every request. Built in New and only read afterwards.
	requests  map[[3]string]prometheus.Counter
	durations map[string]prometheus.Observer
}

// Label values known in advance, for the children built in New.
var (
	outcomes = []string{OutcomeOK, OutcomeUnknownDomain, OutcomeBadRequest, OutcomeRateLimited, OutcomeError}
	families = []string{"thunderbird", "android", "outlook", "apple", "other"}
)

// New creates and registers the metrics. The per-domain request counter
// is off until SetPerDomain turns it on.
func New(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_http_requests_total",
			Help: "HTTP requests by endpoint, outcome and client family.",
		}, []string{"endpoint", "outcome", "client"}),
		DomainRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_http_domain_requests_total",
			Help: "HTTP requests by served domain (only with metrics.per_domain).",
		}, []string{"domain"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailautoconf_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by endpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"endpoint"}),
		DNSQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_dns_queries_total",
			Help: "DNS queries by query type and response code.",
		}, []string{"qtype", "rcode"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_config_reloads_total",
			Help: "Configuration reloads by result.",
		}, []string{"result"}),
		LastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_config_last_reload_successful",
			Help: "Whether the last configuration (re)load succeeded.",
		}),
		LastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded.",
		}),
		Domains: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_config_domains",
			Help: "Domains served by the configuration in force.",
		}),
		DomainsSkipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_config_domains_not_served",
			Help: "Domains left out of the configuration in force because they conflict with another entry (a directory row naming a domain the file serves, an alias of an alias): each is logged as \"domain not served\" with the reason.",
		}),
		CertNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailautoconf_tls_certificate_not_after_timestamp_seconds",
			Help: "Expiry of each loaded TLS certificate, by file name.",
		}, []string{"certificate"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mailautoconf_build_info",
		Help:        "Build information.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	// DomainRequests is registered either way: without children (per
	// domain off) it is not exported at all.
	m.Registry.MustRegister(m.Requests, m.DomainRequests, m.Duration, m.DNSQueries, m.Reloads,
		m.LastReloadOK, m.LastReloadTime, m.Domains, m.DomainsSkipped, m.CertNotAfter, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	endpoints := route.Endpoints()
	m.requests = make(map[[3]string]prometheus.Counter, len(endpoints)*len(outcomes)*len(families))
	m.durations = make(map[string]prometheus.Observer, len(endpoints))
	for _, e := range endpoints {
		m.durations[e] = m.Duration.WithLabelValues(e)
		for _, o := range outcomes {
			for _, f := range families {
				m.requests[[3]string{e, o, f}] = m.Requests.WithLabelValues(e, o, f)
			}
		}
	}
	return m
}

// ObserveRequest counts one HTTP request and records its duration.
func (m *Metrics) ObserveRequest(endpoint, outcome, client string, d time.Duration) {
	c, ok := m.requests[[3]string{endpoint, outcome, client}]
	if !ok {
		c = m.Requests.WithLabelValues(endpoint, outcome, client)
	}
	c.Inc()
	o, ok := m.durations[endpoint]
	if !ok {
		o = m.Duration.WithLabelValues(endpoint)
	}
	o.Observe(d.Seconds())
}

// PerDomain reports whether per-domain counting is on.
func (m *Metrics) PerDomain() bool { return m.perDomain.Load() }

// SetPerDomain turns per-domain counting on or off (metrics.per_domain,
// on every load). Turned off, the per-domain series go away.
func (m *Metrics) SetPerDomain(on bool) {
	if !m.perDomain.Swap(on) || on {
		return
	}
	m.DomainRequests.Reset()
}

// ObserveDNS counts one DNS answer.
func (m *Metrics) ObserveDNS(qtype, rcode string) {
	m.DNSQueries.WithLabelValues(qtype, rcode).Inc()
}

// ClientFamily classifies a User-Agent into a few families, for metrics and
// logs. Order matters: Thunderbird for Android says "Android", K-9 Mail
// says "k9mail", Outlook for Mac says "Macintosh", and Apple's Mail and
// profile installer say "iPhone", "iPad", "Macintosh" or "CFNetwork".
func ClientFamily(ua string) string {
	// Lower-case into a stack buffer: strings.ToLower would allocate for
	// every real User-Agent, on every request. Longer values are cut; the
	// family is told by the first few dozen characters anyway.
	var buf [256]byte
	u := buf[:min(len(ua), len(buf))]
	for i := range u {
		c := ua[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		u[i] = c
	}
	has := func(s string) bool { return bytes.Contains(u, []byte(s)) }
	switch {
	case len(u) == 0:
		return "other"
	case has("k9mail") || has("k-9") || (has("thunderbird") && has("android")):
		return "android"
	case has("thunderbird"):
		return "thunderbird"
	case has("outlook") || has("microsoft office") || has("ms-office") ||
		has("msoffice") || has("mapi") || has("autodiscover"):
		return "outlook"
	case has("android"):
		return "android"
	case has("iphone") || has("ipad") || has("macintosh") || has("cfnetwork") || has("darwin"):
		return "apple"
	}
	return "other"
}
