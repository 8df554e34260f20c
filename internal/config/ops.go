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
}

// Defaults of Limits: generous for a mail client (one to five requests per
// account set-up), tight for a scanner.
const (
	DefaultRatePerSecond  = 20
	DefaultBurst          = 50
	DefaultMaxConnections = 4096
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
}

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
	return l
}

// KeyValue is a configuration key and its value as text.
type KeyValue struct{ Key, Value string }

// StartOnly lists the keys that take effect only when the service starts,
// with their values: the listen addresses (the sockets stay open across a
// reload, so that no request in flight is dropped), the log format, and the
// directory block (its source is opened once; its domains are re-read all
// the time anyway). A reload rebuilds everything else.
func (c *Config) StartOnly() []KeyValue {
	return []KeyValue{
		{"listen.http", c.Listen.HTTP},
		{"listen.https", c.Listen.HTTPS},
		{"listen.dns", c.Listen.DNS},
		{"listen.metrics", c.Listen.Metrics},
		{"log.format", c.Log.Format},
		{"directory", c.Directory.Fingerprint()},
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
