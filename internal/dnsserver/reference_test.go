package dnsserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"mailautoconf/bench/benchconf"
	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// refZones answers queries the straightforward way, as the server did
// before its answers were encoded per provider: every record of every zone
// as a dns.RR under its full name, and every answer a dns.Msg packed by the
// library. The zone templates must give the same answers.
type refZones struct {
	names  map[string]map[uint16][]dns.RR // lower-case FQDN -> records
	owner  map[string]string              // name -> apex of its zone
	apexes map[string]*dns.SOA            // apex -> SOA of negative answers
}

func newRef(t testing.TB, cat *settings.Catalog) *refZones {
	t.Helper()
	r := &refZones{names: map[string]map[uint16][]dns.RR{}, owner: map[string]string{}, apexes: map[string]*dns.SOA{}}
	served := map[string]bool{}
	type dp struct {
		domain string
		p      *settings.Provider
	}
	var all []dp
	for _, p := range cat.Providers {
		for _, d := range p.NamedDomains() {
			if !served[d] {
				served[d] = true
				all = append(all, dp{d, p})
			}
		}
	}
	pc, err := pacc.NewRenderer(cat)
	if err != nil {
		t.Fatal(err)
	}
	pr := newParams(cat, pc)
	apexOf := func(d string) string {
		if pr.tcp {
			return "_tcp." + d + "."
		}
		return d + "."
	}
	for _, e := range all {
		apex := apexOf(e.domain)
		soa, _ := soaNS(pr, apex)
		neg := *soa
		neg.Hdr.Ttl = min(soa.Hdr.Ttl, pr.negativeTTL)
		r.apexes[apex] = &neg
	}
	add := func(apex string, rr dns.RR) {
		name := strings.ToLower(rr.Header().Name)
		for n := name; ; {
			if r.names[n] == nil {
				r.names[n] = map[uint16][]dns.RR{}
				r.owner[n] = apex
			}
			if n == apex {
				break
			}
			n = n[strings.IndexByte(n, '.')+1:]
		}
		r.names[name][rr.Header().Rrtype] = append(r.names[name][rr.Header().Rrtype], rr)
	}
	for _, e := range all {
		apex := apexOf(e.domain)
		soa, ns := soaNS(pr, apex)
		add(apex, soa)
		for _, rr := range ns {
			add(apex, rr)
		}
		for _, g := range domainRecords(pr, e.p, e.domain, func(h string) string {
			d, _ := settings.Closest(h, func(n string) bool { return served[n] })
			return d
		}) {
			for _, rr := range g.RRs {
				if name := strings.ToLower(rr.Header().Name); dns.IsSubDomain(apex, name) && r.zoneOf(name) == apex {
					add(apex, rr)
				}
			}
		}
	}
	return r
}

func (r *refZones) zoneOf(name string) string {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if _, ok := r.apexes[name[off:]]; ok {
			return name[off:]
		}
	}
	return ""
}

// answer is the reference answer to q, packed by the library.
func (r *refZones) answer(t testing.TB, q *dns.Msg) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	name := strings.ToLower(q.Question[0].Name)
	qtype := q.Question[0].Qtype
	set, ok := r.names[name]
	switch {
	case !ok && r.zoneOf(name) == "":
		m.Rcode, m.Authoritative = dns.RcodeRefused, false
	case !ok:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{r.apexes[r.zoneOf(name)]}
	case set[dns.TypeCNAME] != nil:
		cn := set[dns.TypeCNAME]
		m.Answer = cn
		if qtype == dns.TypeA || qtype == dns.TypeAAAA {
			m.Answer = append(slices.Clip(cn), r.names[strings.ToLower(cn[0].(*dns.CNAME).Target)][qtype]...)
		}
	case qtype == dns.TypeANY:
		for _, typ := range anyOrder {
			if rrs := set[typ]; len(rrs) > 0 {
				m.Answer = rrs
				break
			}
		}
		if m.Answer == nil {
			m.Ns = []dns.RR{r.apexes[r.owner[name]]}
		}
	case len(set[qtype]) > 0:
		m.Answer = set[qtype]
	default:
		m.Ns = []dns.RR{r.apexes[r.owner[name]]}
	}
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(MaxUDPSize, opt.Do())
	}
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("packing the reference answer: %v", err)
	}
	return b
}

