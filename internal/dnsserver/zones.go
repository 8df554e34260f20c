package dnsserver

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// Zones is the immutable lookup structure of one configuration.
//
// A hoster serves thousands of domains per provider, and the answers of all
// domains of one provider are the same except for the names under the zone
// apex, which an answer writes as pointers into the question. So the answers
// are encoded once per provider, relative to the apex (a zone template), and
// a domain costs one map entry pointing at its provider's template. Only a
// domain with names of its own (dns.hosts) gets a template of its own. Keeping
// a packed copy per domain instead made a configuration of 100,000 domains
// take 14 s to load and 1.4 GB of memory.
type Zones struct {
	// zones maps a served domain (no trailing dot; the configuration's
	// own strings) to its template.
	zones map[string]*zone
	// tcp is true when the zones are _tcp.<domain> (config.ZoneTCP).
	tcp bool
	// rrl is the UDP response-rate limit in force (dns.rate_limit). The
	// buckets belong to the Handler and outlive a reload.
	rrl rrlSettings
	// tcpLimits is the DNS-over-TCP limits in force (dns.tcp).
	tcpLimits TCPLimits
	// params is the DNS section the zones were built from.
	params *params
}

// zone is the template of the zones of one provider, or of one domain with
// names of its own.
type zone struct {
	provider *settings.Provider
	// names maps a name relative to the apex ("" for the apex itself,
	// "_imaps._tcp", "autoconfig", the empty non-terminal "_tcp") to its
	// answers.
	names map[string]*tnode
	// nxdomain answers every other name under the apex: NXDOMAIN with
	// the SOA in the authority section.
	nxdomain *answer
	// rrs holds the records by relative name and type while the zones
	// are built; nil afterwards.
	rrs map[string]map[uint16][]dns.RR
	// apex is the apex the records were derived for (a placeholder for
	// a shared template).
	apex string
}

// tnode is the answers of one name of a zone template.
type tnode struct {
	// types holds the answers of the query types with data.
	types []typed
	// nodata answers every other type (NOERROR, SOA in authority); for
	// a CNAME owner it is the CNAME answer instead.
	nodata *answer
	// any is the RFC 8482 answer to ANY: one RRset only.
	any *answer
}

type typed struct {
	qtype uint16
	a     *answer
}

func (n *tnode) answer(qtype uint16) *answer {
	if qtype == dns.TypeANY {
		return n.any
	}
	for _, t := range n.types {
		if t.qtype == qtype {
			return t.a
		}
	}
	return n.nodata
}

// ErrNotServed is returned by Zone for a domain without DNS records here.
var ErrNotServed = fmt.Errorf("no DNS records are published for this domain")

// templateDomain stands for the domain while a provider's shared template
// is derived: '#' never occurs in a configured host name (they are LDH
// names), so no name from the configuration can fall under it by accident,
// and only the names derived from the domain become apex-relative.
const templateDomain = "#"

// New derives every zone of a catalog and encodes its answers. pc holds the
// PACC documents rendered for the same catalog (pacc.NewRenderer), whose
// digests the _ua-auto-config TXT records carry: the very value the HTTP
// endpoint serves the bytes of. With a nil pc no such record is published.
func New(cat *settings.Catalog, pc *pacc.Renderer) (*Zones, error) {
	cfg := cat.Config
	pr := newParams(cat, pc)
	z := &Zones{tcp: pr.tcp, params: pr}
	n := 0
	for _, p := range cat.Providers {
		n += len(p.Domains) + len(p.Aliases)
	}
	z.zones = make(map[string]*zone, n)
	shared := make(map[*settings.Provider]*zone, len(cat.Providers))
	var built []*zone
	for _, p := range cat.Providers {
		for _, d := range p.NamedDomains() {
			if _, ok := z.zones[d]; ok {
				continue
			}
			t := shared[p]
			if t == nil {
				t = &zone{provider: p}
				shared[p] = t
				built = append(built, t)
			}
			z.zones[d] = t
		}
	}
	pr.targets = z.targetHosts(cat)
	// A domain that dns.hosts (or an Autodiscover target) gives names of
	// its own gets its own template.
	for _, h := range slices.Sorted(maps.Keys(pr.hostAddrs())) {
		d := z.closestDomain(h)
		if d == "" {
			continue
		}
		if t := z.zones[d]; shared[t.provider] == t {
			own := &zone{provider: t.provider}
			z.zones[d] = own
			built = append(built, own)
			own.derive(d, z)
		}
	}
	for _, t := range shared {
		t.derive(templateDomain, z)
	}
	for _, t := range built {
		if err := t.encode(z); err != nil {
			if t.apex != z.apexOf(templateDomain) {
				return nil, err
			}
			// "#" stands for every domain of the provider.
			return nil, fmt.Errorf("DNS records of provider %s: %w", t.provider.ID, err)
		}
	}
	for _, t := range built {
		t.rrs = nil
	}
	z.rrl = newRRLSettings(cfg.DNS.RateLimit)
	z.tcpLimits = newTCPLimits(cfg.DNS.TCP)
	return z, nil
}

