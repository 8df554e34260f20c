package config

import (
	"strings"
	"testing"
)

const dnsProviders = `
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com, weight: %WEIGHT%}
      - {type: smtp, host: smtp.example.com}
`

func dnsConfig(dns, weight string) string {
	return dns + strings.ReplaceAll(dnsProviders, "%WEIGHT%", weight)
}

func TestDNSDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(dnsConfig("", "0")))
	if err != nil {
		t.Fatal(err)
	}
	d := c.DNS
	if d.ZoneMode() != ZoneDomain || d.RecordTTL() != DefaultDNSTTL || d.NegativeCacheTTL() != DefaultNegativeTTL || d.SOASerial() != 1 {
		t.Errorf("defaults: %+v", d)
	}
	if d.Zone != "" || d.TTL != 0 {
		t.Errorf("the parsed file was changed: %+v", d)
	}
	if d.RateLimit.Rate() != DefaultRateLimit || d.RateLimit.SlipEvery() != DefaultRateSlip ||
		d.RateLimit.Burst != DefaultRateBurst || d.RateLimit.IPv4Prefix != 24 || d.RateLimit.IPv6Prefix != 56 {
		t.Errorf("rate limit defaults: %+v", d.RateLimit)
	}
	c, err = Parse("t.yaml", []byte(dnsConfig(`
dns:
  zone: _TCP
  hostmaster: Hostmaster@Example.COM
  nameservers: [NS1.Example.com.]
  service_addresses: ["::ffff:192.0.2.1", "2001:db8::1"]
  hosts: {IMAP.example.com.: [192.0.2.5]}
  rate_limit: {responses_per_second: 0, slip: 0}
`, "5")))
	if err != nil {
		t.Fatal(err)
	}
	d = c.DNS
	if d.ZoneMode() != ZoneTCP || d.HostmasterAddress() != "Hostmaster@example.com" || d.NameserverNames()[0] != "ns1.example.com" {
		t.Errorf("normalised: %+v", d)
	}
	if sa, h := d.ServiceIPs(), d.HostIPs(); len(sa) != 2 || !sa[0].Is4() || len(h["imap.example.com"]) != 1 {
		t.Errorf("addresses: %v %v", sa, h)
	}
	if d.RateLimit.Rate() != 0 || d.RateLimit.SlipEvery() != 0 {
		t.Errorf("explicit zeros lost: %+v", d.RateLimit)
	}
}

func TestDNSErrors(t *testing.T) {
	tests := []struct {
		dns, weight, want string
	}{
		{"listen: {dns: nonsense}\n", "0", `t.yaml:1: listen.dns: "nonsense" is not a host:port address`},
		{"dns: {zone: everything}\n", "0", `t.yaml:1: dns.zone: "everything" is not "domain" or "_tcp"`},
		{"dns: {ttl: -5}\n", "0", `t.yaml:1: dns.ttl: -5 is not a TTL in seconds`},
		{"dns:\n  nameservers: [\"ns 1.example.com\"]\n", "0", `t.yaml:2: dns.nameservers[0]: "ns 1.example.com" is not a host name`},
		{"dns:\n  hostmaster: nobody\n", "0", `t.yaml:2: dns.hostmaster: "nobody" is not a mail address`},
		{"dns:\n  hostmaster: dns.admin@example.com\n", "0", `dns.hostmaster: "dns.admin@example.com": the local part must not contain a dot in the SOA`},
		{"dns:\n  service_addresses: [192.0.2.300]\n", "0", `t.yaml:2: dns.service_addresses[0]: "192.0.2.300" is not an IP address`},
		{"dns:\n  service_addresses: [192.0.2.1]\n  service_cname: web.example.com\n", "0", `t.yaml:3: dns.service_cname: give either service_addresses or service_cname, not both`},
		{"dns:\n  service_cname: -bad-\n", "0", `dns.service_cname: "-bad-" is not a host name`},
		{"dns:\n  hosts:\n    imap.example.com: [mail]\n", "0", `dns.hosts.imap.example.com[0]: "mail" is not an IP address`},
		{"dns:\n  hosts:\n    imap.example.com: []\n", "0", `dns.hosts.imap.example.com: at least one address is required`},
		{"dns:\n  rate_limit: {responses_per_second: -1}\n", "0", `dns.rate_limit.responses_per_second: -1 must be 0 (off) or more`},
		{"dns:\n  rate_limit: {slip: 11}\n", "0", `dns.rate_limit.slip: 11 is not 0..10`},
		{"dns:\n  rate_limit: {ipv4_prefix: 33}\n", "0", `dns.rate_limit.ipv4_prefix: 33 is not 8..32`},
		{"", "70000", `providers[0].servers[0].weight: 70000 is not 0..65535`},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(dnsConfig(tt.dns, tt.weight)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.dns, err, tt.want)
		}
	}
}
