package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/testutil"
)

// hostileCase is one thing the internet sends. Exactly one of raw, talk,
// udp and tcp is set.
type hostileCase struct {
	name string
	raw  string           // an HTTP request, sent as it is
	talk func(c net.Conn) // talks HTTP on the connection itself
	udp  []byte           // a DNS datagram
	tcp  []byte           // octets sent to the DNS server over TCP
	want int              // HTTP status, 0 = closed without an answer; DNS rcode, -1 = no answer
	// within bounds the time to the answer (or to the close); default 3 s.
	within time.Duration
	has    []string // the body must contain these
	hasNot []string // and must not contain these
	// noHeader lists response headers that must be absent.
	noHeader []string
	// data names the provider whose data may appear ("" = none).
	data string
}

const (
	pox      = "/autodiscover/autodiscover.xml"
	acPath   = "/mail/config-v1.1.xml"
	poxStart = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>`
	poxEnd   = `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
)

func poxBody(addr string) string { return poxStart + addr + poxEnd }

// Pieces of DNS messages, for packets no library would build.
func dnsHeader(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	for i, v := range []uint16{id, flags, qd, an, ns, ar} {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	exampleName = []byte("\x07example\x03com\x00")
	typeSOA     = []byte{0, 6, 0, 1}
	// rootOPT is an OPT pseudo-record: root name, type 41, 1232 octets,
	// extended rcode 0, version v, no options.
	rootOPT = func(version byte, rdata []byte) []byte {
		b := []byte{0, 0, 41, 0x04, 0xd0, 0, version, 0, 0}
		b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
		return append(b, rdata...)
	}
)

func withLength(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// trickle writes piece every interval until the server gives up on us.
func trickle(first, piece string, interval time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, first); err != nil {
			return
		}
		for range 50 {
			time.Sleep(interval)
			if _, err := io.WriteString(c, piece); err != nil {
				return
			}
		}
	}
}