// checkSame asks both the zones and the reference and compares the parsed
// answers: header, question (the client's case, byte for byte) and every
// section. Owner names written as pointers into the question take the
// query's case in both, so records compare without case; SRV targets are
// written in full and compare exactly.
func checkSame(t testing.TB, z *Zones, ref *refZones, q *dns.Msg) {
	t.Helper()
	want := ref.answer(t, q)
	wire, err := q.Pack()
	if err != nil {
		t.Fatalf("packing the query: %v", err)
	}
	for _, path := range []string{"slow", "fast"} {
		var got []byte
		var c class
		if path == "slow" {
			got, c = z.respondMsg(q, false, make([]byte, 0, 256))
			if string(got) != string(z.Respond(q, false)) {
				t.Fatalf("%s: Respond and respondMsg differ", q.Question[0].Name)
			}
		} else {
			w, ok := parseWire(wire, nil)
			if !ok {
				continue
			}
			if got, c, ok = z.fastRespond(&w, false); !ok {
				continue
			}
		}
		var a, b dns.Msg
		if err := a.Unpack(got); err != nil {
			t.Fatalf("%s %s: our answer does not parse: %v", q.Question[0].Name, path, err)
		}
		if err := b.Unpack(want); err != nil {
			t.Fatalf("reference answer does not parse: %v", err)
		}
		if wc := refClass(&b); c.kind != wc.kind || c.qtype != wc.qtype || string(c.name) != string(wc.name) {
			t.Fatalf("%s %s (%s path): rate-limit class %d %d %q, want %d %d %q", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], path,
				c.kind, c.qtype, c.name, wc.kind, wc.qtype, wc.name)
		}
		if a.MsgHdr != b.MsgHdr || !slices.Equal(a.Question, b.Question) ||
			!strings.EqualFold(sections(&a), sections(&b)) || srvTargets(&a) != srvTargets(&b) {
			t.Fatalf("%s %s (%s path):\n%s\n--- want\n%s", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], path, a.String(), b.String())
		}
		// Over UDP the same answer, or an empty one with TC set when it
		// does not fit, never a partial one.
		udp := z.Respond(q, true)
		limit := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			limit = udpLimit(true, opt.UDPSize())
		}
		var u dns.Msg
		if err := u.Unpack(udp); err != nil {
			t.Fatalf("UDP answer does not parse: %v", err)
		}
		switch {
		case len(udp) > limit:
			t.Fatalf("%s: UDP answer of %d octets, limit %d", q.Question[0].Name, len(udp), limit)
		case u.Truncated && (len(u.Answer) > 0 || len(u.Ns) > 0 || len(got) <= limit || len(want) <= limit):
			t.Fatalf("%s: truncated over UDP though the answer fits, or with records: %d/%d octets, limit %d\n%s", q.Question[0].Name, len(got), len(want), limit, u.String())
		case !u.Truncated && string(udp) != string(got):
			t.Fatalf("%s: UDP and TCP answers differ", q.Question[0].Name)
		}
	}
}

// refClass is the rate-limit class of a reference answer, read from what
// it says: records in the answer section make a positive answer (per name
// and type), NXDOMAIN and NODATA carry their zone's SOA (per zone), and
// anything else is an error (per source only).
func refClass(m *dns.Msg) class {
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		q := m.Question[0]
		return class{kind: classAnswer, qtype: q.Qtype, name: []byte(strings.ToLower(q.Name))}
	case (m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError) && len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA:
		kind := classNoData
		if m.Rcode == dns.RcodeNameError {
			kind = classNXDomain
		}
		return class{kind: kind, name: []byte(strings.ToLower(m.Ns[0].Header().Name))}
	}
	return errorClass
}

