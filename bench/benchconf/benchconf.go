// Package benchconf generates large configurations for the benchmarks and
// the load harness, so that no multi-megabyte file has to be kept in the
// repository. The shape is that of a hoster: providers of many customer
// domains each, all with the DNS server on, which is the most memory a
// configuration can cost (every domain gets its zone).
package benchconf

import (
	"fmt"
	"strings"
)

// PerProvider is the number of domains of each generated provider.
const PerProvider = 1000

// Options shape a generated configuration.
type Options struct {
	// Domains is the total number of domains (d0.example … dN-1.example);
	// the first two are example.com and example.net, so that the demo's
	// URLs and DNS names work against it.
	Domains int
	// NoRateLimit switches the per-client HTTP rate limit off, as a load
	// test from one address needs.
	NoRateLimit bool
	// Signing adds a signing section with these certificate and key files
	// (PEM); empty: unsigned profiles.
	SigningCert, SigningKey string
}

// Domain returns the name of domain i of a generated configuration.
func Domain(i int) string {
	switch i {
	case 0:
		return "example.com"
	case 1:
		return "example.net"
	}
	return fmt.Sprintf("d%d.example", i)
}

// YAML returns the configuration text.
func YAML(o Options) []byte {
	var b strings.Builder
	b.Grow(o.Domains*24 + 4096)
	if o.NoRateLimit {
		b.WriteString("limits: {rate_per_second: -1}\n")
	}
	if o.SigningCert != "" {
		fmt.Fprintf(&b, "signing: {certificate: %q, key: %q}\n", o.SigningCert, o.SigningKey)
	}
	b.WriteString(`dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1, "::1"]
  rate_limit: {responses_per_second: 0}
  tcp: {max_connections_per_source: 1024}
providers:
`)
	for p := 0; p*PerProvider < o.Domains; p++ {
		fmt.Fprintf(&b, `  - id: mail%d.example.com
    display_name: Example Mail %d
    servers:
      - {type: imap, host: imap.example.com, port: 993, security: tls}
      - {type: imap, host: imap.example.com, port: 143, security: starttls}
      - {type: pop3, host: pop.example.com, port: 995, security: tls}
      - {type: pop3, host: pop.example.com, port: 110, security: starttls}
      - {type: smtp, host: smtp.example.com, port: 465, security: tls}
      - {type: smtp, host: smtp.example.com, port: 587, security: starttls}
    domains:
`, p, p)
		for i := p * PerProvider; i < min(o.Domains, (p+1)*PerProvider); i++ {
			b.WriteString("      - ")
			b.WriteString(Domain(i))
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}