func hostileCases() []hostileCase {
	big := func(n int) string { return strings.Repeat("A", n) }
	return []hostileCase{
		// Oversized bodies and headers.
		{name: "autodiscover body of 1 MiB", raw: rawReq("POST", pox, poxBody("alice@example.com")+strings.Repeat(" ", 1<<20), "Content-Type: text/xml"),
			want: 200, has: []string{"larger than"}},
		{name: "autodiscover chunked body of 1 MiB", raw: "POST " + pox + " HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			strings.Repeat("4000\r\n"+strings.Repeat("x", 0x4000)+"\r\n", 64) + "0\r\n\r\n", want: 200, has: []string{"larger than"}},
		{name: "autoconfig POST with 200 KiB body", raw: rawReq("POST", acPath+"?emailaddress=alice@example.com", big(200<<10)), want: 413},
		{name: "header of 64 KiB", raw: rawGet(acPath+"?emailaddress=alice@example.com", "X-Big: "+big(64<<10)), want: 431},
		{name: "5000 small header lines", raw: rawGet("/healthz", strings.Repeat("X-A: b\r\n", 4999)+"X-A: b"), want: 431},
		{name: "Host header of 100 KiB", raw: rawGet(acPath, "Host: autoconfig."+big(100<<10)+".example.com"), want: 431},
		{name: "Host header of 2 KiB", raw: rawGet(acPath, "Host: autoconfig."+strings.Repeat("a.", 1000)+"example.com"), want: 400},
		{name: "request line of 30 KiB", raw: rawGet(acPath + "?emailaddress=" + big(30<<10) + "@example.com"), want: 431},
		{name: "2000 query parameters", raw: rawGet(acPath + "?" + strings.Repeat("a=1&", 2000) + "emailaddress=alice@example.com"), want: 200, data: "example"},

		// Slow clients: cut off by the server's timeouts, not left hanging.
		{name: "slow-loris header trickle", talk: trickle("GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-A: b\r\n", 100*time.Millisecond),
			want: 0, within: 1500 * time.Millisecond},
		{name: "connection that never speaks", talk: func(net.Conn) {}, want: 0, within: 1500 * time.Millisecond},
		{name: "autodiscover body trickle", talk: trickle("POST "+pox+" HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"+poxStart, "a", 100*time.Millisecond),
			want: 200, within: 2500 * time.Millisecond, has: []string{"could not be read"}},

		// XML attacks on Autodiscover.
		{name: "billion laughs", raw: rawReq("POST", pox, `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>`+poxBody("&d;@example.com")),
			want: 200, has: []string{"DTD"}, hasNot: []string{"aaaaaaaaaa"}},
		{name: "external entity file", raw: rawReq("POST", pox, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`+poxBody("&e;")),
			want: 200, has: []string{"DTD"}, hasNot: []string{"root:"}},
		{name: "external parameter entity", raw: rawReq("POST", pox, `<!DOCTYPE x [<!ENTITY % p SYSTEM "http://192.0.2.1/x.dtd"> %p;]>`+poxBody("alice@example.com")),
			want: 200, has: []string{"DTD"}},
		{name: "nesting 2000 deep", raw: rawReq("POST", pox, "<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress>"+strings.Repeat("<a>", 2000)+strings.Repeat("</a>", 2000)+"</Request></Autodiscover>"),
			want: 200, has: []string{"deeper than"}},
		{name: "invalid UTF-8 in the Autodiscover address", raw: rawReq("POST", pox, poxBody("al\xff\xfeice@example.com")), want: 200, has: []string{"<ErrorCode>"}},
		{name: "NUL in the Autodiscover address", raw: rawReq("POST", pox, poxBody("alice\x00@example.com")), want: 200, has: []string{"<ErrorCode>"}},
		{name: "two addresses in one Autodiscover request", raw: rawReq("POST", pox, poxStart+"alice@example.com</EMailAddress><EMailAddress>bob@other.org"+poxEnd),
			want: 200, data: "example"},

		// Encoding tricks in query strings and headers.
		{name: "invalid UTF-8 in the autoconfig address", raw: rawGet(acPath + "?emailaddress=al%FF%FEice@example.com"), want: 400},
		{name: "NUL in the autoconfig address", raw: rawGet(acPath + "?emailaddress=alice%00@example.com"), want: 400},
		{name: "raw NUL in the request line", raw: "GET /healthz\x00 HTTP/1.1\r\nHost: x\r\n\r\n", want: 400},
		{name: "NUL in a header value", raw: rawGet("/healthz", "X-A: a\x00b"), want: 400},
		{name: "invalid percent-encoding", raw: rawGet(acPath + "?emailaddress=%zzalice@example.com"), want: 400},
		{name: "binary garbage", raw: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", want: 400},
		// No h2c: the preface is an HTTP/1 request for "*", which no route serves.
		{name: "HTTP/2 preface on the plain port", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: 404},

		// Header injection through values the service puts in headers.
		{name: "CR/LF in the mobileconfig address", raw: rawGet("/mobileconfig?emailaddress=a%0d%0aSet-Cookie:%20x=1@example.com"),
			want: 400, noHeader: []string{"Set-Cookie"}},
		{name: "CR/LF in the mobileconfig name", raw: rawGet("/mobileconfig?emailaddress=alice@example.com&name=Alice%0d%0aSet-Cookie:%20x=1"),
			want: 400, noHeader: []string{"Set-Cookie"}},
		{name: "CR/LF in the Autodiscover JSON protocol", raw: rawGet("/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=x%0d%0aSet-Cookie:%20x=1"),
			want: 400, noHeader: []string{"Set-Cookie"}, hasNot: []string{"\r\nSet-Cookie", "\nSet-Cookie"}},
		{name: "CR/LF in the settings page address", raw: rawGet("/settings?emailaddress=a%0d%0aLocation:%20http://evil.example/@example.com"),
			want: 400, noHeader: []string{"Location"}},
		{name: "bare LF splitting the request line", raw: "GET /healthz?a=1\nSet-Cookie: x HTTP/1.1\r\nHost: x\r\n\r\n", want: 400},
		{name: "script in the settings page address", raw: rawGet("/settings?emailaddress=%3Cscript%3Ealert(1)%3C/script%3E@example.com"),
			want: 400, hasNot: []string{"<script>"}},

		// Paths.
		{name: "path traversal", raw: rawGet("/../../../../etc/passwd"), want: 404, hasNot: []string{"root:"}},
		{name: "encoded path traversal", raw: rawGet("/settings/%2e%2e%2f%2e%2e%2fetc%2fpasswd"), want: 404, hasNot: []string{"root:"}},
		{name: "traversal behind the stylesheet", raw: rawGet("/settings/style.css/..%2f..%2f..%2fetc/passwd"), want: 404, hasNot: []string{"root:"}},
		{name: "backslash traversal", raw: rawGet(`/..\..\..\windows\win.ini`), want: 404},
		{name: "traversal as the Autodiscover v2 address", raw: rawGet("/autodiscover/autodiscover.json/v1.0/..%2f..%2fetc%2fpasswd?Protocol=AutodiscoverV1"),
			want: 400, hasNot: []string{"root:"}},

		// Methods.
		{name: "TRACE does not echo the request", raw: rawReq("TRACE", "/", "", "X-Secret: s3cr3t-value"), want: 405, hasNot: []string{"s3cr3t-value"}},
		{name: "DELETE on autoconfig", raw: rawReq("DELETE", acPath+"?emailaddress=alice@example.com", ""), want: 405},
		{name: "PUT on Autodiscover", raw: rawReq("PUT", pox, poxBody("alice@example.com")), want: 405},
		{name: "unknown method", raw: rawReq("FOO", "/mobileconfig?emailaddress=alice@example.com", ""), want: 405},
		{name: "CONNECT is no proxy", raw: "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", want: 404},
		{name: "absolute URI is served, not proxied", raw: rawGet("http://evil.example" + acPath + "?emailaddress=alice@example.com"), want: 200, data: "example"},
		{name: "POST to the health check", raw: rawReq("POST", "/healthz", "x"), want: 405},
		{name: "metrics with a hostile query", raw: rawGet("/metrics?x=%0d%0a&format=../../etc/passwd"), want: 200,
			has: []string{"go_goroutines"}, hasNot: []string{"root:"}},
		{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", want: 200},

		// Request framing.
		// RFC 9112 section 6.3: Transfer-Encoding wins over Content-Length,
		// so the body is the empty chunked one (an Autodiscover error),
		// not four octets of it, and the smuggled request is not answered
		// as part of this one.
		{name: "Content-Length and Transfer-Encoding together", raw: "POST " + pox + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			want: 200, has: []string{"<ErrorCode>"}, hasNot: []string{"ok\n"}},
		{name: "negative Content-Length", raw: "POST " + pox + " HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", want: 400},
		{name: "two Host headers", raw: rawGet(acPath, "Host: autoconfig.example.com", "Host: autoconfig.other.org"), want: 400},
		{name: "HTTP/1.0 without Host", raw: "GET " + acPath + " HTTP/1.0\r\n\r\n", want: 400},

		// Repeated parameters: the first value counts, one provider answers.
		{name: "repeated emailaddress", raw: rawGet(acPath + "?emailaddress=alice@example.com&emailaddress=bob@other.org"), want: 200, data: "example"},
		{name: "repeated emailaddress in other case", raw: rawGet(acPath + "?EmailAddress=bob@other.org&emailaddress=alice@example.com"), want: 200, data: "example"},
		{name: "repeated Email for Autodiscover v2", raw: rawGet("/autodiscover/autodiscover.json?Email=bob@other.org&Email=alice@example.com&Protocol=AutodiscoverV1"),
			want: 200, has: []string{"autodiscover.other.org"}, hasNot: []string{"example.com"}},

		// Unknown and look-alike domains: nobody's data.
		{name: "unknown domain, autoconfig", raw: rawGet(acPath + "?emailaddress=alice@unknown.example"), want: 404},
		{name: "unknown domain, autoconfig by Host", raw: rawGet(acPath, "Host: autoconfig.unknown.example"), want: 404},
		{name: "unknown domain, mobileconfig", raw: rawGet("/mobileconfig?emailaddress=alice@unknown.example"), want: 404},
		{name: "unknown domain, Autodiscover POX", raw: rawReq("POST", pox, poxBody("alice@unknown.example")), want: 200, has: []string{"<ErrorCode>"}},
		{name: "unknown domain, Autodiscover v2", raw: rawGet("/autodiscover/autodiscover.json/v1.0/alice@unknown.example?Protocol=AutodiscoverV1"), want: 404},
		{name: "unknown domain, settings page", raw: rawGet("/settings?emailaddress=alice@unknown.example"), want: 404},
		{name: "unknown domain, QR code", raw: rawGet("/settings/qr.png?emailaddress=alice@unknown.example"), want: 404},
		{name: "served domain as a suffix", raw: rawGet(acPath + "?emailaddress=alice@example.com.evil.example"), want: 404},
		{name: "served domain as a prefix", raw: rawGet(acPath + "?emailaddress=alice@evilexample.com"), want: 404},
		{name: "subdomain of a served domain", raw: rawGet(acPath + "?emailaddress=alice@sub.example.com"), want: 404},
		{name: "IDN homograph (Cyrillic a)", raw: rawGet(acPath + "?emailaddress=alice@ex%D0%B0mple.com"), want: 404},
		{name: "IDN homograph in Host", raw: rawGet(acPath, "Host: autoconfig.ex\xd0\xb0mple.com"), want: 400},
		{name: "IDN homograph in Host, punycode", raw: rawGet(acPath, "Host: autoconfig.xn--exmple-4nf.com"), want: 404},
		{name: "full-width letters fold to the real domain", raw: rawGet(acPath + "?emailaddress=alice@%EF%BD%85%EF%BD%98%EF%BD%81%EF%BD%8D%EF%BD%90%EF%BD%8C%EF%BD%85.com"),
			want: 200, data: "example"},
		{name: "POX GET with a foreign Host is no redirect", raw: rawGet(pox, "Host: autodiscover.evil.example"), want: 200, noHeader: []string{"Location"}},

		// DNS: malformed datagrams get FORMERR (or nothing), never a crash.
		{name: "dns: 5 octets", udp: []byte{1, 2, 3, 4, 5}, want: -1},
		{name: "dns: header claims a question it lacks", udp: dnsHeader(7, 0, 1, 0, 0, 0), want: dns.RcodeFormatError},
		{name: "dns: truncated question", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), exampleName[:5]), want: dns.RcodeFormatError},
		{name: "dns: compression pointer to itself", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), []byte{0xc0, 12}, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: compression loop of two pointers", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), []byte{0xc0, 14, 0xc0, 12}, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: compression pointer past the end", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), []byte{0xc0, 200}, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: label of 64 octets", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), []byte{64}, []byte(strings.Repeat("a", 64)), []byte{0}, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: name longer than 255 octets", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0), bytes.Repeat([]byte("\x3f"+strings.Repeat("a", 63)), 5), []byte{0}, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: question count 65535", udp: cat(dnsHeader(7, 0, 0xffff, 0, 0, 0), exampleName, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: additional count 65535", udp: cat(dnsHeader(7, 0, 1, 0, 0, 0xffff), exampleName, typeSOA), want: dns.RcodeFormatError},
		{name: "dns: EDNS version 1", udp: cat(dnsHeader(7, 0, 1, 0, 0, 1), exampleName, typeSOA, rootOPT(1, nil)), want: dns.RcodeBadVers},
		{name: "dns: two OPT records", udp: cat(dnsHeader(7, 0, 1, 0, 0, 2), exampleName, typeSOA, rootOPT(0, nil), rootOPT(0, nil)), want: dns.RcodeFormatError},
		// The server uses no EDNS option, so it does not read them: an option
		// whose length runs past its record is ignored like an unknown one
		// (RFC 6891 section 6.1.2); the record itself is well framed.
		{name: "dns: OPT option longer than its record", udp: cat(dnsHeader(7, 0, 1, 0, 0, 1), exampleName, typeSOA, rootOPT(0, []byte{0, 10, 0, 200, 1, 2})), want: dns.RcodeSuccess},
		{name: "dns: OPT with buffer size 0", udp: cat(dnsHeader(7, 0, 1, 0, 0, 1), []byte("\x06_imaps\x04_tcp"), exampleName, []byte{0, 33, 0, 1}, []byte{0, 0, 41, 0, 0, 0, 0, 0, 0, 0, 0}),
			want: dns.RcodeSuccess, data: "example"},
		// Octets after the counted sections are ignored (as the DNS
		// library does); the answer is a fraction of the datagram.
		{name: "dns: 8 KiB datagram, a query and garbage", udp: cat(query("_imaps._tcp.example.com", dns.TypeSRV, false), bytes.Repeat([]byte{0xc0}, 8<<10)),
			want: dns.RcodeSuccess, data: "example"},
		{name: "dns: a response is not answered", udp: cat(dnsHeader(7, 0x8000, 1, 0, 0, 0), exampleName, typeSOA), want: -1},
		{name: "dns: UPDATE", udp: cat(dnsHeader(7, 5<<11, 1, 0, 0, 0), exampleName, typeSOA), want: dns.RcodeNotImplemented},
		{name: "dns: recursion for a foreign name", udp: query("www.example.org", dns.TypeA, false), want: dns.RcodeRefused},
		{name: "dns: CHAOS version.bind", udp: func() []byte {
			m := new(dns.Msg)
			m.SetQuestion("version.bind.", dns.TypeTXT)
			m.Question[0].Qclass = dns.ClassCHAOS
			b, _ := m.Pack()
			return b
		}(), want: dns.RcodeRefused},
		{name: "dns: AXFR over UDP", udp: query("example.com", dns.TypeAXFR, false), want: dns.RcodeRefused},
		{name: "dns tcp: AXFR", tcp: withLength(query("example.com", dns.TypeAXFR, false)), want: dns.RcodeRefused},
		{name: "dns: SRV of one provider has only its servers", udp: query("_imaps._tcp.other.org", dns.TypeSRV, true), want: dns.RcodeSuccess,
			has: []string{"imap.otherprov.net"}, data: "other"},
		{name: "dns tcp: length beyond the data, then silence", tcp: []byte{0x40, 0x00, 1, 2, 3}, want: -1, within: 3 * time.Second},
		{name: "dns tcp: zero length, then a query", tcp: cat([]byte{0, 0}, withLength(query("_imaps._tcp.example.com", dns.TypeSRV, false))), want: dns.RcodeSuccess, data: "example"},
		{name: "dns tcp: pointer loop", tcp: withLength(cat(dnsHeader(7, 0, 1, 0, 0, 0), []byte{0xc0, 12}, typeSOA)), want: dns.RcodeFormatError},
	}
}

// TestHostileInput sends every case to one running server (HTTP and DNS),
// checks the answer, and checks after each case that the server still
// answers both protocols correctly. At the end no goroutine may be left
// behind by the cases, and no request may have ended in a server error.
func TestHostileInput(t *testing.T) {
	srv := startServer(t)
	checkHealthy(t, srv)
	base := runtime.NumGoroutine()
	httpAddr := srv.Addr().String()
	dnsAddr := srv.DNSAddr().String()
	cases := append(hostileCases(), addressHostileCases()...)
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			within := c.within
			if within == 0 {
				within = 3 * time.Second
			}
			start := time.Now()
			switch {
			case c.udp != nil:
				checkDNS(t, c, dnsExchange(t, srv.DNSAddr(), c.udp, min(within, time.Second)), c.udp)
			case c.tcp != nil:
				checkDNS(t, c, dnsTCP(t, dnsAddr, c.tcp, within), c.tcp)
			default:
				status, hdr, body := httpExchange(t, httpAddr, c, within)
				if status != c.want {
					t.Errorf("status %d, want %d; body %q", status, c.want, trim(body))
				}
				for _, h := range c.noHeader {
					if v := hdr.Get(h); v != "" {
						t.Errorf("header %s: %q in the answer", h, v)
					}
				}
				checkBody(t, c, body)
			}
			if d := time.Since(start); d > within+500*time.Millisecond {
				t.Errorf("took %v, want at most %v", d, within)
			}
			checkHealthy(t, srv)
		})
	}
	// Every connection the cases opened is closed; the server's goroutines
	// for them must be gone too.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before the cases:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	m := testutil.Get(t, srv.URL+"/metrics", "")
	for line := range strings.SplitSeq(string(m.Body), "\n") {
		if strings.HasPrefix(line, "mailautoconf_http_requests_total{") && strings.Contains(line, `outcome="error"`) && !strings.HasSuffix(line, " 0") {
			t.Errorf("server errors recorded: %s", line)
		}
	}
}

func checkBody(t *testing.T, c hostileCase, body []byte) {
	t.Helper()
	for _, s := range c.has {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("answer lacks %q: %q", s, trim(body))
		}
	}
	for _, s := range c.hasNot {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("answer holds %q: %q", s, trim(body))
		}
	}
	if stackTrace.Match(body) {
		t.Errorf("answer holds a stack trace: %q", trim(body))
	}
	if l := leaked(body, c.data); len(l) > 0 {
		t.Errorf("answer holds data of another provider %v: %q", l, trim(body))
	}
	if c.data != "" && len(leaked(body, "")) == 0 && (c.want == 200 || c.want == dns.RcodeSuccess) {
		t.Errorf("answer lacks the data of %s: %q", c.data, trim(body))
	}
}

func trim(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

// httpExchange sends the case on a fresh connection and reads one answer.
// Status 0 means the server closed the connection without answering.
func httpExchange(t *testing.T, addr string, c hostileCase, within time.Duration) (int, http.Header, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(within + time.Second))
	if c.talk != nil {
		go c.talk(conn)
	} else {
		// The server may answer and close before reading everything
		// (e.g. a header that is too large): write in the background.
		go func() { _, _ = io.WriteString(conn, c.raw) }()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within %v", within+time.Second)
		}
		return 0, nil, nil
	}
	defer resp.Body.Close()
	// An answer sent before the whole request was read (431, 413) may
	// be followed by a reset: the body read so far is what counts.
	body, err := io.ReadAll(resp.Body)
	if err != nil && len(c.has) > 0 {
		t.Errorf("reading the body: %v", err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Errorf("server error %d: %q", resp.StatusCode, trim(body))
	}
	return resp.StatusCode, resp.Header, body
}

// dnsTCP sends raw octets to the DNS server over TCP and returns the first
// answer message, nil when the server closes or stays silent.
func dnsTCP(t *testing.T, addr string, data []byte, within time.Duration) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(within))
	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the server kept the connection open for %v", within)
		}
		return nil
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		t.Fatalf("short answer: %v", err)
	}
	return msg
}

// checkDNS checks an answer against the query it answers: same ID, QR set,
// never RA (no recursion offered), the expected rcode.
func checkDNS(t *testing.T, c hostileCase, ans, q []byte) {
	t.Helper()
	if c.want < 0 {
		if ans != nil {
			t.Errorf("answered %x, want no answer", ans)
		}
		return
	}
	if ans == nil {
		t.Fatalf("no answer, want rcode %s", dns.RcodeToString[c.want])
	}
	var m dns.Msg
	if err := m.Unpack(ans); err != nil {
		t.Fatalf("answer does not parse: %v (%x)", err, ans)
	}
	if len(q) >= 2 && c.tcp == nil && m.Id != binary.BigEndian.Uint16(q) {
		t.Errorf("answer ID %d, query ID %d", m.Id, binary.BigEndian.Uint16(q))
	}
	if !m.Response || m.RecursionAvailable {
		t.Errorf("answer flags QR=%v RA=%v", m.Response, m.RecursionAvailable)
	}
	if m.Rcode != c.want {
		t.Errorf("rcode %s, want %s:\n%s", dns.RcodeToString[m.Rcode], dns.RcodeToString[c.want], m.String())
	}
	if c.want != dns.RcodeSuccess && len(m.Answer) > 0 {
		t.Errorf("records in an error answer:\n%s", m.String())
	}
	checkBody(t, c, []byte(m.String()))
}

// TestSlowClientsDoNotStarve: 200 connections stuck in the middle of their
// headers (slow-loris) and 50 that never speak, from five addresses, do not keep ordinary
// clients from being served promptly, and the server cuts every one of
// them off at the header timeout, leaving no goroutine behind.
func TestSlowClientsDoNotStarve(t *testing.T) {
	srv := startServer(t)
	checkHealthy(t, srv)
	base := runtime.NumGoroutine()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 250 {
		// From five addresses, each within its connection cap
		// (limits.max_connections_per_client); the ordinary client
		// below is 127.0.0.1.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%5))}}
		c, err := d.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i < 200 {
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: "); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 20 {
		start := time.Now()
		r := testutil.Get(t, srv.URL+acPath+"?emailaddress=alice@example.com", "")
		if r.StatusCode != 200 || !bytes.Contains(r.Body, []byte("imap.example.com")) {
			t.Fatalf("request %d among slow clients: %d %q", i, r.StatusCode, trim(r.Body))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d among slow clients took %v", i, d)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	buf := make([]byte, 512)
	for i, c := range conns {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("slow connection %d still open after the header timeout", i)
		case err == nil:
			t.Fatalf("slow connection %d got an answer: %q", i, buf[:n])
		}
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	checkHealthy(t, srv)
	end := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		t.Errorf("%d goroutines, %d before the slow clients", n, base)
	}
}
