package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/server"
)

// validRequests are one good request per endpoint, the starting points the
// fuzzer mutates.
var validRequests = []string{
	rawGet(acPath + "?emailaddress=alice@example.com"),
	rawGet("/.well-known/autoconfig"+acPath, "Host: autoconfig.other.org"),
	rawGet("/mobileconfig?emailaddress=bob@other.org&name=Bob&protocol=imap"),
	rawGet("/email.mobileconfig?emailaddress=alice@example.net"),
	rawReq("POST", "/Autodiscover/Autodiscover.xml", poxBody("alice@example.com"), "Content-Type: text/xml"),
	rawGet("/autodiscover/autodiscover.json/v1.0/bob@other.org?Protocol=AutodiscoverV1"),
	rawGet("/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=ActiveSync"),
	rawGet("/settings?emailaddress=alice@example.com", "Accept-Language: de"),
	rawGet("/settings/qr.png?emailaddress=alice@example.com"),
	rawGet("/", "Host: autoconfig.example.com"),
	rawGet("/.well-known/user-agent-configuration.json", "Host: ua-auto-config.example.com"),
	rawReq("HEAD", "/.well-known/user-agent-configuration.json", "", "Host: ua-auto-config.other.org", "If-None-Match: *"),
	rawGet("/healthz"),
}

// FuzzHTTP sends whole requests through the router of the real server (in
// process: the HTTP parser of net/http, then every middleware and handler),
// each twice: from an ordinary client, and from a trusted proxy, whose
// X-Forwarded-* headers are believed. Properties: no server error; nothing
// that looks like a stack trace; no header value that could split the
// response; well-formed XML and JSON where the Content-Type promises it; no
// script in the settings page; never the data of both providers in one
// answer, and no server names in a 404.
func FuzzHTTP(f *testing.F) {
	cfg := loadConfig(f)
	cfg.Limits.RatePerSecond, cfg.Limits.ExpensivePerSecond = -1, -1
	cfg.TrustedProxies = []string{"198.51.100.0/24"}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	for _, r := range validRequests {
		f.Add([]byte(r))
	}
	for _, c := range hostileCases() {
		if c.raw != "" && len(c.raw) <= 64<<10 {
			f.Add([]byte(c.raw))
		}
	}
	f.Add([]byte(rawGet("/settings?emailaddress=alice@example.com", "X-Forwarded-Host: autoconfig.other.org", "X-Forwarded-Proto: https", "X-Forwarded-For: 192.0.2.7")))
	f.Add([]byte(rawGet("/", "X-Forwarded-Host: autoconfig.example.com\"><script>", "Forwarded: for=192.0.2.9;proto=https")))
	f.Add([]byte(rawGet("/.well-known/user-agent-configuration.json", "X-Forwarded-Host: ua-auto-config.other.org", "X-Forwarded-For: 192.0.2.7")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, peer := range []string{"192.0.2.1:1234", "198.51.100.1:1234"} {
			serveFuzz(t, h, raw, peer)
		}
	})
}

// serveFuzz serves one fuzzed request from peer and checks the answer.
func serveFuzz(t *testing.T, h http.Handler, raw []byte, peer string) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return // net/http answers these itself (400, 431, 505)
	}
	req.RemoteAddr = peer
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body := rec.Body.Bytes()
	if res.StatusCode >= 500 {
		t.Fatalf("status %d for %q: %q", res.StatusCode, raw, trim(body))
	}
	if stackTrace.Match(body) {
		t.Fatalf("answer to %q holds a stack trace: %q", raw, trim(body))
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("header %s: %q in the answer to %q", k, v, raw)
			}
		}
	}
	if len(leaked(body, "example")) > 0 && len(leaked(body, "other")) > 0 {
		t.Fatalf("answer to %q holds data of both providers: %q", raw, trim(body))
	}
	if res.StatusCode == http.StatusNotFound {
		// The settings page is branded with the name of the provider
		// whose host it was asked on, also when the address is unknown;
		// server names must not show.
		for _, l := range leaked(body, "") {
			if strings.Contains(l, ".") {
				t.Fatalf("404 for %q holds the server name %s", raw, l)
			}
		}
	}
	if res.StatusCode != http.StatusOK || req.Method == http.MethodHead {
		return
	}
	ct := res.Header.Get("Content-Type")
	switch {
	case strings.Contains(ct, "xml"):
		d := xml.NewDecoder(bytes.NewReader(body))
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("answer to %q is not well-formed XML: %v\n%s", raw, err, body)
			}
		}
	case strings.Contains(ct, "json"):
		if !json.Valid(body) {
			t.Fatalf("answer to %q is not JSON: %q", raw, body)
		}
	case strings.Contains(ct, "html"):
		// The page has no script of its own: any in the answer came
		// from the request.
		lower := bytes.ToLower(body)
		for _, s := range []string{"<script", "javascript:", " onerror=", " onload="} {
			if bytes.Contains(lower, []byte(s)) {
				t.Fatalf("page for %q holds %q: %q", raw, s, trim(body))
			}
		}
	}
}