func sections(m *dns.Msg) string {
	var b strings.Builder
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			fmt.Fprintln(&b, rr.String())
		}
		b.WriteString("--\n")
	}
	return b.String()
}

func srvTargets(m *dns.Msg) string {
	var out []string
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, s.Target)
		}
	}
	return strings.Join(out, " ")
}

// referenceConfigs cover the shapes of zones: the demo, _tcp zones with
// "0 0 0 ." and a CNAME, CNAME chasing into a dns.hosts name, nested
// domains, aliases, name servers inside a served domain, answers too large
// for UDP, and _tcp zones whose Autodiscover SRV target is in the domain.
var referenceConfigs = []string{"demo", `
dns:
  zone: _tcp
  publish_unavailable: true
  service_cname: web.hoster.example
  nameservers: [ns1.hoster.example, ns2.hoster.example]
  hostmaster: dns@hoster.example
  ttl: 600
providers:
  - id: mail.example.com
    domains: [example.com, sub.example.com, other.example]
    aliases: {alias.example: example.com}
    servers:
      - {type: pop3, host: pop.example.com, security: starttls}
      - {type: pop3, host: pop.example.com, security: tls}
      - {type: imap, host: imap1.example.com, security: tls, weight: 3}
      - {type: imap, host: imap2.example.com, security: tls, weight: 1}
      - {type: imap, host: imap3.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: starttls}
`, `
dns:
  service_cname: www.example.com
  nameservers: [ns1.example.com, ns.hoster.example]
  hosts:
    www.example.com: [192.0.2.80, "2001:db8::80"]
    ns1.example.com: [192.0.2.53]
    mx.sub.example.com: [192.0.2.25]
    deep.x.y.example.org: [192.0.2.26]
    elsewhere.example: [192.0.2.27]
providers:
  - id: mail.example.com
    domains: [example.com, sub.example.com, autoconfig.example.com, example.org, "*.wild.example"]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: other.example
    domains: [other.example, sub.other.example]
    servers:
      - {type: imap, host: imap.other.example, security: tls}
      - {type: imap, host: imap.other.example, security: starttls}
      - {type: smtp, host: smtp.other.example, security: tls}
`, `
dns:
  service_addresses: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5, 192.0.2.6, 192.0.2.7, 192.0.2.8, "2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8::4", "2001:db8::5", "2001:db8::6", "2001:db8::7", "2001:db8::8", "2001:db8::9", "2001:db8::10", "2001:db8::11", "2001:db8::12", "2001:db8::13", "2001:db8::14", "2001:db8::15", "2001:db8::16", "2001:db8::17", "2001:db8::18"]
  nameservers: [a.very-long-name-server-label-to-make-the-answers-large.hoster.example, b.very-long-name-server-label-to-make-the-answers-large.hoster.example, c.very-long-name-server-label-to-make-the-answers-large.hoster.example, d.very-long-name-server-label-to-make-the-answers-large.hoster.example, e.very-long-name-server-label-to-make-the-answers-large.hoster.example, f.very-long-name-server-label-to-make-the-answers-large.hoster.example, g.very-long-name-server-label-to-make-the-answers-large.hoster.example, h.very-long-name-server-label-to-make-the-answers-large.hoster.example]
providers:
  - id: mail.example.com
    domains: [example.com, a-rather-long-customer-domain-name-for-the-truncation-checks.example]
    servers:
      - {type: imap, host: imap-server-with-a-long-name-number-one.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-two.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-three.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-four.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-five.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-six.example.com, security: tls}
      - {type: imap, host: imap-server-with-a-long-name-number-seven.example.com, security: tls}
      - {type: smtp, host: smtp.example.com}
`, `
dns:
  zone: _tcp
  service_addresses: [192.0.2.1]
  hosts: {imap.example.com: [192.0.2.143]}
providers:
  - id: mail.example.com
    domains: [example.com, example.net, sub.example.net]
    servers:
      - {type: imap, host: imap.example.com, security: tls}
      - {type: smtp, host: smtp.example.com}
`, `
dns:
  publish_unavailable: true
  service_addresses: [192.0.2.1, "2001:db8::1"]
  hosts: {dav.example.com: [192.0.2.80]}
providers:
  - id: mail.example.com
    domains: [example.com, example.net]
    aliases: {alias.example: example.com}
    caldav: {url: "https://dav.example.com/calendars/%EMAILADDRESS%/"}
    carddav: {url: "https://dav.example.com:8443/card\"books\\x/%EMAILLOCALPART%"}
    jmap: {url: "https://jmap.example.com/.well-known/jmap"}
    servers:
      - {type: imap, host: imap.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: tls}
  - id: mail.other.example
    domains: [other.example]
    caldav: {url: "https://dav.%EMAILDOMAIN%/cal/"}
    carddav: {url: "https://192.0.2.81/card/"}
    servers:
      - {type: imap, host: imap.other.example, security: starttls}
      - {type: smtp, host: smtp.other.example, security: starttls}
`, `
dns:
  zone: _tcp
  service_addresses: [192.0.2.1]
providers:
  - id: mail.example.com
    domains: [example.com]
    caldav: {url: "https://dav.example.com/"}
    servers:
      - {type: imap, host: imap.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: tls}
`}

