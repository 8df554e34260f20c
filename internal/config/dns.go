package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	DefaultDNSTTL      = 3600
	DefaultNegativeTTL = 300
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
	// AutodiscoverTarget is the host every served domain's
	// _autodiscover._tcp SRV record names, instead of autodiscover.<domain>
	// itself: one Autodiscover host, and one certificate, for all
	// customer domains. Outlook asks the person before it uses such a
	// target (README, Outlook Autodiscover). providers[].dns overrides it.
	AutodiscoverTarget string `yaml:"autodiscover_target"`
	// Hosts gives addresses of other names inside the served zones, such
	// as the mail servers or the name servers, so that SRV targets resolve
	// on this server too. Names outside the zones are ignored.
	Hosts map[string][]string `yaml:"hosts"`
	// PublishUnavailable publishes "0 0 0 ." (service decidedly not
	// available, RFC 2782 and RFC 6186 section 4) for every mail service
	// the provider does not offer, so that clients stop guessing.
	PublishUnavailable bool `yaml:"publish_unavailable"`
	// RateLimit limits UDP responses per source network and kind of
	// answer (response-rate limiting).
	RateLimit RateLimit `yaml:"rate_limit"`
	// TCP limits DNS-over-TCP connections.
	TCP DNSTCP `yaml:"tcp"`
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

// ParseAutodiscoverTarget normalises an Autodiscover SRV target: a host
// name, Unicode taken as IDNA and written in A-labels, lower case, without
// a trailing dot. An IP address is refused: an SRV target cannot be one
// (RFC 2782), and a certificate rarely names one.
func ParseAutodiscoverTarget(raw string) (string, error) {
	if _, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(raw), "[]")); err == nil {
		return "", fmt.Errorf("%q is an IP address; the SRV target must be a host name", raw)
	}
	h, err := address.ParseDomain(raw)
	if err != nil || !address.IsHostname(h) {
		return "", fmt.Errorf("%q is not a host name", raw)
	}
	return h, nil
}

