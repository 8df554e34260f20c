package dnsserver_test

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// startDNS runs the real server with DNS on a free loopback port and
// returns the DNS address.
func startDNS(t *testing.T, cfg *config.Config) string {
	t.Helper()
	srv := testutil.Start(t, cfg, server.Options{DNSAddr: "127.0.0.1:0"})
	a := srv.DNSAddr()
	if a == nil {
		t.Fatal("the server has no DNS listener")
	}
	return a.String()
}

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// exchange sends one query with the Go client over net ("udp" or "tcp").
func exchange(t *testing.T, addr, netw string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 3 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", netw, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("answer ID %d for query ID %d", r.Id, m.Id)
	}
	return r
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

// rdata prints the records of a section without owner and TTL.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		s := rr.String()
		h := rr.Header().String()
		out = append(out, dns.TypeToString[rr.Header().Rrtype]+" "+strings.TrimPrefix(s, h))
	}
	slices.Sort(out)
	return out
}

func TestAnswersOverUDPAndTCP(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	soa := "SOA ns1.example.com. hostmaster.example.com. 1 3600 600 1209600 300"
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string // authority section
	}{
		{"_imaps._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 0 993 imap.example.com."}, nil},
		{"_imap._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 10 0 143 imap.example.com."}, nil},
		{"_pop3s._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 20 0 995 pop.example.com."}, nil},
		{"_pop3._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 30 0 110 pop.example.com."}, nil},
		{"_submissions._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 0 465 smtp.example.com."}, nil},
		{"_submission._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 10 0 587 smtp.example.com."}, nil},
		{"_autodiscover._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 0 443 autodiscover.example.com."}, nil},
		{"_imaps._tcp.example.net.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 0 0 993 imap.example.com."}, nil},
		{"autoconfig.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil},
		{"autoconfig.example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA ::1"}, nil},
		{"autodiscover.example.net.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}, nil},
		{"imap.example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA 2001:db8::11"}, nil},
		{"example.com.", dns.TypeSOA, dns.RcodeSuccess, []string{soa}, nil},
		{"example.com.", dns.TypeNS, dns.RcodeSuccess, []string{"NS ns1.example.com."}, nil},
		// NODATA: the name exists, the type does not.
		{"_imaps._tcp.example.com.", dns.TypeA, dns.RcodeSuccess, nil, []string{soa}},
		{"pop.example.com.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soa}},
		// An empty non-terminal exists (RFC 8020): NODATA, not NXDOMAIN.
		{"_tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, nil, []string{soa}},
		{"_xmpp._tcp.example.com.", dns.TypeSRV, dns.RcodeNameError, nil, []string{soa}},
		{"nothing.here.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}},
		{"example.org.", dns.TypeSOA, dns.RcodeRefused, nil, nil},
		{"_imaps._tcp.example.org.", dns.TypeSRV, dns.RcodeRefused, nil, nil},
		{"com.", dns.TypeNS, dns.RcodeRefused, nil, nil},
		// RFC 8482: ANY gets one RRset.
		{"_imaps._tcp.example.com.", dns.TypeANY, dns.RcodeSuccess, []string{"SRV 0 0 993 imap.example.com."}, nil},
		{"example.com.", dns.TypeANY, dns.RcodeSuccess, []string{soa}, nil},
		{"example.com.", dns.TypeAXFR, dns.RcodeRefused, nil, nil},
		{"example.com.", dns.TypeIXFR, dns.RcodeRefused, nil, nil},
	}
	for _, netw := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(netw+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
				if tt.qtype == dns.TypeAXFR && netw == "udp" {
					t.Skip("AXFR is TCP only")
				}
				r := exchange(t, addr, netw, query(tt.name, tt.qtype))
				if r.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode], r)
				}
				if r.RecursionAvailable {
					t.Errorf("RA set: the server must not offer recursion")
				}
				if wantAA := tt.rcode != dns.RcodeRefused; r.Authoritative != wantAA {
					t.Errorf("AA = %v, want %v", r.Authoritative, wantAA)
				}
				if got := rdata(r.Answer); !slices.Equal(got, tt.answer) {
					t.Errorf("answer %q, want %q", got, tt.answer)
				}
				if got := rdata(r.Ns); !slices.Equal(got, tt.ns) {
					t.Errorf("authority %q, want %q", got, tt.ns)
				}
				if len(r.Extra) != 0 {
					t.Errorf("additional section not empty: %v", r.Extra)
				}
				for _, rr := range r.Ns {
					if rr.Header().Rrtype == dns.TypeSOA && rr.Header().Ttl != 300 {
						t.Errorf("negative SOA TTL %d, want 300 (RFC 2308)", rr.Header().Ttl)
					}
				}
			})
		}
	}
}

