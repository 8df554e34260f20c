package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"mailautoconf/internal/address"
)

// Zone modes: what the built-in DNS server is authoritative for.
const (
	// ZoneDomain makes every served domain a zone of its own (SOA and NS
	// at example.com). Right for a domain whose DNS is delegated to this
	// service as a whole, for the demo and for the zone export.
	ZoneDomain = "domain"
	// ZoneTCP makes _tcp.<domain> the zone, so a hoster who keeps their
	// own DNS for the domain only delegates "_tcp" to this service. The
	// autoconfig./autodiscover. addresses then belong in the hoster's
	// zone: `mailautoconf records` prints them for pasting.
	ZoneTCP = "_tcp"
)

// DNS defaults.
const (
	DefaultDNSTTL         = 3600
	DefaultNegativeTTL    = 300
	DefaultRateLimit      = 50 // responses per second per source network
	DefaultRateBurst      = 100
	DefaultRateSlip       = 2
	DefaultIPv4RatePrefix = 24
	DefaultIPv6RatePrefix = 56
)

// DNS configures the built-in authoritative DNS server and the zone export
// (`mailautoconf records`). The SRV records themselves come from the
// providers' servers; this section only adds what DNS needs on top.
type DNS struct {
	// Zone is "domain" (default) or "_tcp", see ZoneDomain and ZoneTCP.
	Zone string `yaml:"zone"`
	// TTL of every published record, in seconds.
	TTL int `yaml:"ttl"`
	// NegativeTTL is the SOA minimum: how long resolvers cache "no such
	// record" (RFC 2308).
	NegativeTTL int `yaml:"negative_ttl"`
	// Serial is the SOA serial. Nothing transfers the zones from this
	// server, so it only matters to whoever loads the exported zone.
	Serial uint32 `yaml:"serial"`
	// Nameservers are the NS records of every zone (host names). Default:
	// ns.<provider id> of the first provider.
	Nameservers []string `yaml:"nameservers"`
	// Hostmaster is the SOA contact address. Default: hostmaster@<zone>.
	Hostmaster string `yaml:"hostmaster"`
	// ServiceAddresses are the IPv4/IPv6 addresses of this service,
	// published as A/AAAA records of autoconfig.<domain> and
	// autodiscover.<domain>.
	ServiceAddresses []string `yaml:"service_addresses"`
	// ServiceCNAME publishes autoconfig.<domain> and autodiscover.<domain>
	// as aliases of this host name instead (exclusive with
	// service_addresses).
	ServiceCNAME string `yaml:"service_cname"`
	// Hosts gives addresses of other names inside the served zones, such
	// as the mail servers or the name servers, so that SRV targets resolve
	// on this server too. Names outside the zones are ignored.
	Hosts map[string][]string `yaml:"hosts"`
	// PublishUnavailable publishes "0 0 0 ." (service decidedly not
	// available, RFC 2782 and RFC 6186 section 4) for every mail service
	// the provider does not offer, so that clients stop guessing.
	PublishUnavailable bool `yaml:"publish_unavailable"`
	// RateLimit limits UDP responses per source network.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// What the DNS section means once the defaults apply; the DNS server
// builds its zones from these, the validator checks them.

// ZoneMode is ZoneDomain (the default) or ZoneTCP, or what the file says
// in lower case when it is neither.
func (d *DNS) ZoneMode() string {
	z := strings.ToLower(strings.TrimSpace(d.Zone))
	if z == "" {
		return ZoneDomain
	}
	return z
}

// RecordTTL is the TTL of every record, DefaultDNSTTL when not given.
func (d *DNS) RecordTTL() int { return orDefault(d.TTL, DefaultDNSTTL) }

// NegativeCacheTTL is the SOA minimum, DefaultNegativeTTL when not given.
func (d *DNS) NegativeCacheTTL() int { return orDefault(d.NegativeTTL, DefaultNegativeTTL) }

// SOASerial is the SOA serial, 1 when not given.
func (d *DNS) SOASerial() uint32 {
	if d.Serial == 0 {
		return 1
	}
	return d.Serial
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// NameserverNames are the name servers, normalised (NormalizeHost).
func (d *DNS) NameserverNames() []string {
	out := make([]string, len(d.Nameservers))
	for i, n := range d.Nameservers {
		out[i] = NormalizeHost(n)
	}
	return out
}

// HostmasterAddress is the SOA contact address, normalised; empty when
// none is given (or it is no address).
func (d *DNS) HostmasterAddress() string {
	if d.Hostmaster == "" {
		return ""
	}
	a, err := address.Parse(d.Hostmaster)
	if err != nil {
		return ""
	}
	return a.String()
}

// ServiceIPs are service_addresses parsed (ParseIP); entries that are no
// address are left out.
func (d *DNS) ServiceIPs() []netip.Addr {
	var out []netip.Addr
	for _, s := range d.ServiceAddresses {
		if a, err := ParseIP(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// ServiceTarget is service_cname, normalised; empty when not given.
func (d *DNS) ServiceTarget() string { return NormalizeHost(d.ServiceCNAME) }

// HostIPs is hosts parsed: normalised name -> addresses. Entries that are
// no address are left out.
func (d *DNS) HostIPs() map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(d.Hosts))
	for n, list := range d.Hosts {
		h := NormalizeHost(n)
		for _, s := range list {
			if a, err := ParseIP(s); err == nil {
				out[h] = append(out[h], a)
			}
		}
	}
	return out
}

// ParseIP reads an IP address of the configuration: blanks around it are
// ignored, a zone is refused, an IPv4-mapped IPv6 address is read as IPv4.
func ParseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s: an address with a zone", s)
	}
	return a.Unmap(), nil
}

// RateLimit is a per-source response-rate limit for UDP. Over UDP the
// source address is not verified, so without a limit anybody could make
// this server send answers to a victim (reflection). TCP is not limited: its
// handshake proves the source.
type RateLimit struct {
	// ResponsesPerSecond per source network; 0 turns the limit off.
	// Default 50.
	ResponsesPerSecond *int `yaml:"responses_per_second"`
	// Burst is how many responses a quiet network may get at once.
	Burst int `yaml:"burst"`
	// Slip: of the responses over the limit, every Slip-th is sent as an
	// empty truncated answer (TC=1) instead of being dropped, so that a
	// real resolver behind a busy network retries over TCP. 1 truncates
	// all, 0 drops all. Default 2.
	Slip *int `yaml:"slip"`
	// IPv4Prefix and IPv6Prefix group sources into networks.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// Rate is the configured responses per second (0 = off).
func (r RateLimit) Rate() int {
	if r.ResponsesPerSecond == nil {
		return DefaultRateLimit
	}
	return *r.ResponsesPerSecond
}

// SlipEvery is the configured slip ratio.
func (r RateLimit) SlipEvery() int {
	if r.Slip == nil {
		return DefaultRateSlip
	}
	return *r.Slip
}

// dns validates and defaults the DNS section.
func (v *validator) dns(c *Config) {
	d := &c.DNS
	if c.Listen.DNS != "" {
		if _, _, err := net.SplitHostPort(c.Listen.DNS); err != nil {
			v.errorf("listen.dns", "%q is not a host:port address", c.Listen.DNS)
		}
	}
	switch d.ZoneMode() {
	case ZoneDomain, ZoneTCP:
	default:
		v.errorf("dns.zone", "%q is not %q or %q", d.ZoneMode(), ZoneDomain, ZoneTCP)
	}
	if ttl := d.RecordTTL(); ttl < 0 || ttl > 1<<31-1 {
		v.errorf("dns.ttl", "%d is not a TTL in seconds", ttl)
	}
	if ttl := d.NegativeCacheTTL(); ttl < 0 || ttl > 1<<31-1 {
		v.errorf("dns.negative_ttl", "%d is not a TTL in seconds", ttl)
	}
	for i, ns := range d.Nameservers {
		if !address.IsHostname(NormalizeHost(ns)) {
			v.errorf(fmt.Sprintf("dns.nameservers[%d]", i), "%q is not a host name", ns)
		}
	}
	if d.Hostmaster != "" {
		if a, err := address.Parse(d.Hostmaster); err != nil {
			v.errorf("dns.hostmaster", "%q is not a mail address", d.Hostmaster)
		} else if strings.Contains(a.Local, ".") {
			// The SOA RNAME turns the first dot into the "@", so a dot
			// in the local part would need an escape many tools get wrong.
			v.errorf("dns.hostmaster", "%q: the local part must not contain a dot in the SOA", d.Hostmaster)
		}
	}
	for i, s := range d.ServiceAddresses {
		if _, err := ParseIP(s); err != nil {
			v.errorf(fmt.Sprintf("dns.service_addresses[%d]", i), "%q is not an IP address", s)
		}
	}
	if d.ServiceCNAME != "" {
		switch {
		case !address.IsHostname(d.ServiceTarget()):
			v.errorf("dns.service_cname", "%q is not a host name", d.ServiceTarget())
		case len(d.ServiceAddresses) > 0:
			v.errorf("dns.service_cname", "give either service_addresses or service_cname, not both (a CNAME owner has no other records)")
		}
	}
	for _, n := range slices.Sorted(maps.Keys(d.Hosts)) {
		p := "dns.hosts." + n
		if !address.IsHostname(NormalizeHost(n)) {
			v.errorf(p, "%q is not a host name", n)
			continue
		}
		if len(d.Hosts[n]) == 0 {
			v.errorf(p, "at least one address is required")
		}
		for i, s := range d.Hosts[n] {
			if _, err := ParseIP(s); err != nil {
				v.errorf(fmt.Sprintf("%s[%d]", p, i), "%q is not an IP address", s)
			}
		}
	}
	for i, p := range c.Providers {
		for j, s := range p.Servers {
			if s.Weight < 0 || s.Weight > 65535 {
				v.errorf(fmt.Sprintf("providers[%d].servers[%d].weight", i, j), "%d is not 0..65535", s.Weight)
			}
		}
	}
	r := &d.RateLimit
	if r.ResponsesPerSecond == nil {
		n := DefaultRateLimit
		r.ResponsesPerSecond = &n
	}
	if *r.ResponsesPerSecond < 0 {
		v.errorf("dns.rate_limit.responses_per_second", "%d must be 0 (off) or more", *r.ResponsesPerSecond)
	}
	if r.Burst == 0 {
		r.Burst = max(DefaultRateBurst, 2**r.ResponsesPerSecond)
	}
	if r.Burst < 0 {
		v.errorf("dns.rate_limit.burst", "%d must be positive", r.Burst)
	}
	if r.Slip == nil {
		n := DefaultRateSlip
		r.Slip = &n
	}
	if *r.Slip < 0 || *r.Slip > 10 {
		v.errorf("dns.rate_limit.slip", "%d is not 0..10", *r.Slip)
	}
	if r.IPv4Prefix == 0 {
		r.IPv4Prefix = DefaultIPv4RatePrefix
	}
	if r.IPv4Prefix < 8 || r.IPv4Prefix > 32 {
		v.errorf("dns.rate_limit.ipv4_prefix", "%d is not 8..32", r.IPv4Prefix)
	}
	if r.IPv6Prefix == 0 {
		r.IPv6Prefix = DefaultIPv6RatePrefix
	}
	if r.IPv6Prefix < 16 || r.IPv6Prefix > 128 {
		v.errorf("dns.rate_limit.ipv6_prefix", "%d is not 16..128", r.IPv6Prefix)
	}
}
