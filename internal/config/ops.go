package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// TLS lists the certificate and key files of the HTTPS listener. The one
// whose names match the client's SNI is used, the first one otherwise.
type TLS struct {
	Certificates []CertPair `yaml:"certificates"`
	// ACME obtains certificates automatically (see acme.go); nil when the
	// section is absent.
	ACME *ACME `yaml:"acme"`
}

// CertPair is a PEM certificate (with its chain) and its private key.
type CertPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Limits protect the service from abusive or broken clients.
type Limits struct {
	// RatePerSecond is the sustained number of HTTP requests allowed per
	// client IP address; 0 takes the default, a negative value disables
	// the limit.
	RatePerSecond float64 `yaml:"rate_per_second"`
	// Burst is how many requests a client may send at once.
	Burst int `yaml:"burst"`
	// MaxConnections caps concurrent HTTP(S) connections per listener.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient caps the connections one client (an IPv4
	// address, an IPv6 network of IPv6Prefix bits) holds open on a
	// listener, so that one client cannot take all of MaxConnections.
	// Counted on the TCP peer; trusted proxies are not counted. 0 takes
	// the default, a negative value turns the cap off.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// IPv6Prefix is the prefix length of the IPv6 network counted as one
	// client by the rate limits and the connection cap.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// ExpensivePerSecond and ExpensiveBurst are a second budget per
	// client for answers that cost far more than the others: profiles
	// signed anew, QR codes drawn anew and /metrics scrapes. 0 takes the
	// default, a negative rate turns the budget off.
	ExpensivePerSecond float64 `yaml:"expensive_per_second"`
	ExpensiveBurst     int     `yaml:"expensive_burst"`
}

// Defaults of Limits: generous for a mail client (one to five requests per
// account set-up), tight for a scanner.
const (
	DefaultRatePerSecond  = 20
	DefaultBurst          = 50
	DefaultMaxConnections = 4096
	// DefaultMaxConnectionsPerClient is a 32nd of the listener's
	// connections: far more than a browser (6) or a NAT full of mail
	// clients keeps open, and 32 clients are needed to fill a listener.
	DefaultMaxConnectionsPerClient = 128
	DefaultIPv6Prefix              = 64
	// A signature (RSA: about 2 ms) or a QR code (about 4 ms) at 2 per
	// second is under 1 % of a CPU per client; a person downloading a
	// profile or two needs far less than the burst.
	DefaultExpensivePerSecond = 2
	DefaultExpensiveBurst     = 20
)

// Log configures logging.
type Log struct {
	// Format is text or json.
	Format string `yaml:"format"`
	// Addresses logs whole addresses instead of their domain only.
	Addresses bool `yaml:"addresses"`
}

// Metrics configures the Prometheus metrics.
type Metrics struct {
	// PerDomain adds a per-domain request counter. Off by default: with
	// thousands of domains the label set would be large.
	PerDomain bool `yaml:"per_domain"`
	// AllowedNetworks may read /metrics on the HTTP and HTTPS listeners
	// (nil: DefaultMetricsNetworks; empty: nobody). The separate metrics
	// listener (listen.metrics) answers everyone who reaches it.
	AllowedNetworks []string `yaml:"allowed_networks"`
}

// DefaultMetricsNetworks may read /metrics on the main listeners when
// metrics.allowed_networks is not set: the host itself. The page tells
// which domains are served and how busy the service is, and a scrape
// costs more than any other answer.
var DefaultMetricsNetworks = []string{"127.0.0.0/8", "::1"}