func referenceSetup(t testing.TB, yaml string) (*Zones, *refZones) {
	t.Helper()
	var cfg *config.Config
	var err error
	if yaml == "demo" {
		cfg, err = config.Demo()
	} else {
		cfg, err = config.Parse("test.yaml", []byte(yaml))
	}
	if err != nil {
		t.Fatal(err)
	}
	cat := settings.New(cfg)
	z, err := newZones(cat)
	if err != nil {
		t.Fatal(err)
	}
	return z, newRef(t, cat)
}

var referenceTypes = []uint16{dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeANY, dns.TypeTXT, dns.TypeMX}

// Every name of every zone, names just below and above them and outside,
// every type, in mixed case, with and without EDNS: the same answers as the
// library packs from the records.
func TestAnswersMatchReference(t *testing.T) {
	for i, yaml := range referenceConfigs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			z, ref := referenceSetup(t, yaml)
			var names []string
			for n := range ref.names {
				names = append(names, n, "x."+n, "*."+n, n[strings.IndexByte(n, '.')+1:])
			}
			names = append(names, ".", "example.", "unknown.example.", "_tcp.example.net.")
			slices.Sort(names)
			for j, n := range slices.Compact(names) {
				for _, typ := range referenceTypes {
					for k, edns := range []uint16{0, 512, 1232, 4096} {
						q := new(dns.Msg)
						q.SetQuestion(mixCase(n, j+k), typ)
						q.Id = uint16(j)
						q.RecursionDesired = k%2 == 0
						q.CheckingDisabled = k == 1
						if edns > 0 {
							q.SetEdns0(edns, k == 2)
						}
						checkSame(t, z, ref, q)
					}
				}
			}
		})
	}
}

