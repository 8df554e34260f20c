package acme

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values. Every label has a small fixed set of values: with
// thousands of domains a per-name label would make thousands of series, so
// expiry is a distribution (how many certificates expire within a day, a
// week, ...) plus the earliest expiry.
const (
	kindNew     = "new"
	kindRenewal = "renewal"

	stagePrecheck = "precheck"
	stageOrder    = "order"
	stageStorage  = "storage"

	deniedUnserved = "unserved"
	deniedBackoff  = "backoff"
	deniedDisabled = "disabled"
)

// expiryBuckets are the upper bounds of the expiry distribution, in
// seconds: 1, 3, 7, 14, 30, 60 and 90 days.
var expiryBuckets = []float64{86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400, 90 * 86400}

type metrics struct {
	orders   *prometheus.CounterVec
	failures *prometheus.CounterVec
	denied   *prometheus.CounterVec

	certs    *prometheus.Desc
	missing  *prometheus.Desc
	failing  *prometheus.Desc
	queue    *prometheus.Desc
	expiry   *prometheus.Desc
	earliest *prometheus.Desc
}

func newMetrics() *metrics {
	m := &metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_acme_orders_total",
			Help: "Certificate orders sent to the ACME CA, by kind (new, renewal) and result (success, failure).",
		}, []string{"kind", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_acme_failures_total",
			Help: "Failed attempts to get a certificate, by stage: precheck (the name does not reach this service), order (the CA refused or validation failed), storage.",
		}, []string{"stage"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailautoconf_acme_on_demand_denied_total",
			Help: "TLS handshakes for a name without certificate that started no order, by reason: unserved name, name backing off after a failure, on-demand issuance disabled.",
		}, []string{"reason"}),
		certs: prometheus.NewDesc("mailautoconf_acme_certificates",
			"Managed certificates in memory, by state: valid, renewal_due (in its renewal window), expired.", []string{"state"}, nil),
		missing: prometheus.NewDesc("mailautoconf_acme_names_missing",
			"Names to be issued in advance that have no certificate yet.", nil, nil),
		failing: prometheus.NewDesc("mailautoconf_acme_names_failing",
			"Names whose last attempt failed and that wait for their next try (exponential back-off).", nil, nil),
		queue: prometheus.NewDesc("mailautoconf_acme_queue_length",
			"Names waiting in the background queue.", nil, nil),
		expiry: prometheus.NewDesc("mailautoconf_acme_certificate_expiry_seconds",
			"Distribution of the time left until managed certificates expire (bucket le: expiring within that many seconds).", nil, nil),
		earliest: prometheus.NewDesc("mailautoconf_acme_certificate_earliest_expiry_timestamp_seconds",
			"Expiry (Unix time) of the managed certificate that expires first; absent without certificates.", nil, nil),
	}
	for _, k := range []string{kindNew, kindRenewal} {
		for _, r := range []string{"success", "failure"} {
			m.orders.WithLabelValues(k, r)
		}
	}
	for _, s := range []string{stagePrecheck, stageOrder, stageStorage} {
		m.failures.WithLabelValues(s)
	}
	for _, r := range []string{deniedUnserved, deniedBackoff, deniedDisabled} {
		m.denied.WithLabelValues(r)
	}
	return m
}

// collector computes the state gauges at scrape time from the manager's
// cache, so that nothing has to keep them up to date.
type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	mt := c.m.metrics
	mt.orders.Describe(ch)
	mt.failures.Describe(ch)
	mt.denied.Describe(ch)
	for _, d := range []*prometheus.Desc{mt.certs, mt.missing, mt.failing, mt.queue, mt.expiry, mt.earliest} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	mt := c.m.metrics
	mt.orders.Collect(ch)
	mt.failures.Collect(ch)
	mt.denied.Collect(ch)

	s := c.m.summary(time.Now())
	for _, st := range []struct {
		name string
		n    int
	}{{"valid", s.valid}, {"renewal_due", s.renewalDue}, {"expired", s.expired}} {
		ch <- prometheus.MustNewConstMetric(mt.certs, prometheus.GaugeValue, float64(st.n), st.name)
	}
	ch <- prometheus.MustNewConstMetric(mt.missing, prometheus.GaugeValue, float64(s.missing))
	ch <- prometheus.MustNewConstMetric(mt.failing, prometheus.GaugeValue, float64(s.failing))
	ch <- prometheus.MustNewConstMetric(mt.queue, prometheus.GaugeValue, float64(s.queued))
	buckets := make(map[float64]uint64, len(expiryBuckets))
	var sum float64
	for _, left := range s.left {
		sum += left
		for _, b := range expiryBuckets {
			if left <= b {
				buckets[b]++
			}
		}
	}
	ch <- prometheus.MustNewConstHistogram(mt.expiry, uint64(len(s.left)), sum, buckets)
	if !s.earliest.IsZero() {
		ch <- prometheus.MustNewConstMetric(mt.earliest, prometheus.GaugeValue, float64(s.earliest.Unix()))
	}
}
