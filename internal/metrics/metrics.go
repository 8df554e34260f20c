// Package metrics defines the service's Prometheus metrics. Every label has
// a small, fixed set of values: no per-address label, and a per-domain
// counter only when the configuration asks for it.
package metrics

import (
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Endpoint label values.
const (
	EndpointAutoconfig       = "autoconfig"
	EndpointAutodiscoverPOX  = "autodiscover-pox"
	EndpointAutodiscoverJSON = "autodiscover-json"
	EndpointMobileconfig     = "mobileconfig"
	EndpointPage             = "page"
	EndpointOther            = "other"
)

// Outcome label values.
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
	Registry        *prometheus.Registry
	Requests        *prometheus.CounterVec
	DomainRequests  *prometheus.CounterVec
	Duration        *prometheus.HistogramVec
	DNSQueries      *prometheus.CounterVec
	Reloads         *prometheus.CounterVec
	LastReloadOK    prometheus.Gauge
	LastReloadTime  prometheus.Gauge
	Domains         prometheus.Gauge
	CertNotAfter    *prometheus.GaugeVec
	perDomainActive bool
}

// New creates and registers the metrics. perDomain enables the per-domain
// request counter.
func New(version string, perDomain bool) *Metrics {
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
		CertNotAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mailautoconf_tls_certificate_not_after_timestamp_seconds",
			Help: "Expiry of each loaded TLS certificate, by file name.",
		}, []string{"certificate"}),
		perDomainActive: perDomain,
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mailautoconf_build_info",
		Help:        "Build information.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.Registry.MustRegister(m.Requests, m.Duration, m.DNSQueries, m.Reloads,
		m.LastReloadOK, m.LastReloadTime, m.Domains, m.CertNotAfter, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if perDomain {
		m.Registry.MustRegister(m.DomainRequests)
	}
	return m
}

// PerDomain reports whether per-domain counting is on.
func (m *Metrics) PerDomain() bool { return m.perDomainActive }

// ObserveDNS counts one DNS answer.
func (m *Metrics) ObserveDNS(qtype, rcode string) {
	m.DNSQueries.WithLabelValues(qtype, rcode).Inc()
}

// Endpoint classifies a request path. Paths are compared in lower case:
// Outlook and others vary the case of /autodiscover/autodiscover.xml.
func Endpoint(path string) string {
	p := strings.ToLower(path)
	switch {
	case p == "/mail/config-v1.1.xml" || p == "/.well-known/autoconfig/mail/config-v1.1.xml":
		return EndpointAutoconfig
	case strings.HasPrefix(p, "/autodiscover/autodiscover.json"):
		return EndpointAutodiscoverJSON
	case strings.HasPrefix(p, "/autodiscover/"):
		return EndpointAutodiscoverPOX
	case strings.HasSuffix(p, ".mobileconfig") || p == "/mobileconfig":
		return EndpointMobileconfig
	case p == "/" || p == "/settings" || strings.HasPrefix(p, "/settings/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/qr"):
		return EndpointPage
	}
	return EndpointOther
}

// ClientFamily classifies a User-Agent into a few families, for metrics and
// logs. Order matters: Thunderbird for Android says "Android", K-9 Mail
// says "k9mail", Outlook for Mac says "Macintosh", and Apple's Mail and
// profile installer say "iPhone", "iPad", "Macintosh" or "CFNetwork".
func ClientFamily(ua string) string {
	u := strings.ToLower(ua)
	switch {
	case u == "":
		return "other"
	case strings.Contains(u, "k9mail") || strings.Contains(u, "k-9") ||
		(strings.Contains(u, "thunderbird") && strings.Contains(u, "android")):
		return "android"
	case strings.Contains(u, "thunderbird"):
		return "thunderbird"
	case strings.Contains(u, "outlook") || strings.Contains(u, "microsoft office") || strings.Contains(u, "ms-office") ||
		strings.Contains(u, "msoffice") || strings.Contains(u, "mapi") || strings.Contains(u, "autodiscover"):
		return "outlook"
	case strings.Contains(u, "android"):
		return "android"
	case strings.Contains(u, "iphone") || strings.Contains(u, "ipad") || strings.Contains(u, "macintosh") ||
		strings.Contains(u, "cfnetwork") || strings.Contains(u, "darwin"):
		return "apple"
	}
	return "other"
}
