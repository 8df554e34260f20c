package config

import (
	"slices"
	"strings"
	"testing"
)

const opsProvider = `
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`

// TestLimitDefaults: the per-client limits and the /metrics networks get
// their documented defaults, and an explicit empty list of networks stays
// empty (nobody may read /metrics on the main listeners).
func TestLimitDefaults(t *testing.T) {
	for _, c := range []struct {
		name, yaml     string
		perClient, v6  int
		expensive      float64
		expensiveBurst int
		networks       []string
	}{
		{"defaults", opsProvider, DefaultMaxConnectionsPerClient, 64, DefaultExpensivePerSecond, DefaultExpensiveBurst, DefaultMetricsNetworks},
		{"small listener", "limits: {max_connections: 40}\n" + opsProvider, 10, 64, 2, 20, DefaultMetricsNetworks},
		{"tiny listener", "limits: {max_connections: 2}\n" + opsProvider, 1, 64, 2, 20, DefaultMetricsNetworks},
		{"set", "limits: {max_connections_per_client: 8, ipv6_prefix: 56, expensive_per_second: 0.5, expensive_burst: 3}\nmetrics: {allowed_networks: [10.0.0.0/8]}\n" + opsProvider,
			8, 56, 0.5, 3, []string{"10.0.0.0/8"}},
		{"off", "limits: {max_connections_per_client: -1, expensive_per_second: -1}\nmetrics: {allowed_networks: []}\n" + opsProvider,
			-1, 64, -1, 20, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("ops.yaml", []byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			l := cfg.Limits.WithDefaults()
			if l.MaxConnectionsPerClient != c.perClient || l.IPv6Prefix != c.v6 || l.ExpensivePerSecond != c.expensive || l.ExpensiveBurst != c.expensiveBurst {
				t.Errorf("limits %+v", l)
			}
			if !slices.Equal(cfg.Metrics.AllowedNetworks, c.networks) || (cfg.Metrics.AllowedNetworks == nil) {
				t.Errorf("metrics.allowed_networks = %#v, want %#v", cfg.Metrics.AllowedNetworks, c.networks)
			}
		})
	}
}

func TestLimitErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"limits: {max_connections: 100, max_connections_per_client: 101}\n", "ops.yaml:1: limits.max_connections_per_client: 101 is more than limits.max_connections (100)"},
		{"limits: {ipv6_prefix: 129}\n", "limits.ipv6_prefix: 129 is not a prefix length (1 to 128)"},
		{"limits: {ipv6_prefix: -8}\n", "limits.ipv6_prefix: -8 is not a prefix length"},
		{"limits: {expensive_burst: -1}\n", "limits.expensive_burst: must not be negative"},
		{"metrics: {allowed_networks: [10.0.0.0/33]}\n", `ops.yaml:1: metrics.allowed_networks[0]: "10.0.0.0/33" is not an IP address or CIDR range`},
	} {
		_, err := Parse("ops.yaml", []byte(c.yaml+opsProvider))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", strings.TrimSpace(c.yaml), err, c.want)
		}
	}
}
