package directory

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Load results, the values of mailautoconf_directory_loads_total's label.
const (
	LoadOK      = "ok"      // read and put in force (or unchanged)
	LoadError   = "error"   // the source failed; the last good data stays
	LoadRefused = "refused" // read, but it lost too many domains at once
)

// Lookup results, the values of mailautoconf_directory_mailbox_lookups_total's
// label.
const (
	LookupCached  = "cached"  // answered from the cache (found or not)
	LookupFound   = "found"   // asked the source, which knows the mailbox
	LookupUnknown = "unknown" // asked the source, which does not
	LookupInvalid = "invalid" // the source's values failed the checks
	LookupError   = "error"   // the source failed
	LookupTimeout = "timeout" // no answer within the timeout
	LookupSkipped = "skipped" // not asked: the source failed just before
)

// Metrics are the directory's Prometheus collectors. They are registered
// with the server's registry by Register; every label has a fixed set of
// values.
type Metrics struct {
	Up          prometheus.Gauge
	Domains     prometheus.Gauge
	Skipped     prometheus.Gauge
	LastSuccess prometheus.Gauge
	Loaded      prometheus.Gauge
	Loads       *prometheus.CounterVec
	LoadSeconds prometheus.Gauge
	Lookups     *prometheus.CounterVec
	CacheSize   prometheus.Gauge
}

// NewMetrics creates the collectors, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		Up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_up",
			Help: "Whether the last attempt to read the directory's domains reached it (1) or not (0).",
		}),
		Domains: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_domains",
			Help: "Domains from the directory in force.",
		}),
		Skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_skipped_rows",
			Help: "Rows of the last read that failed the checks and are not served.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_last_success_timestamp_seconds",
			Help: "When the directory's domains were last read successfully.",
		}),
		Loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_snapshot_timestamp_seconds",
			Help: "When the domains in force were read from the directory (older than the last success after a refused read; from storage after a start with the directory down).",
		}),
		Loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_directory_loads_total",
			Help: "Reads of the directory's domains by result: ok, error, refused (lost too many domains).",
		}, []string{"result"}),
		LoadSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_load_duration_seconds",
			Help: "How long the last read of the directory's domains took.",
		}),
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_directory_mailbox_lookups_total",
			Help: "Per-mailbox lookups by result: cached, found, unknown, invalid, error, timeout, skipped.",
		}, []string{"result"}),
		CacheSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailautoconf_directory_mailbox_cache_entries",
			Help: "Mailboxes (found or not) in the lookup cache.",
		}),
	}
	for _, r := range []string{LoadOK, LoadError, LoadRefused} {
		m.Loads.WithLabelValues(r)
	}
	for _, r := range []string{LookupCached, LookupFound, LookupUnknown, LookupInvalid, LookupError, LookupTimeout, LookupSkipped} {
		m.Lookups.WithLabelValues(r)
	}
	return m
}

// Register adds the collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Up, m.Domains, m.Skipped, m.LastSuccess, m.Loaded, m.Loads, m.LoadSeconds, m.Lookups, m.CacheSize} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
