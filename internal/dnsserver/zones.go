package dnsserver

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// Zone is one zone the server is authoritative for.
type Zone struct {
	// Apex is the zone's name, lower case with the trailing dot.
	Apex string
	// Domain is the served mail domain the zone belongs to (no dot).
	Domain string
	SOA    *dns.SOA
	NS     []dns.RR
	// Groups are the zone's records besides SOA and NS, as printed.
	Groups []Group
	// negSOA is the SOA as sent in negative answers: its TTL is the
	// negative-caching TTL (RFC 2308 section 3).
	negSOA *dns.SOA
	// soaTail is negSOA in wire form without its owner name, which a
	// negative answer writes as a pointer into the question.
	soaTail  []byte
	provider *settings.Provider
}

// node is one owner name with its pre-packed answers.
type node struct {
	zone   *Zone
	rrsets map[uint16][]dns.RR
	// answer holds a complete response per query type that has data; the
	// ID, flags, question name case and type are patched per query.
	answer map[uint16][]byte
	// nodata answers every other type (NOERROR, SOA in authority); for a
	// CNAME owner it is the CNAME answer instead.
	nodata []byte
	// any is the RFC 8482 answer to ANY: one RRset only.
	any []byte
}

// Zones is the immutable lookup structure of one configuration: every name
// of every zone, lower case, with its answers packed in advance.
type Zones struct {
	// List is the zones in configuration order.
	List   []*Zone
	names  map[string]*node
	apexes map[string]*Zone
	// byDomain maps a served domain to its zone.
	byDomain map[string]*Zone
	// limiter is the UDP response-rate limit; nil when off. It is built
	// with the zones, so a reload starts it afresh.
	limiter *limiter
}

// ErrNotServed is returned by Zone for a domain without DNS records here.
var ErrNotServed = fmt.Errorf("no DNS records are published for this domain")

// New derives every zone of a catalog and packs its answers.
func New(cat *settings.Catalog) (*Zones, error) {
	cfg := cat.Config
	z := &Zones{names: map[string]*node{}, apexes: map[string]*Zone{}, byDomain: map[string]*Zone{}}
	served := map[string]bool{}
	type dp struct {
		domain string
		p      *settings.Provider
	}
	var all []dp
	for _, p := range cat.Providers {
		for _, d := range Domains(p) {
			if served[d] {
				continue
			}
			served[d] = true
			all = append(all, dp{d, p})
		}
	}
	hostDomain := func(h string) string { return closestDomain(h, served) }

	ttl := uint32(cfg.DNS.TTL)
	var err error
	for _, e := range all {
		apex := dns.Fqdn(e.domain)
		if cfg.DNS.Zone == config.ZoneTCP {
			apex = "_tcp." + apex
		}
		zone := &Zone{Apex: apex, Domain: e.domain, provider: e.p}
		zone.SOA, zone.NS = soaNS(cfg, cat, apex, ttl)
		neg := *zone.SOA
		neg.Hdr.Ttl = min(ttl, uint32(cfg.DNS.NegativeTTL))
		zone.negSOA = &neg
		if zone.soaTail, err = packTail(&neg); err != nil {
			return nil, err
		}
		for _, g := range domainRecords(cfg, e.p, e.domain, hostDomain) {
			var in Group
			in.Comment = g.Comment
			for _, rr := range g.RRs {
				if dns.IsSubDomain(apex, rr.Header().Name) {
					in.RRs = append(in.RRs, rr)
				}
			}
			if len(in.RRs) > 0 {
				zone.Groups = append(zone.Groups, in)
			}
		}
		z.List = append(z.List, zone)
		z.apexes[apex] = zone
		z.byDomain[e.domain] = zone
	}
	// Fill the names. A name goes to the closest enclosing zone, so that
	// example.com and sub.example.com can both be served.
	for _, zone := range z.List {
		z.add(zone, zone.SOA)
		for _, rr := range zone.NS {
			z.add(zone, rr)
		}
		for _, g := range zone.Groups {
			for _, rr := range g.RRs {
				if z.zoneOf(rr.Header().Name) == zone {
					z.add(zone, rr)
				}
			}
		}
	}
	for name, n := range z.names {
		if err := n.pack(name, z); err != nil {
			return nil, err
		}
	}
	if rl := cfg.DNS.RateLimit; rl.Rate() > 0 {
		z.limiter = newLimiter(rl)
	}
	return z, nil
}