// FuzzDNS sends every input to the real DNS server twice: as a UDP
// datagram (the wire fast path) and as a message on a TCP connection (the
// library's parser). Properties: a query (QR clear, at least a header)
// always gets an answer that parses, carries its ID and opcode, has QR set
// and RA clear, fits 512 octets over UDP unless the query had EDNS, and
// holds only the data of the provider whose zone was asked (none outside
// the zones); a response or a runt gets no answer. When the query parses,
// both transports agree on the rcode and, unless UDP truncated, on the
// number of answer records.
func FuzzDNS(f *testing.F) {
	srv := startServer(f)
	addr := srv.DNSAddr().String()
	for _, name := range []string{"_imaps._tcp.example.com", "_submissions._tcp.other.org", "autoconfig.example.net", "www.example.org", "example.com"} {
		for _, qt := range []uint16{dns.TypeSRV, dns.TypeA, dns.TypeANY, dns.TypeSOA} {
			f.Add(query(name, qt, qt == dns.TypeSRV))
		}
	}
	for _, name := range []string{"_ua-auto-config.example.com", "_UA-Auto-Config.other.org", "ua-auto-config.example.net"} {
		f.Add(query(name, dns.TypeTXT, false))
		f.Add(query(name, dns.TypeANY, true))
	}
	for _, c := range hostileCases() {
		if c.udp != nil {
			f.Add(c.udp)
		}
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		if len(q) > 4096 {
			return
		}
		answers := len(q) >= 12 && q[2]&0x80 == 0
		udp := udpRoundTrip(t, addr, q, answers)
		tcp := tcpRoundTrip(t, addr, q, answers)
		if !answers {
			return
		}
		mu := checkFuzzAnswer(t, q, udp, true)
		mt := checkFuzzAnswer(t, q, tcp, false)
		var qm dns.Msg
		if qm.Unpack(q) == nil && (mu.Rcode != mt.Rcode || !mu.Truncated && len(mu.Answer) != len(mt.Answer)) {
			t.Fatalf("UDP and TCP answer %x differently:\n%s\n---\n%s", q, mu.String(), mt.String())
		}
	})
}

// probeFor is a well-formed query whose ID differs from q's.
func probeFor(q []byte) []byte {
	p := query("example.com", dns.TypeSOA, false)
	id := uint16(0x4242)
	if len(q) >= 2 {
		id = binary.BigEndian.Uint16(q) ^ 0xffff
	}
	binary.BigEndian.PutUint16(p, id)
	return p
}

// udpRoundTrip sends q and returns its answer. When none is expected, a
// probe follows on the same socket and the first answer must be the
// probe's.
func udpRoundTrip(t *testing.T, addr string, q []byte, answers bool) []byte {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	probe := probeFor(q)
	if !answers {
		if _, err := conn.Write(probe); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer over UDP to %x (or to the probe after it): %v", q, err)
	}
	if !answers {
		if !bytes.Equal(buf[:2], probe[:2]) {
			t.Fatalf("answered %x over UDP with %x", q, buf[:n])
		}
		return nil
	}
	return buf[:n]
}

// tcpRoundTrip sends q and then a probe on one TCP connection; the server
// answers in order, so the first answer is q's, or the probe's when q gets
// none.
func tcpRoundTrip(t *testing.T, addr string, q []byte, answers bool) []byte {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	probe := probeFor(q)
	if _, err := conn.Write(append(withLength(q), withLength(probe)...)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		if !answers {
			return nil // closing on nonsense is fine too
		}
		t.Fatalf("no answer over TCP to %x: %v", q, err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		t.Fatalf("answer over TCP to %x cut: %v", q, err)
	}
	if !answers {
		if len(msg) < 2 || !bytes.Equal(msg[:2], probe[:2]) {
			t.Fatalf("answered %x over TCP with %x", q, msg)
		}
		return nil
	}
	return msg
}

// checkFuzzAnswer checks the properties every answer to q must have.
func checkFuzzAnswer(t *testing.T, q, ans []byte, udp bool) *dns.Msg {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(ans); err != nil {
		t.Fatalf("answer %x to %x (udp %v) does not parse: %v", ans, q, udp, err)
	}
	if m.Id != binary.BigEndian.Uint16(q) || !m.Response {
		t.Fatalf("answer header %+v for query %x (udp %v)", m.MsgHdr, q, udp)
	}
	if !udp && (m.Rcode == dns.RcodeFormatError || m.Rcode == dns.RcodeNotImplemented) {
		// Over TCP, messages the DNS library refuses before they reach
		// the handler (bad counts, unparsable sections, other opcodes)
		// are answered by the library itself: it sets the opcode of a
		// FORMERR to QUERY. Such answers must carry no records and,
		// like every answer, no RA flag.
		if len(m.Answer)+len(m.Ns) > 0 || m.RecursionAvailable {
			t.Fatalf("records in a %s answer to %x:\n%s", dns.RcodeToString[m.Rcode], q, m.String())
		}
		return &m
	}
	if m.RecursionAvailable || m.Opcode != int(q[2]>>3&0xf) {
		t.Fatalf("answer header %+v for query %x (udp %v)", m.MsgHdr, q, udp)
	}
	var qm dns.Msg
	edns := qm.Unpack(q) == nil && qm.IsEdns0() != nil
	if udp && len(ans) > 512 && !edns {
		t.Fatalf("%d-octet UDP answer to a query without EDNS: %x", len(ans), q)
	}
	allowed := ""
	if len(m.Question) == 1 {
		switch name := strings.ToLower(m.Question[0].Name); {
		case dns.IsSubDomain("other.org.", name):
			allowed = "other"
		case dns.IsSubDomain("example.com.", name), dns.IsSubDomain("example.net.", name):
			allowed = "example"
		}
	}
	var text strings.Builder
	for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
		text.WriteString(rr.String() + "\n")
	}
	if l := leaked([]byte(text.String()), allowed); len(l) > 0 {
		t.Fatalf("answer to %x holds data of another provider %v:\n%s", q, l, m.String())
	}
	return &m
}