// Resolvers randomise the case of the name (0x20) and check the echo.
func TestCaseEchoed(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	for _, netw := range []string{"udp", "tcp"} {
		for _, name := range []string{"_IMAPS._tcp.ExAmPlE.CoM.", "AutoConfig.EXAMPLE.com.", "NoSuch.Example.COM."} {
			q := query(name, dns.TypeSRV)
			if strings.HasPrefix(name, "Auto") {
				q = query(name, dns.TypeA)
			}
			r := exchange(t, addr, netw, q)
			if r.Question[0].Name != name {
				t.Errorf("%s: question echoed as %q", name, r.Question[0].Name)
			}
			for _, rr := range r.Answer {
				if rr.Header().Name != name {
					t.Errorf("%s: answer owner %q", name, rr.Header().Name)
				}
			}
			if len(r.Answer) == 0 && r.Rcode != dns.RcodeNameError {
				t.Errorf("%s: no answer (%s)", name, dns.RcodeToString[r.Rcode])
			}
		}
	}
}

func TestEDNS(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	for _, netw := range []string{"udp", "tcp"} {
		q := query("_imaps._tcp.example.com.", dns.TypeSRV)
		r := exchange(t, addr, netw, q)
		if r.IsEdns0() != nil {
			t.Errorf("%s: OPT in the answer to a query without EDNS", netw)
		}
		q.SetEdns0(4096, true)
		r = exchange(t, addr, netw, q)
		opt := r.IsEdns0()
		if opt == nil {
			t.Fatalf("%s: no OPT echoed", netw)
		}
		if opt.UDPSize() != 1232 || !opt.Do() || opt.Version() != 0 {
			t.Errorf("%s: OPT size %d do %v version %d, want 1232 true 0", netw, opt.UDPSize(), opt.Do(), opt.Version())
		}
		if len(r.Answer) != 1 {
			t.Errorf("%s: %d answers", netw, len(r.Answer))
		}
		// Unknown EDNS version: BADVERS (RFC 6891 section 6.1.3).
		q.IsEdns0().SetVersion(1)
		r = exchange(t, addr, netw, q)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
			t.Errorf("%s: EDNS version 1 got %s with %d answers, want BADVERS", netw, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
}

// A name with more addresses than fit into the UDP limit gets TC=1 over UDP
// and the full answer over TCP.
func TestTruncation(t *testing.T) {
	var addrs []string
	for i := range 60 {
		addrs = append(addrs, fmt.Sprintf("\"2001:db8::%x\"", i+1))
	}
	cfg := parse(t, `
dns:
  rate_limit: {responses_per_second: 0}
  service_addresses: [`+strings.Join(addrs, ", ")+`]
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	addr := startDNS(t, cfg)
	tests := []struct {
		netw    string
		edns    uint16 // 0: no EDNS
		tc      bool
		answers int
		maxSize int
	}{
		{"udp", 0, true, 0, 512},
		{"udp", 1232, true, 0, 1232},
		{"udp", 65000, true, 0, 1232}, // our ceiling, whatever the client offers
		{"tcp", 0, false, 60, 65535},
		{"tcp", 1232, false, 60, 65535},
	}
	for _, tt := range tests {
		q := query("autoconfig.example.com.", dns.TypeAAAA)
		if tt.edns > 0 {
			q.SetEdns0(tt.edns, false)
		}
		buf, size := rawExchange(t, tt.netw, addr, q)
		r := new(dns.Msg)
		if err := r.Unpack(buf); err != nil {
			t.Fatalf("%+v: unpack: %v", tt, err)
		}
		if r.Truncated != tt.tc || len(r.Answer) != tt.answers || size > tt.maxSize {
			t.Errorf("%+v: TC=%v, %d answers, %d octets", tt, r.Truncated, len(r.Answer), size)
		}
		if !r.Authoritative || r.Rcode != dns.RcodeSuccess {
			t.Errorf("%+v: AA=%v rcode %s", tt, r.Authoritative, dns.RcodeToString[r.Rcode])
		}
	}
	// A small answer to the same client is not truncated.
	buf, _ := rawExchange(t, "udp", addr, query("_imaps._tcp.example.com.", dns.TypeSRV))
	r := new(dns.Msg)
	if err := r.Unpack(buf); err != nil || r.Truncated || len(r.Answer) != 1 {
		t.Errorf("small answer: %v %v", err, r)
	}
}

// rawExchange sends a query and reads one raw answer, without the client
// library retrying or interpreting anything.
func rawExchange(t *testing.T, netw, addr string, q *dns.Msg) ([]byte, int) {
	t.Helper()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout(netw, addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if netw == "tcp" {
		wire = append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)
	}
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	if netw == "udp" {
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading the UDP answer: %v", err)
		}
		return buf[:n], n
	}
	var l [2]byte
	if _, err := readFull(c, l[:]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := readFull(c, buf); err != nil {
		t.Fatal(err)
	}
	return buf, len(buf)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Malformed packets get FORMERR or nothing, and the server keeps answering.
func TestMalformedPackets(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	good := query("_imaps._tcp.example.com.", dns.TypeSRV)
	goodWire, _ := good.Pack()
	noQuestion := append([]byte(nil), goodWire[:12]...)
	noQuestion[5] = 0 // QDCOUNT 0
	twoQuestions := append([]byte(nil), goodWire...)
	twoQuestions[5] = 2
	cutName := append([]byte(nil), goodWire[:20]...)
	badLabel := append([]byte(nil), goodWire...)
	badLabel[12] = 0xC0 // a compression pointer to itself
	badLabel[13] = 12
	update := append([]byte(nil), goodWire...)
	update[2] = 5 << 3 // opcode UPDATE
	notify := append([]byte(nil), goodWire...)
	notify[2] = 4 << 3 // opcode NOTIFY
	response := append([]byte(nil), goodWire...)
	response[2] |= 0x80 // QR set: a response, never answered
	tests := []struct {
		name  string
		wire  []byte
		rcode int // -1: no answer expected; -2: none or FORMERR
	}{
		{"garbage", []byte("\x01\x02hello, world"), -2},
		{"short header", []byte{1, 2, 3}, -1},
		{"no question", noQuestion, dns.RcodeFormatError},
		{"two questions", twoQuestions, dns.RcodeFormatError},
		{"cut name", cutName, dns.RcodeFormatError},
		{"pointer loop", badLabel, dns.RcodeFormatError},
		{"update", update, dns.RcodeNotImplemented},
		{"notify", notify, dns.RcodeNotImplemented},
		{"response", response, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(700 * time.Millisecond))
			c.Write(tt.wire)
			buf := make([]byte, 4096)
			n, err := c.Read(buf)
			if tt.rcode == -2 && err == nil {
				r := new(dns.Msg)
				r.Unpack(buf[:n])
				if (r.Rcode != dns.RcodeFormatError && r.Rcode != dns.RcodeNotImplemented) || n > 12+len(tt.wire) {
					t.Errorf("answered %d octets with %s, want silence or a short FORMERR/NOTIMP", n, dns.RcodeToString[r.Rcode])
				}
			} else if tt.rcode < 0 {
				if err == nil {
					t.Errorf("answered %d octets, want silence", n)
				}
			} else {
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				r := new(dns.Msg)
				if err := r.Unpack(buf[:n]); err != nil && n < 12 {
					t.Fatalf("unparsable answer: %v", err)
				}
				if r.Rcode != tt.rcode || len(r.Answer) != 0 {
					t.Errorf("rcode %s with %d answers, want %s", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode])
				}
			}
			// Still alive and correct.
			r := exchange(t, addr, "udp", good)
			if len(r.Answer) != 1 {
				t.Fatalf("after %s: %v", tt.name, r)
			}
		})
	}
}

// The server never answers for foreign names and never sends much more than
// it received for a short query (amplification).
func TestRateLimitSlipsToTC(t *testing.T) {
	cfg := parse(t, `
dns:
  rate_limit: {responses_per_second: 5, burst: 5, slip: 2}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	addr := startDNS(t, cfg)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 40
	for i := range n {
		q := query("_imaps._tcp.example.com.", dns.TypeSRV)
		q.Id = uint16(1000 + i)
		w, _ := q.Pack()
		if _, err := c.Write(w); err != nil {
			t.Fatal(err)
		}
	}
	full, tc := 0, 0
	c.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	for {
		k, err := c.Read(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0:
			tc++
		case len(r.Answer) == 1:
			full++
		default:
			t.Errorf("unexpected answer %v", r)
		}
	}
	dropped := n - full - tc
	t.Logf("%d queries: %d answered, %d truncated, %d dropped", n, full, tc, dropped)
	if full < 5 || full > 7 {
		t.Errorf("%d full answers, want about the burst of 5", full)
	}
	if tc == 0 || dropped == 0 || tc < dropped-2 || tc > dropped+2 {
		t.Errorf("slip 2: %d truncated and %d dropped, want about half each", tc, dropped)
	}
	// TCP proves the source and is not limited.
	for range 10 {
		if r := exchange(t, addr, "tcp", query("_imaps._tcp.example.com.", dns.TypeSRV)); len(r.Answer) != 1 {
			t.Fatalf("TCP answer during UDP limit: %v", r)
		}
	}
}

// The records follow the configuration: protocol order, implicit TLS first,
// weights, "0 0 0 ." for services not offered, CNAME service names, and
// "_tcp" zones.
func TestRecordsFollowConfiguration(t *testing.T) {
	cfg := parse(t, `
dns:
  zone: _tcp
  publish_unavailable: true
  service_cname: web.hoster.example
  nameservers: [ns1.hoster.example, ns2.hoster.example]
  hostmaster: dns@hoster.example
  ttl: 600
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: pop3, host: pop.example.com, security: starttls}
      - {type: pop3, host: pop.example.com, security: tls}
      - {type: imap, host: imap1.example.com, security: tls, weight: 3}
      - {type: imap, host: imap2.example.com, security: tls, weight: 1}
      - {type: imap, host: imap3.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: starttls}
`)
	addr := startDNS(t, cfg)
	soa := "SOA ns1.hoster.example. dns.hoster.example. 1 3600 600 1209600 300"
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{"_pop3s._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 0 0 995 pop.example.com."}},
		{"_pop3._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 10 0 110 pop.example.com."}},
		{"_imaps._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 20 1 993 imap2.example.com.", "SRV 20 3 993 imap1.example.com.", "SRV 30 0 993 imap3.example.com."}},
		{"_imap._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 0 0 0 ."}},
		{"_submission._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 0 0 587 smtp.example.com."}},
		{"_submissions._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 0 0 0 ."}},
		// The SRV target must not be an alias (RFC 2782).
		{"_autodiscover._tcp.example.com.", dns.TypeSRV, 0, []string{"SRV 0 0 443 web.hoster.example."}},
		{"_tcp.example.com.", dns.TypeSOA, 0, []string{soa}},
		{"_tcp.example.com.", dns.TypeNS, 0, []string{"NS ns1.hoster.example.", "NS ns2.hoster.example."}},
		// Only _tcp is delegated here: the domain itself is not ours.
		{"autoconfig.example.com.", dns.TypeA, dns.RcodeRefused, nil},
		{"example.com.", dns.TypeSOA, dns.RcodeRefused, nil},
	}
	for _, tt := range tests {
		r := exchange(t, addr, "udp", query(tt.name, tt.qtype))
		if r.Rcode != tt.rcode {
			t.Errorf("%s: rcode %s", tt.name, dns.RcodeToString[r.Rcode])
		}
		if got := rdata(r.Answer); !slices.Equal(got, tt.answer) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.answer)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != 600 {
				t.Errorf("%s: TTL %d, want 600", tt.name, rr.Header().Ttl)
			}
		}
	}

	// In a "domain" zone the CNAME is served, and chased when its target
	// is in the zone too.
	cfg = parse(t, `
dns:
  service_cname: www.example.com
  hosts: {www.example.com: [192.0.2.80]}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	addr = startDNS(t, cfg)
	r := exchange(t, addr, "tcp", query("autoconfig.example.com.", dns.TypeA))
	if got, want := rdata(r.Answer), []string{"A 192.0.2.80", "CNAME www.example.com."}; !slices.Equal(got, want) {
		t.Errorf("CNAME chase: %q, want %q", got, want)
	}
	r = exchange(t, addr, "tcp", query("autodiscover.example.com.", dns.TypeTXT))
	if got, want := rdata(r.Answer), []string{"CNAME www.example.com."}; !slices.Equal(got, want) {
		t.Errorf("CNAME for TXT: %q, want %q", got, want)
	}
}

// A reload swaps the zones.
func TestReload(t *testing.T) {
	yaml := `
dns: {rate_limit: {responses_per_second: 0}}
providers:
  - id: mail.example.com
    domains: [%s]
    servers:
      - {type: imap, host: imap.example.com, port: %d, security: tls}
      - {type: smtp, host: smtp.example.com}
`
	srv := testutil.Start(t, parse(t, fmt.Sprintf(yaml, "example.com", 993)), server.Options{DNSAddr: "127.0.0.1:0"})
	addr := srv.DNSAddr().String()
	if got := rdata(exchange(t, addr, "udp", query("_imaps._tcp.example.com.", dns.TypeSRV)).Answer); !slices.Equal(got, []string{"SRV 0 0 993 imap.example.com."}) {
		t.Fatalf("before reload: %q", got)
	}
	if err := srv.Reload(parse(t, fmt.Sprintf(yaml, "example.org", 1993))); err != nil {
		t.Fatal(err)
	}
	if got := rdata(exchange(t, addr, "udp", query("_imaps._tcp.example.org.", dns.TypeSRV)).Answer); !slices.Equal(got, []string{"SRV 0 0 1993 imap.example.com."}) {
		t.Errorf("after reload: %q", got)
	}
	if r := exchange(t, addr, "udp", query("_imaps._tcp.example.com.", dns.TypeSRV)); r.Rcode != dns.RcodeRefused {
		t.Errorf("old domain after reload: %s", dns.RcodeToString[r.Rcode])
	}
}

// srv.sh, the independent RFC 6186 / RFC 8314 checker, against the live
// server, for both demo domains.
func TestConformanceSRV(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	host, port, _ := net.SplitHostPort(addr)
	dir := testutil.ConformanceDir(t)
	testutil.Tool(t, "dig", "bind9-dnsutils")
	for _, d := range []string{"example.com", "example.net"} {
		out, err := exec.Command("bash", dir+"/srv.sh", d, host, port).CombinedOutput()
		if err != nil {
			t.Errorf("srv.sh %s: %v\n%s", d, err, out)
		}
		if strings.Contains(string(out), "WARN") {
			t.Errorf("srv.sh %s warns:\n%s", d, out)
		}
	}
}

// dig, a real resolver tool, over UDP and TCP.
func TestDig(t *testing.T) {
	dig := testutil.Tool(t, "dig", "bind9-dnsutils")
	var addrs []string
	for i := range 60 {
		addrs = append(addrs, fmt.Sprintf("\"2001:db8::%x\"", i+1))
	}
	cfg := parse(t, `
listen: {dns: "127.0.0.1:0"}
dns:
  service_addresses: [`+strings.Join(addrs, ", ")+`]
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	addr := startDNS(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		args []string
		want []string // substrings of dig's output
		not  []string
	}{
		{[]string{"_imaps._tcp.example.com", "SRV"}, []string{"status: NOERROR", "flags: qr aa;", "SRV\t0 0 993 imap.example.com."}, nil},
		{[]string{"+tcp", "_imaps._tcp.example.com", "SRV"}, []string{"status: NOERROR", "flags: qr aa;", "SRV\t0 0 993 imap.example.com.", "(TCP)"}, nil},
		{[]string{"_submissions._tcp.example.com", "SRV"}, []string{"SRV\t0 0 465 smtp.example.com."}, nil},
		{[]string{"nope.example.com", "SRV"}, []string{"status: NXDOMAIN", "flags: qr aa;", "AUTHORITY: 1", "IN\tSOA\tns.mail.example.com. hostmaster.example.com."}, nil},
		{[]string{"+tcp", "nope.example.com", "SRV"}, []string{"status: NXDOMAIN", "AUTHORITY: 1"}, nil},
		{[]string{"_imaps._tcp.example.com", "TXT"}, []string{"status: NOERROR", "ANSWER: 0, AUTHORITY: 1"}, nil},
		{[]string{"+recurse", "www.example.org", "A"}, []string{"status: REFUSED"}, []string{" ra", " aa"}},
		{[]string{"+tcp", "+recurse", "www.example.org", "A"}, []string{"status: REFUSED"}, []string{" ra", " aa"}},
		{[]string{"_imaps._tcp.example.com", "ANY"}, []string{"ANSWER: 1,", "SRV\t0 0 993"}, nil},
		{[]string{"+noedns", "+ignore", "autoconfig.example.com", "AAAA"}, []string{"flags: qr aa tc;", "ANSWER: 0,"}, nil},
		{[]string{"+tcp", "autoconfig.example.com", "AAAA"}, []string{"ANSWER: 60,"}, []string{" tc"}},
		{[]string{"example.com", "AXFR"}, []string{"Transfer failed"}, []string{"SOA"}},
	}
	for _, tt := range tests {
		args := append([]string{"+norecurse", "+time=2", "+tries=1", "-p", port, "@" + host}, tt.args...)
		out, _ := exec.Command(dig, args...).CombinedOutput()
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("dig %s: no %q in\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(flagsLine(string(out)), w) || (w == "SOA" && strings.Contains(string(out), "IN\tSOA")) {
				t.Errorf("dig %s: %q in\n%s", strings.Join(tt.args, " "), w, out)
			}
		}
	}
}