// AutodiscoverTarget is the host a provider's _autodiscover._tcp records
// name: its own dns.autodiscover_target, else the dns section's,
// normalised (ParseAutodiscoverTarget); "" for autodiscover.<domain> of
// each domain, and for a value the validator refuses.
func (c *Config) AutodiscoverTarget(p *Provider) string {
	raw := p.DNS.AutodiscoverTarget
	if strings.TrimSpace(raw) == "" {
		raw = c.DNS.AutodiscoverTarget
	}
	if strings.TrimSpace(raw) == "" {
		return ""
	}
	h, err := ParseAutodiscoverTarget(raw)
	if err != nil {
		return ""
	}
	return h
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

// RateLimit is the response-rate limit of UDP answers, as NSD, Knot and
// BIND do it. Over UDP the source address is not verified, so without a
// limit anybody could make this server send answers to a victim
// (reflection). TCP is not limited: its handshake proves the source.
//
// The configuration only holds what the file says: an absent key is nil
// or 0, and the DNS server fills in its defaults (internal/dnsserver).
type RateLimit struct {
	// ResponsesPerSecond per bucket, that is per source network and kind
	// of answer; 0 turns the limit off, nil takes the default.
	ResponsesPerSecond *int `yaml:"responses_per_second"`
	// Burst is how many responses a quiet bucket may get at once; 0
	// takes the default.
	Burst int `yaml:"burst"`
	// Slip: of the responses over the limit, every Slip-th is sent as an
	// empty truncated answer (TC=1) instead of being dropped, so that a
	// real resolver behind a busy network retries over TCP. 1 truncates
	// all, 0 drops all, nil takes the default.
	Slip *int `yaml:"slip"`
	// IPv4Prefix and IPv6Prefix group sources into networks (0: default).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Exempt lists addresses and networks (CIDR) that are never limited,
	// such as the resolvers of one's own network or a monitoring probe.
	Exempt []string `yaml:"exempt"`
}

// DNSTCP limits DNS over TCP, where a connection costs a file descriptor
// and a goroutine for as long as the client keeps it open. Absent keys are
// 0 and take the DNS server's defaults.
type DNSTCP struct {
	// MaxConnections bounds open connections in all; further clients
	// wait in the listen queue until one closes.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerSource bounds the open connections of one
	// client address (IPv6: one /64); more are closed at once.
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// IdleTimeout closes a connection that sends no query for this long
	// ("10s"; the first query must come within 2 s or this, whichever is
	// shorter).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Bounds of the DNS limits: beyond them a value is a mistake, not a
// setting.
const (
	maxRate        = 1_000_000
	maxConnections = 1 << 20
	minIdleTimeout = 100 * time.Millisecond
	maxIdleTimeout = time.Hour
)

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
	if strings.TrimSpace(d.AutodiscoverTarget) != "" {
		if _, err := ParseAutodiscoverTarget(d.AutodiscoverTarget); err != nil {
			v.errorf("dns.autodiscover_target", "%v", err)
		}
	}
	for i, p := range c.Providers {
		if t := p.DNS.AutodiscoverTarget; strings.TrimSpace(t) != "" {
			if _, err := ParseAutodiscoverTarget(t); err != nil {
				v.errorf(fmt.Sprintf("providers[%d].dns.autodiscover_target", i), "%v", err)
			}
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
	v.rateLimit(&d.RateLimit)
	v.dnsTCP(&d.TCP)
}

// rateLimit checks dns.rate_limit; absent keys stay absent.
func (v *validator) rateLimit(r *RateLimit) {
	if n := r.ResponsesPerSecond; n != nil && (*n < 0 || *n > maxRate) {
		v.errorf("dns.rate_limit.responses_per_second", "%d is not 0 (off) to %d", *n, maxRate)
	}
	if r.Burst < 0 || r.Burst > maxRate {
		v.errorf("dns.rate_limit.burst", "%d is not 1 to %d", r.Burst, maxRate)
	}
	if r.Slip != nil && (*r.Slip < 0 || *r.Slip > 10) {
		v.errorf("dns.rate_limit.slip", "%d is not 0..10", *r.Slip)
	}
	if r.IPv4Prefix != 0 && (r.IPv4Prefix < 8 || r.IPv4Prefix > 32) {
		v.errorf("dns.rate_limit.ipv4_prefix", "%d is not 8..32", r.IPv4Prefix)
	}
	if r.IPv6Prefix != 0 && (r.IPv6Prefix < 16 || r.IPv6Prefix > 128) {
		v.errorf("dns.rate_limit.ipv6_prefix", "%d is not 16..128", r.IPv6Prefix)
	}
	for i, s := range r.Exempt {
		if _, err := ParsePrefix(s); err != nil {
			v.errorf(fmt.Sprintf("dns.rate_limit.exempt[%d]", i), "%q is not an IP address or CIDR range", s)
		}
	}
}

// dnsTCP checks dns.tcp; absent keys stay absent.
func (v *validator) dnsTCP(t *DNSTCP) {
	if t.MaxConnections < 0 || t.MaxConnections > maxConnections {
		v.errorf("dns.tcp.max_connections", "%d is not 1 to %d", t.MaxConnections, maxConnections)
	}
	if t.MaxConnectionsPerSource < 0 || t.MaxConnectionsPerSource > maxConnections {
		v.errorf("dns.tcp.max_connections_per_source", "%d is not 1 to %d", t.MaxConnectionsPerSource, maxConnections)
	} else if t.MaxConnections > 0 && t.MaxConnectionsPerSource > t.MaxConnections {
		v.errorf("dns.tcp.max_connections_per_source", "%d is more than max_connections (%d)", t.MaxConnectionsPerSource, t.MaxConnections)
	}
	if t.IdleTimeout != 0 && (t.IdleTimeout < minIdleTimeout || t.IdleTimeout > maxIdleTimeout) {
		v.errorf("dns.tcp.idle_timeout", "%s is not %s to %s", t.IdleTimeout, minIdleTimeout, maxIdleTimeout)
	}
}
