package server

import "github.com/prometheus/client_golang/prometheus"

// signingExpiry exports when the certificate that signs Apple profiles
// expires, read at each scrape from the configuration in force: from the
// files of signing.certificate, or the managed certificate of
// signing.acme_name as it is renewed. Nothing is exported while profiles
// are not signed. An expired signing certificate does not stop the
// service, but iOS and macOS then show every profile as "Not Verified",
// which nothing else tells an operator.
type signingExpiry struct {
	srv  *Server
	desc *prometheus.Desc
}

func newSigningExpiry(s *Server) *signingExpiry {
	return &signingExpiry{srv: s, desc: prometheus.NewDesc(
		"mailautoconf_signing_certificate_not_after_timestamp_seconds",
		"Expiry of the certificate Apple profiles are signed with (absent while profiles are not signed).",
		nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *signingExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *signingExpiry) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.State()
	if st == nil || st.Mobileconfig == nil {
		return
	}
	if t, ok := st.Mobileconfig.SigningNotAfter(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()))
	}
}