// targetHosts finds the Autodiscover targets (settings.Provider's
// AutodiscoverTarget) that lie in a served zone but have no addresses
// there: not given in dns.hosts, and not a name the zone publishes anyway
// (autoconfig.<domain>, or autodiscover.<domain> of a provider without a
// target). A target names this service, so it gets dns.service_addresses,
// as autoconfig.<domain> does; with service_cname it gets nothing, since
// an SRV target must not be an alias (RFC 2782): its addresses then belong
// in dns.hosts.
func (z *Zones) targetHosts(cat *settings.Catalog) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	if len(z.params.serviceAddrs) == 0 {
		return out
	}
	for _, p := range cat.Providers {
		t := p.AutodiscoverTarget
		if t == "" || z.params.hosts[t] != nil || z.closestDomain(t) == "" {
			continue
		}
		if publishedServiceName(t, z) {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "autodiscover."); ok && z.zones[rest] != nil && z.zones[rest].provider.AutodiscoverTarget == "" {
			continue
		}
		out[t] = z.params.serviceAddrs
	}
	return out
}

// publishedServiceName reports whether host is a service name the zones
// publish anyway for every served domain: autoconfig.<domain> and
// ua-auto-config.<domain> (autodiscover.<domain> depends on the provider).
func publishedServiceName(host string, z *Zones) bool {
	for _, pre := range settings.ServicePrefixes {
		if pre == "autodiscover." {
			continue
		}
		if rest, ok := strings.CutPrefix(host, pre); ok && z.zones[rest] != nil {
			return true
		}
	}
	return false
}

// apexOf is the zone apex of a served domain.
func (z *Zones) apexOf(domain string) string {
	if z.tcp {
		return "_tcp." + domain + "."
	}
	return domain + "."
}

// derive collects the records of the zone of domain (templateDomain for a
// provider's shared template) by name relative to the apex, with the empty
// non-terminals above them (RFC 8020: they exist, so they answer NODATA,
// not NXDOMAIN).
func (t *zone) derive(domain string, z *Zones) {
	apex := z.apexOf(domain)
	t.apex = apex
	t.rrs = map[string]map[uint16][]dns.RR{}
	soa, ns := soaNS(z.params, apex)
	add := func(rr dns.RR) {
		name := strings.ToLower(rr.Header().Name)
		rel := relName(name, apex)
		set := t.rrs[rel]
		if set == nil {
			set = map[uint16][]dns.RR{}
			t.rrs[rel] = set
		}
		set[rr.Header().Rrtype] = append(set[rr.Header().Rrtype], rr)
		for off, up := range settings.Suffixes(rel) {
			if off > 0 && t.rrs[up] == nil {
				t.rrs[up] = map[uint16][]dns.RR{}
			}
		}
		if t.rrs[""] == nil {
			t.rrs[""] = map[uint16][]dns.RR{}
		}
	}
	add(soa)
	for _, rr := range ns {
		add(rr)
	}
	for _, g := range domainRecords(z.params, t.provider, domain, z.closestDomain) {
		for _, rr := range g.RRs {
			name := strings.ToLower(rr.Header().Name)
			if !dns.IsSubDomain(apex, name) {
				continue
			}
			// A name goes to the closest enclosing zone, so that
			// example.com and sub.example.com can both be served. The
			// shared template needs no such check: a query finds the
			// closest zone first, so a name of the template inside a
			// nested zone is never looked up.
			if domain != templateDomain {
				if zd, _ := z.find([]byte(name)); zd != domain {
					continue
				}
			}
			add(rr)
		}
	}
}

// relName is name relative to apex: "" for the apex itself.
func relName(name, apex string) string {
	if len(name) == len(apex) {
		return ""
	}
	return name[:len(name)-len(apex)-1]
}

// anyOrder is the RRset an ANY query gets (RFC 8482 section 4.2: one
// RRset is enough; the mail records are what anybody would want).
var anyOrder = []uint16{dns.TypeCNAME, dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSOA, dns.TypeNS}

