package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
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
	// The limits keep what the file says (nothing): the DNS server
	// fills in its defaults.
	if !reflect.DeepEqual(d.RateLimit, RateLimit{}) || d.TCP != (DNSTCP{}) {
		t.Errorf("absent limits filled in: %+v %+v", d.RateLimit, d.TCP)
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
	if r := d.RateLimit; r.ResponsesPerSecond == nil || *r.ResponsesPerSecond != 0 || r.Slip == nil || *r.Slip != 0 {
		t.Errorf("explicit zeros lost: %+v", d.RateLimit)
	}
}

// The limits are read as written.
func TestDNSLimits(t *testing.T) {
	c, err := Parse("t.yaml", []byte(dnsConfig(`
dns:
  rate_limit:
    responses_per_second: 300
    burst: 40
    slip: 3
    ipv4_prefix: 28
    ipv6_prefix: 64
    exempt: [192.0.2.0/24, "2001:db8::1"]
  tcp: {max_connections: 200, max_connections_per_source: 8, idle_timeout: 1500ms}
`, "0")))
	if err != nil {
		t.Fatal(err)
	}
	r := c.DNS.RateLimit
	if *r.ResponsesPerSecond != 300 || r.Burst != 40 || *r.Slip != 3 || r.IPv4Prefix != 28 || r.IPv6Prefix != 64 ||
		!reflect.DeepEqual(r.Exempt, []string{"192.0.2.0/24", "2001:db8::1"}) {
		t.Errorf("rate_limit: %+v", r)
	}
	if want := (DNSTCP{200, 8, 1500 * time.Millisecond}); c.DNS.TCP != want {
		t.Errorf("tcp: %+v, want %+v", c.DNS.TCP, want)
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
		{"dns:\n  rate_limit: {responses_per_second: -1}\n", "0", `t.yaml:2: dns.rate_limit.responses_per_second: -1 is not 0 (off) to 1000000`},
		{"dns:\n  rate_limit: {responses_per_second: 2000000}\n", "0", `dns.rate_limit.responses_per_second: 2000000 is not 0 (off) to 1000000`},
		{"dns:\n  rate_limit: {burst: -3}\n", "0", `dns.rate_limit.burst: -3 is not 1 to 1000000`},
		{"dns:\n  rate_limit: {slip: 11}\n", "0", `dns.rate_limit.slip: 11 is not 0..10`},
		{"dns:\n  rate_limit: {slip: -1}\n", "0", `dns.rate_limit.slip: -1 is not 0..10`},
		{"dns:\n  rate_limit: {ipv4_prefix: 33}\n", "0", `dns.rate_limit.ipv4_prefix: 33 is not 8..32`},
		{"dns:\n  rate_limit: {ipv6_prefix: 8}\n", "0", `dns.rate_limit.ipv6_prefix: 8 is not 16..128`},
		{"dns:\n  rate_limit:\n    exempt: [10.0.0.0/33]\n", "0", `t.yaml:3: dns.rate_limit.exempt[0]: "10.0.0.0/33" is not an IP address or CIDR range`},
		{"dns:\n  rate_limit:\n    exempt: [resolver.example.net]\n", "0", `dns.rate_limit.exempt[0]: "resolver.example.net" is not an IP address or CIDR range`},
		{"dns:\n  tcp: {max_connections: -1}\n", "0", `t.yaml:2: dns.tcp.max_connections: -1 is not 1 to 1048576`},
		{"dns:\n  tcp: {max_connections_per_source: -1}\n", "0", `dns.tcp.max_connections_per_source: -1 is not 1 to 1048576`},
		{"dns:\n  tcp: {max_connections: 10, max_connections_per_source: 11}\n", "0", `dns.tcp.max_connections_per_source: 11 is more than max_connections (10)`},
		{"dns:\n  tcp: {idle_timeout: 1ms}\n", "0", `dns.tcp.idle_timeout: 1ms is not 100ms to 1h0m0s`},
		{"dns:\n  tcp: {idle_timeout: 2h}\n", "0", `dns.tcp.idle_timeout: 2h0m0s is not 100ms to 1h0m0s`},
		{"dns:\n  tcp: {idle_timeout: -1s}\n", "0", `dns.tcp.idle_timeout: -1s is not 100ms to 1h0m0s`},
		{"dns:\n  tcp: {idle_timeout: 10}\n", "0", `t.yaml:2: cannot unmarshal !!int`},
		{"dns:\n  tcp: {idle_timeout: soon}\n", "0", `t.yaml:2: cannot unmarshal !!str`},
		{"", "70000", `providers[0].servers[0].weight: 70000 is not 0..65535`},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(dnsConfig(tt.dns, tt.weight)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.dns, err, tt.want)
		}
	}
}

// TestAutodiscoverTarget: dns.autodiscover_target applies to every
// provider, a provider's own dns.autodiscover_target wins, both are
// normalised (case, trailing dot, IDNA), and no target means
// autodiscover.<domain>.
func TestAutodiscoverTarget(t *testing.T) {
	const two = `
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: mail.example.org
    domains: [example.org]
    dns: {autodiscover_target: %s}
    servers:
      - {type: imap, host: imap.example.org}
      - {type: smtp, host: smtp.example.org}
`
	tests := []struct {
		global, own string
		want        [2]string // AutodiscoverHost of each provider's domain
		wantErr     string
	}{
		{"", `""`, [2]string{"autodiscover.example.com", "autodiscover.example.org"}, ""},
		{"Autodiscover.Hoster.Example.", `""`, [2]string{"autodiscover.hoster.example", "autodiscover.hoster.example"}, ""},
		{"autodiscover.hoster.example", "AD.Other.Example", [2]string{"autodiscover.hoster.example", "ad.other.example"}, ""},
		{"", "autodiscover.bücher.example", [2]string{"autodiscover.example.com", "autodiscover.xn--bcher-kva.example"}, ""},
		{"192.0.2.10", `""`, [2]string{}, `t.yaml:2: dns.autodiscover_target: "192.0.2.10" is an IP address; the SRV target must be a host name`},
		{"", `"2001:db8::1"`, [2]string{}, `t.yaml:11: providers[1].dns.autodiscover_target: "2001:db8::1" is an IP address`},
		{`"*.hoster.example"`, `""`, [2]string{}, `dns.autodiscover_target: "*.hoster.example" is not a host name`},
		{`"bad host"`, `""`, [2]string{}, `dns.autodiscover_target: "bad host" is not a host name`},
		{"", "https://ad.example.org/", [2]string{}, `providers[1].dns.autodiscover_target: "https://ad.example.org/" is not a host name`},
	}
	for _, tt := range tests {
		yaml := "dns:\n  autodiscover_target: " + tt.global + "\n" + strings.Replace(two, "%s", tt.own, 1)
		if tt.global == "" {
			yaml = "dns: {}\n" + strings.Replace(two, "%s", tt.own, 1)
		}
		c, err := Parse("t.yaml", []byte(yaml))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s / %s: error %v, want %q", tt.global, tt.own, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s / %s: %v", tt.global, tt.own, err)
			continue
		}
		host := func(i int, domain string) string {
			if t := c.AutodiscoverTarget(&c.Providers[i]); t != "" {
				return t
			}
			return "autodiscover." + domain
		}
		got := [2]string{host(0, "example.com"), host(1, "example.org")}
		if got != tt.want {
			t.Errorf("%s / %s: targets %v, want %v", tt.global, tt.own, got, tt.want)
		}
	}
}
