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
	rawGet("/healthz"),
}

// FuzzHTTP sends whole requests through the router of the real server (in
// process: the HTTP parser of net/http, then every middleware and handler).
// Properties: no server error; nothing that looks like a stack trace; no
// header value that could split the response; well-formed XML and JSON
// where the Content-Type promises it; never the data of both providers in
// one answer, and none at all in a 404.
func FuzzHTTP(f *testing.F) {
	cfg := loadConfig(f)
	cfg.Limits.RatePerSecond = -1
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
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers these itself (400, 431, 505)
		}
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		body := rec.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %q", res.StatusCode, raw, trim(body))
		}
		for _, s := range []string{"goroutine ", "panic", "runtime."} {
			if bytes.Contains(body, []byte(s)) {
				t.Fatalf("answer to %q holds %q: %q", raw, s, trim(body))
			}
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
			if l := leaked(body, ""); len(l) > 0 {
				t.Fatalf("404 for %q holds provider data %v", raw, l)
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
		}
	})
}

// FuzzDNS sends datagrams to the real DNS server over UDP. Properties: a
// query (QR clear, at least a header) always gets an answer that parses,
// carries its ID and opcode, has QR set and RA clear, fits 512 octets
// unless the query had EDNS, and holds only the data of the provider whose
// zone was asked (none outside the zones); a response or a runt gets no
// answer.
func FuzzDNS(f *testing.F) {
	srv := startServer(f)
	addr := srv.DNSAddr().String()
	for _, name := range []string{"_imaps._tcp.example.com", "_submissions._tcp.other.org", "autoconfig.example.net", "www.example.org", "example.com"} {
		for _, qt := range []uint16{dns.TypeSRV, dns.TypeA, dns.TypeANY, dns.TypeSOA} {
			f.Add(query(name, qt, qt == dns.TypeSRV))
		}
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
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(q); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		if len(q) < 12 || q[2]&0x80 != 0 {
			// No answer expected. A probe with another ID follows on
			// the same socket; an answer with the first ID fails.
			probe := query("example.com", dns.TypeSOA, false)
			id := uint16(0x4242)
			if len(q) >= 2 {
				id = binary.BigEndian.Uint16(q) ^ 0xffff
			}
			binary.BigEndian.PutUint16(probe, id)
			if _, err := conn.Write(probe); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no answer to the probe after %x: %v", q, err)
			}
			if binary.BigEndian.Uint16(buf[:n]) != id {
				t.Fatalf("answered %x with %x", q, buf[:n])
			}
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer to %x: %v", q, err)
		}
		ans := buf[:n]
		var m dns.Msg
		if err := m.Unpack(ans); err != nil {
			t.Fatalf("answer %x to %x does not parse: %v", ans, q, err)
		}
		if m.Id != binary.BigEndian.Uint16(q) || !m.Response || m.RecursionAvailable || m.Opcode != int(q[2]>>3&0xf) {
			t.Fatalf("answer header %+v for query %x", m.MsgHdr, q)
		}
		var qm dns.Msg
		edns := qm.Unpack(q) == nil && qm.IsEdns0() != nil
		if len(ans) > 512 && !edns {
			t.Fatalf("%d-octet answer to a query without EDNS: %x", len(ans), q)
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
	})
}