// encode builds the answers of every name of the template.
func (t *zone) encode(z *Zones) error {
	e := encoder{apex: t.apex, domain: t.apex, shared: t.apex == z.apexOf(templateDomain)}
	if z.tcp {
		e.domain = strings.TrimPrefix(t.apex, "_tcp.")
	}
	soa := t.rrs[""][dns.TypeSOA][0].(*dns.SOA)
	neg := *soa
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	var err error
	// The NXDOMAIN answer points to the apex from the SOA's owner only,
	// since the question can be any name under it.
	e.plainSOA = true
	t.nxdomain, err = e.answer("", true, nil, []dns.RR{&neg})
	e.plainSOA = false
	if err != nil {
		return err
	}
	t.names = make(map[string]*tnode, len(t.rrs))
	for rel, set := range t.rrs {
		n := &tnode{}
		t.names[rel] = n
		if cn, ok := set[dns.TypeCNAME]; ok {
			if len(set) > 1 || len(cn) > 1 {
				return fmt.Errorf("%s: a CNAME cannot share its name with other records (check dns.hosts and dns.service_cname)", cn[0].Header().Name)
			}
			if n.nodata, err = e.answer(rel, false, cn, nil); err != nil {
				return err
			}
			n.any = n.nodata
			// Chase the alias when its target is here too, saving the
			// resolver a round trip.
			target := strings.ToLower(cn[0].(*dns.CNAME).Target)
			for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
				rrs := z.recordsOf(target, typ)
				if len(rrs) == 0 {
					continue
				}
				a, err := e.answer(rel, false, append([]dns.RR{cn[0]}, rrs...), nil)
				if err != nil {
					return err
				}
				n.types = append(n.types, typed{typ, a})
			}
			continue
		}
		// anyOrder lists every type published here.
		for _, typ := range anyOrder {
			rrs, ok := set[typ]
			if !ok {
				continue
			}
			a, err := e.answer(rel, false, rrs, nil)
			if err != nil {
				return err
			}
			n.types = append(n.types, typed{typ, a})
		}
		if n.nodata, err = e.answer(rel, false, nil, []dns.RR{&neg}); err != nil {
			return err
		}
		n.any = n.nodata
		if len(n.types) > 0 {
			n.any = n.types[0].a
		}
	}
	return nil
}

// recordsOf returns the records of a type of an absolute name served here,
// with that owner name, while the zones are built.
func (z *Zones) recordsOf(name string, typ uint16) []dns.RR {
	d, off := z.find([]byte(name))
	if d == "" {
		return nil
	}
	t := z.zones[d]
	rel := ""
	if off > 0 {
		rel = name[:off-1]
	}
	var out []dns.RR
	for _, rr := range t.rrs[rel][typ] {
		c := dns.Copy(rr)
		c.Header().Name = name
		out = append(out, c)
	}
	return out
}

// find returns the served domain whose zone most closely encloses a
// lower-case name in presentation form ("a.example.com."), and the offset
// of the zone's apex within the name (which is also its offset within the
// name's wire form).
func (z *Zones) find(key []byte) (string, int) {
	t, off, n := z.lookupAt(key)
	if t == nil {
		return "", 0
	}
	return string(key[off+n : len(key)-1]), off
}

// lookup is find for the query path: the template and the apex offset.
func (z *Zones) lookup(key []byte) (*zone, int) {
	t, off, _ := z.lookupAt(key)
	return t, off
}

// lookupAt tries the suffixes of key from the longest; the first served
// domain is the closest zone. n is the length of "_tcp." in _tcp mode.
func (z *Zones) lookupAt(key []byte) (*zone, int, int) {
	n := 0
	if z.tcp {
		n = len("_tcp.")
	}
	// The walk of settings.Suffixes, written out: a range over it would
	// capture key in a closure and move the caller's buffer to the heap.
	for off := 0; off < len(key)-1; off = settings.Parent(key, off) {
		s := key[off : len(key)-1]
		// Served domains are host names: a suffix starting with an
		// underscore label is no domain (and in _tcp mode, the apex
		// is the one starting with "_tcp"), which saves most of the
		// map look-ups for the SRV names.
		if z.tcp == (s[0] == '_') {
			if !z.tcp || len(s) > n && string(s[:n]) == "_tcp." {
				if t, ok := z.zones[string(s[n:])]; ok {
					return t, off, n
				}
			}
		}
	}
	return nil, 0, 0
}

// soaNS builds a zone's SOA and NS records.
func soaNS(d *params, apex string) (*dns.SOA, []dns.RR) {
	mbox := "hostmaster." + apex
	if d.hostmaster != "" {
		local, domain, _ := strings.Cut(d.hostmaster, "@")
		mbox = local + "." + dns.Fqdn(domain)
	}
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: d.ttl},
		Ns:      dns.Fqdn(d.nameservers[0]),
		Mbox:    mbox,
		Serial:  d.serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  1209600,
		Minttl:  d.negativeTTL,
	}
	var out []dns.RR
	for _, n := range d.nameservers {
		out = append(out, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: d.ttl}, Ns: dns.Fqdn(n)})
	}
	return soa, out
}

// zone returns a served domain, normalised, and its provider.
func (z *Zones) zone(domain string) (string, *settings.Provider, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	t, ok := z.zones[d]
	if !ok {
		return "", nil, fmt.Errorf("%s: %w", domain, ErrNotServed)
	}
	return d, t.provider, nil
}