// mixCase upper-cases some letters, as resolvers using 0x20 do.
func mixCase(s string, seed int) string {
	b := []byte(s)
	for i := range b {
		if (i+seed)%3 == 0 && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzAnswers compares the answers with the reference for arbitrary names
// and types under the zones of the configurations above.
func FuzzAnswers(f *testing.F) {
	type pair struct {
		z   *Zones
		ref *refZones
	}
	var all []pair
	for _, yaml := range referenceConfigs {
		z, ref := referenceSetup(f, yaml)
		all = append(all, pair{z, ref})
	}
	f.Add(uint8(0), "_imaps._tcp", "example.com", uint16(dns.TypeSRV), false)
	f.Add(uint8(1), "_IMAPS._tcp", "sub.Example.com", uint16(dns.TypeSRV), true)
	f.Add(uint8(2), "autoconfig", "example.com", uint16(dns.TypeA), false)
	f.Add(uint8(2), "x", "y.example.org", uint16(dns.TypeANY), true)
	f.Add(uint8(3), "", "example.com", uint16(dns.TypeNS), false)
	// The seeds below run in every `go test` and start `make fuzz`: one per
	// shape of answer. CNAME chased into dns.hosts, the wildcard domain,
	// NXDOMAIN and NODATA under each kind of zone, a truncated answer, an
	// escaped label, a type nobody serves.
	f.Add(uint8(1), "_autodiscover._tcp", "alias.example", uint16(dns.TypeSRV), false)
	f.Add(uint8(1), "_tcp", "other.example", uint16(dns.TypeSOA), true)
	f.Add(uint8(2), "autoconfig", "example.org", uint16(dns.TypeCNAME), false)
	f.Add(uint8(2), "_submissions._tcp.any", "wild.example", uint16(dns.TypeSRV), true)
	f.Add(uint8(2), "*", "wild.example", uint16(dns.TypeA), false)
	f.Add(uint8(2), "deep.x.y", "example.org", uint16(dns.TypeAAAA), true)
	f.Add(uint8(2), "nothing.here", "sub.other.example", uint16(dns.TypeTXT), false)
	f.Add(uint8(3), "_imaps._tcp", "a-rather-long-customer-domain-name-for-the-truncation-checks.example", uint16(dns.TypeSRV), false)
	f.Add(uint8(3), "", "A-RATHER-LONG-customer-domain-name-for-the-truncation-checks.example", uint16(dns.TypeNS), true)
	f.Add(uint8(4), "_imap._tcp", "sub.example.net", uint16(dns.TypeANY), false)
	f.Add(uint8(4), `a\.b`, "example.net", uint16(dns.TypeMX), true)
	f.Add(uint8(0), "_pop3s._tcp", "example.net", uint16(dns.TypeCAA), false)
	f.Add(uint8(0), "", "", uint16(dns.TypeNS), false)
	f.Fuzz(func(t *testing.T, which uint8, prefix, domain string, qtype uint16, edns bool) {
		p := all[int(which)%len(all)]
		name := dns.Fqdn(domain)
		if prefix != "" {
			name = prefix + "." + name
		}
		if _, ok := dns.IsDomainName(name); !ok || qtype == dns.TypeOPT || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
			return
		}
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if edns {
			q.SetEdns0(1232, false)
		}
		if _, err := q.Pack(); err != nil {
			return
		}
		checkSame(t, p.z, p.ref, q)
	})
}

// A hoster's configuration: the domains of one provider share one encoded
// template (a map entry per domain, not a zone), and every domain still gets
// its own answers.
func TestManyDomainsShareTemplates(t *testing.T) {
	const n = 2500
	z, ref := referenceSetup(t, string(benchconf.YAML(benchconf.Options{Domains: n})))
	templates := map[*zone]bool{}
	for _, t := range z.zones {
		templates[t] = true
	}
	providers := (n + benchconf.PerProvider - 1) / benchconf.PerProvider
	if len(z.zones) != n || len(templates) != providers {
		t.Fatalf("%d domains with %d templates, want %d with %d", len(z.zones), len(templates), n, providers)
	}
	for i := 0; i < n; i += 97 {
		d := benchconf.Domain(i)
		for _, name := range []string{"", "_imaps._tcp.", "_tcp.", "autoconfig.", "_autodiscover._tcp.", "nothing."} {
			for _, typ := range referenceTypes {
				q := new(dns.Msg)
				q.SetQuestion(mixCase(name+d+".", i), typ)
				checkSame(t, z, ref, q)
			}
		}
	}
}