// WithDefaults returns the limits with the defaults in place of zero
// values. A negative rate (the limit off) stays as it is.
func (l Limits) WithDefaults() Limits {
	if l.RatePerSecond == 0 {
		l.RatePerSecond = DefaultRatePerSecond
	}
	if l.Burst == 0 {
		l.Burst = DefaultBurst
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConnectionsPerClient == 0 {
		l.MaxConnectionsPerClient = min(DefaultMaxConnectionsPerClient, max(1, l.MaxConnections/4))
	}
	if l.IPv6Prefix == 0 {
		l.IPv6Prefix = DefaultIPv6Prefix
	}
	if l.ExpensivePerSecond == 0 {
		l.ExpensivePerSecond = DefaultExpensivePerSecond
	}
	if l.ExpensiveBurst == 0 {
		l.ExpensiveBurst = DefaultExpensiveBurst
	}
	return l
}

// KeyValue is a configuration key and its value as text.
type KeyValue struct{ Key, Value string }

// StartOnly lists the keys that take effect only when the service starts,
// with their values: the listen addresses (the sockets stay open across a
// reload, so that no request in flight is dropped) and the log format. A
// reload rebuilds everything else.
func (c *Config) StartOnly() []KeyValue {
	return []KeyValue{
		{"listen.http", c.Listen.HTTP},
		{"listen.https", c.Listen.HTTPS},
		{"listen.dns", c.Listen.DNS},
		{"listen.metrics", c.Listen.Metrics},
		{"log.format", c.Log.Format},
	}
}

// CertificateFiles returns tls.certificates with the file names resolved
// (Config.Path).
func (c *Config) CertificateFiles() []CertPair {
	out := make([]CertPair, len(c.TLS.Certificates))
	for i, p := range c.TLS.Certificates {
		out[i] = CertPair{Cert: c.Path(p.Cert), Key: c.Path(p.Key)}
	}
	return out
}

// ops validates the operational sections: listeners, TLS, limits, logs and
// trusted proxies. Relative file names are taken relative to the
// configuration file.
func (v *validator) ops(c *Config) {
	for _, l := range []struct{ path, addr string }{
		{"listen.https", c.Listen.HTTPS}, {"listen.metrics", c.Listen.Metrics},
	} {
		if l.addr != "" {
			if _, _, err := net.SplitHostPort(l.addr); err != nil {
				v.errorf(l.path, "%q is not a host:port address", l.addr)
			}
		}
	}
	if c.Listen.HTTPS != "" && len(c.TLS.Certificates) == 0 && c.TLS.ACME == nil {
		v.errorf("listen.https", "HTTPS needs tls.acme or at least one entry in tls.certificates")
	}
	for i, cp := range c.CertificateFiles() {
		path := fmt.Sprintf("tls.certificates[%d]", i)
		for _, f := range []struct{ name, raw, val string }{
			{"cert", c.TLS.Certificates[i].Cert, cp.Cert}, {"key", c.TLS.Certificates[i].Key, cp.Key},
		} {
			if f.raw == "" {
				v.errorf(path+"."+f.name, "required")
				continue
			}
			if _, err := os.Stat(f.val); err != nil {
				v.errorf(path+"."+f.name, "%v", err)
			}
		}
	}
	if c.Limits.Burst < 0 {
		v.errorf("limits.burst", "must not be negative")
	}
	if c.Limits.MaxConnections < 0 {
		v.errorf("limits.max_connections", "must not be negative")
	}
	l := c.Limits.WithDefaults()
	if l.MaxConnectionsPerClient > l.MaxConnections && l.MaxConnections > 0 {
		v.errorf("limits.max_connections_per_client", "%d is more than limits.max_connections (%d)", l.MaxConnectionsPerClient, l.MaxConnections)
	}
	if l.IPv6Prefix < 1 || l.IPv6Prefix > 128 {
		v.errorf("limits.ipv6_prefix", "%d is not a prefix length (1 to 128)", l.IPv6Prefix)
	}
	if l.ExpensiveBurst < 0 {
		v.errorf("limits.expensive_burst", "must not be negative")
	}
	if c.Metrics.AllowedNetworks == nil {
		c.Metrics.AllowedNetworks = append([]string(nil), DefaultMetricsNetworks...)
	}
	for i, p := range c.Metrics.AllowedNetworks {
		if _, err := ParsePrefix(p); err != nil {
			v.errorf(fmt.Sprintf("metrics.allowed_networks[%d]", i), "%q is not an IP address or CIDR range", p)
		}
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		v.errorf("log.format", "%q is not text or json", c.Log.Format)
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.errorf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR range", p)
		}
	}
}

// ParsePrefix reads "192.0.2.1" or "192.0.2.0/24" (and IPv6 forms) as a
// prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