// soaNS builds a zone's SOA and NS records.
func soaNS(cfg *config.Config, cat *settings.Catalog, apex string, ttl uint32) (*dns.SOA, []dns.RR) {
	d := cfg.DNS
	ns := d.Nameservers
	if len(ns) == 0 && len(cat.Providers) > 0 {
		ns = []string{"ns." + cat.Providers[0].ID}
	}
	mbox := "hostmaster." + apex
	if d.Hostmaster != "" {
		local, domain, _ := strings.Cut(d.Hostmaster, "@")
		mbox = local + "." + dns.Fqdn(domain)
	}
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      dns.Fqdn(ns[0]),
		Mbox:    mbox,
		Serial:  d.Serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  1209600,
		Minttl:  uint32(d.NegativeTTL),
	}
	var out []dns.RR
	for _, n := range ns {
		out = append(out, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}, Ns: dns.Fqdn(n)})
	}
	return soa, out
}

// add puts a record and the empty non-terminals above it (RFC 8020: they
// exist, so they answer NODATA, not NXDOMAIN) into the name map.
func (z *Zones) add(zone *Zone, rr dns.RR) {
	name := strings.ToLower(rr.Header().Name)
	n := z.node(zone, name)
	n.rrsets[rr.Header().Rrtype] = append(n.rrsets[rr.Header().Rrtype], rr)
	for name != zone.Apex {
		i := strings.IndexByte(name, '.')
		name = name[i+1:]
		z.node(zone, name)
	}
}

func (z *Zones) node(zone *Zone, name string) *node {
	n, ok := z.names[name]
	if !ok {
		n = &node{zone: zone, rrsets: map[uint16][]dns.RR{}, answer: map[uint16][]byte{}}
		z.names[name] = n
	}
	return n
}

// zoneOf finds the closest zone enclosing a lower-case FQDN, or nil.
func (z *Zones) zoneOf(name string) *Zone {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if zone, ok := z.apexes[name[off:]]; ok {
			return zone
		}
	}
	return nil
}

// Zone returns the zone of a served domain.
func (z *Zones) Zone(domain string) (*Zone, error) {
	zone, ok := z.byDomain[strings.ToLower(strings.TrimSuffix(domain, "."))]
	if !ok {
		return nil, fmt.Errorf("%s: %w", domain, ErrNotServed)
	}
	return zone, nil
}

// anyOrder is the RRset an ANY query gets (RFC 8482 section 4.2: one
// RRset is enough; the mail records are what anybody would want).
var anyOrder = []uint16{dns.TypeCNAME, dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS}

// pack builds the node's responses.
func (n *node) pack(name string, z *Zones) error {
	if cn, ok := n.rrsets[dns.TypeCNAME]; ok {
		if len(n.rrsets) > 1 || len(cn) > 1 {
			return fmt.Errorf("%s: a CNAME cannot share its name with other records (check dns.hosts and dns.service_cname)", name)
		}
		var err error
		if n.nodata, err = packAnswer(name, cn, nil, 0); err != nil {
			return err
		}
		n.any = n.nodata
		// Chase the alias when its target is here too, saving the
		// resolver a round trip.
		if t, ok := z.names[strings.ToLower(cn[0].(*dns.CNAME).Target)]; ok {
			for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
				if rrs := t.rrsets[typ]; len(rrs) > 0 {
					if n.answer[typ], err = packAnswer(name, append(slices.Clip(cn), rrs...), nil, 0); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	var err error
	for typ, rrs := range n.rrsets {
		if n.answer[typ], err = packAnswer(name, rrs, nil, 0); err != nil {
			return err
		}
	}
	if n.nodata, err = packAnswer(name, nil, []dns.RR{n.zone.negSOA}, 0); err != nil {
		return err
	}
	n.any = n.nodata
	for _, typ := range anyOrder {
		if a, ok := n.answer[typ]; ok {
			n.any = a
			break
		}
	}
	return nil
}

// packAnswer packs an authoritative response for name with a placeholder
// query type; Respond patches ID, flags, the question's case and type.
func packAnswer(name string, answer, ns []dns.RR, rcode int) ([]byte, error) {
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Response: true, Authoritative: true, Opcode: dns.OpcodeQuery, Rcode: rcode},
		Question: []dns.Question{{Name: name, Qtype: dns.TypeNone, Qclass: dns.ClassINET}},
		Answer:   answer,
		Ns:       ns,
	}
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the DNS answer for %s: %w", name, err)
	}
	return b, nil
}

// packTail packs a record without its owner name.
func packTail(rr dns.RR) ([]byte, error) {
	c := dns.Copy(rr)
	c.Header().Name = "."
	buf := make([]byte, 1024)
	off, err := dns.PackRR(c, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", rr.Header().Name, err)
	}
	return buf[1:off], nil
}
