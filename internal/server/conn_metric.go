package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"mailautoconf/internal/limit"
	"mailautoconf/internal/watchdog"
)

// connCounts is what the listeners count of the connections they end
// themselves, published once Listen has opened them.
type connCounts struct {
	wd      *watchdog.Watchdog
	clients []*limit.Listener
}

// connClosed exports, at each scrape, the connections the service closed
// on its own: a slow-loris attack or a client stuck behind a bad network
// shows as "slow", a client opening connections in a loop as "client_cap".
type connClosed struct {
	srv  *Server
	desc *prometheus.Desc
}

func newConnClosed(s *Server) *connClosed {
	return &connClosed{srv: s, desc: prometheus.NewDesc(
		"mailautoconf_http_connections_closed_total",
		"HTTP connections the service closed itself, by reason: slow (a request's head, body or the reading of its answer took too long) and idle (keep-alive timeout), on the plain HTTP listeners; client_cap (over limits.max_connections_per_client, closed at accept), on every listener.",
		[]string{"reason"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *connClosed) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *connClosed) Collect(ch chan<- prometheus.Metric) {
	cc := c.srv.connCounts.Load()
	if cc == nil {
		return
	}
	var refused uint64
	for _, l := range cc.clients {
		refused += l.Refused()
	}
	for _, v := range []struct {
		reason string
		n      uint64
	}{{"slow", cc.wd.Cut()}, {"idle", cc.wd.Idle()}, {"client_cap", refused}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v.n), v.reason)
	}
}