func flagsLine(out string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, ";; flags:") {
			return l
		}
	}
	return ""
}

// The batched UDP loop over IPv6 loopback.
func TestIPv6Loopback(t *testing.T) {
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	srv := testutil.Start(t, testutil.Demo(t), server.Options{DNSAddr: "[::1]:0"})
	addr := srv.DNSAddr().String()
	for _, netw := range []string{"udp", "tcp"} {
		r := exchange(t, addr, netw, query("_submissions._tcp.example.net.", dns.TypeSRV))
		if got := rdata(r.Answer); !slices.Equal(got, []string{"SRV 0 0 465 smtp.example.com."}) {
			t.Errorf("%s over IPv6: %q", netw, got)
		}
	}
}

// Answers are counted in the metrics by query type and rcode.
func TestMetricsCountAnswers(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{DNSAddr: "127.0.0.1:0"})
	addr := srv.DNSAddr().String()
	for range 3 {
		exchange(t, addr, "udp", query("_imaps._tcp.example.com.", dns.TypeSRV))
	}
	for range 2 {
		exchange(t, addr, "tcp", query("nope.example.com.", dns.TypeA))
	}
	exchange(t, addr, "udp", query("example.org.", 4711))
	// Counting happens after the write; give the server a moment.
	deadline := time.Now().Add(2 * time.Second)
	want := map[[2]string]float64{{"SRV", "NOERROR"}: 3, {"A", "NXDOMAIN"}: 2, {"other", "REFUSED"}: 1}
	for {
		ok := true
		for l, n := range want {
			if got := dnsCount(t, srv, l[0], l[1]); got != n {
				ok = false
				if time.Now().After(deadline) {
					t.Errorf("mailautoconf_dns_queries_total%v = %v, want %v", l, got, n)
				}
			}
		}
		if ok || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dnsCount reads mailautoconf_dns_queries_total{qtype, rcode} from the
// server's metrics registry.
func dnsCount(t *testing.T, srv *testutil.Running, qtype, rcode string) float64 {
	t.Helper()
	fams, err := srv.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mailautoconf_dns_queries_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["qtype"] == qtype && labels["rcode"] == rcode {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A resolver may pipeline any number of queries on one TCP connection
// (RFC 7766); the library's default would close it after 128.
func TestTCPPipelining(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	const n = 300
	var all []byte
	for i := range n {
		q := query("_submissions._tcp.example.com.", dns.TypeSRV)
		q.Id = uint16(i)
		w, _ := q.Pack()
		all = append(all, byte(len(w)>>8), byte(len(w)))
		all = append(all, w...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for range n {
		var l [2]byte
		if _, err := readFull(c, l[:]); err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		buf := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := readFull(c, buf); err != nil {
			t.Fatal(err)
		}
		var r dns.Msg
		if err := r.Unpack(buf); err != nil || len(r.Answer) != 1 {
			t.Fatalf("answer %d: %v %v", len(seen), err, r)
		}
		seen[r.Id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct answers, want %d", len(seen), n)
	}
}
