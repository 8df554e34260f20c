package server

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailautoconf/internal/config"
	"mailautoconf/internal/web"
)

func (s *Server) healthz(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }

func (s *Server) readyz(c echo.Context) error {
	if !s.ready.Load() || s.State() == nil {
		return c.String(http.StatusServiceUnavailable, "not ready\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// metricsHandler serves the metrics page, after counting the requests
// answered so far whose batch (accesslog.go) is not written yet.
func (s *Server) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.access.Flush()
		h.ServeHTTP(w, r)
	})
}

// metricsRoute serves /metrics on the HTTP and HTTPS listeners, to clients
// of metrics.allowed_networks only (by default the host itself); anyone
// else gets the 404 of an unknown path. The page tells which domains are
// served and how busy the service is, and a scrape (about 1.5 ms) costs
// more than any other answer, so it is paid from the expensive-answer
// budget. Behind a trusted proxy the client is the X-Forwarded-For
// address: a proxy in an allowed network does not open the page to the
// internet.
func (s *Server) metricsRoute(c echo.Context) error {
	if st := s.State(); !st.metricsNets.contains(st.proxies.clientIP(c.Request())) {
		return echo.ErrNotFound
	}
	if ok, err := web.Spend(c); !ok {
		return err
	}
	s.metricsHandler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// metricsListenerHandler serves the separate metrics listener
// (listen.metrics): everyone who reaches it may read the page (bind it to
// an internal address), within the expensive-answer budget.
func (s *Server) metricsListenerHandler() http.Handler {
	h := s.metricsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := s.State().budget(); b != nil {
			if ok, retry := b.Spend(r); !ok {
				w.Header().Set("Retry-After", retry)
				w.Header().Set("Connection", "close")
				http.Error(w, "too many requests, slow down", http.StatusTooManyRequests)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// networks is a list of IP networks.
type networks []netip.Prefix

func parseNetworks(list []string) (networks, error) {
	var n networks
	for _, s := range list {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		n = append(n, p)
	}
	return n, nil
}

func (n *networks) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range *n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
