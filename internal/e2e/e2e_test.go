package e2e

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// twoProviders is the demo provider next to a second, unrelated one. Every
// answer is checked for the other provider's data: a mix-up between
// domains would hand one customer's server names to another's users.
const twoProviders = `
listen:
  http: 127.0.0.1:0
  dns: 127.0.0.1:0
dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1]
  hosts:
    ns1.example.com: [127.0.0.1]
    imap.example.com: [192.0.2.11]
    smtp.example.com: [192.0.2.13]
  # The tests send thousands of datagrams from one address.
  rate_limit: {responses_per_second: 0}
providers:
  - id: mail.example.com
    display_name: Example Mail
    domains: [example.com, example.net]
    username: "%EMAILADDRESS%"
    servers:
      - {type: imap, host: imap.example.com, port: 993, security: tls}
      - {type: pop3, host: pop.example.com, port: 995, security: tls}
      - {type: smtp, host: smtp.example.com, port: 465, security: tls}
  - id: mail.other.org
    display_name: Other Org Mail
    domains: [other.org]
    username: "%EMAILLOCALPART%"
    servers:
      - {type: imap, host: imap.otherprov.net, port: 993, security: tls}
      - {type: smtp, host: smtp.otherprov.net, port: 587, security: starttls}
`

// stackTrace matches what a Go panic or stack dump looks like.
var stackTrace = regexp.MustCompile(`goroutine \d+ \[|panic: |\.go:\d+ \+0x[0-9a-f]+`)

// Provider data as it shows in documents, by provider.
var providerData = map[string][]string{
	"example": {"imap.example.com", "pop.example.com", "smtp.example.com", "Example Mail"},
	"other":   {"imap.otherprov.net", "smtp.otherprov.net", "Other Org Mail"},
}

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("e2e.yaml", []byte(twoProviders))
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	return cfg
}

// startServer runs the real server (HTTP and DNS) with short timeouts, so
// that slow clients are cut off within the test's patience.
func startServer(t testing.TB) *testutil.Running {
	t.Helper()
	return testutil.Start(t, loadConfig(t), server.Options{Timeouts: server.Timeouts{
		ReadHeader: 500 * time.Millisecond,
		Read:       time.Second,
		Write:      2 * time.Second,
		Idle:       time.Second,
		Drain:      3 * time.Second,
	}})
}

// leaked returns the data of providers other than allowed ("" allows
// none) found in body.
func leaked(body []byte, allowed string) []string {
	var found []string
	for p, marks := range providerData {
		if p == allowed {
			continue
		}
		for _, m := range marks {
			if bytes.Contains(bytes.ToLower(body), bytes.ToLower([]byte(m))) {
				found = append(found, m)
			}
		}
	}
	return found
}

// dnsExchange sends a raw datagram and returns the raw answer, nil when
// none came within wait.
func dnsExchange(t testing.TB, addr net.Addr, q []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(q); err != nil {
		t.Fatalf("sending DNS query: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// query packs a well-formed query.
func query(name string, qtype uint16, edns bool) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0x4242
	if edns {
		m.SetEdns0(1232, false)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// checkHealthy fails the test unless the server still answers HTTP and DNS
// correctly.
func checkHealthy(t testing.TB, srv *testutil.Running) {
	t.Helper()
	r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=alice@example.com", "")
	if r.StatusCode != 200 || !bytes.Contains(r.Body, []byte("imap.example.com")) {
		t.Fatalf("server unhealthy after the case: %d %q", r.StatusCode, r.Body)
	}
	ans := dnsExchange(t, srv.DNSAddr(), query("_imaps._tcp.example.com", dns.TypeSRV, false), 2*time.Second)
	var m dns.Msg
	if ans == nil || m.Unpack(ans) != nil || m.Id != 0x4242 || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Fatalf("DNS unhealthy after the case: %v %x", m.String(), ans)
	}
}

// rawGet builds a GET request by hand; extra header lines are added as
// they are (so they may be malformed on purpose).
func rawGet(target string, headers ...string) string {
	return rawReq("GET", target, "", headers...)
}

func rawReq(method, target, body string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	host := true
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			host = false
		}
	}
	if host {
		b.WriteString("Host: 127.0.0.1\r\n")
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(body)
	return b.String()
}
