package autoconfig_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

type wantServer struct {
	dir, typ, host, port, socket, user string
}

// demoServers is the demo configuration as a client must see it.
func demoServers(user string) []wantServer {
	return []wantServer{
		{"incomingServer", "imap", "imap.example.com", "993", "SSL", user},
		{"incomingServer", "imap", "imap.example.com", "143", "STARTTLS", user},
		{"incomingServer", "pop3", "pop.example.com", "995", "SSL", user},
		{"incomingServer", "pop3", "pop.example.com", "110", "STARTTLS", user},
		{"outgoingServer", "smtp", "smtp.example.com", "465", "SSL", user},
		{"outgoingServer", "smtp", "smtp.example.com", "587", "STARTTLS", user},
	}
}

func parse(t *testing.T, body []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, body)
	}
	ep := doc.FindElement("/clientConfig/emailProvider")
	if ep == nil {
		t.Fatalf("no clientConfig/emailProvider:\n%s", body)
	}
	return ep
}

func checkServers(t *testing.T, ep *etree.Element, want []wantServer) {
	t.Helper()
	var got []wantServer
	for _, e := range ep.ChildElements() {
		if e.Tag != "incomingServer" && e.Tag != "outgoingServer" {
			continue
		}
		got = append(got, wantServer{e.Tag, e.SelectAttrValue("type", ""),
			e.FindElement("hostname").Text(), e.FindElement("port").Text(),
			e.FindElement("socketType").Text(), e.FindElement("username").Text()})
		if a := e.FindElement("authentication"); a == nil || a.Text() != "password-cleartext" {
			t.Errorf("%s: authentication = %v", e.Tag, a)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d servers, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("server %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDemoEndToEnd(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, domain := range []string{"example.com", "example.net"} {
		for _, path := range []string{"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
			addr := "alice@" + domain
			t.Run(domain+path+"/address", func(t *testing.T) {
				r := testutil.Get(t, srv.URL+path+"?emailaddress="+url.QueryEscape(addr), "")
				if r.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", r.StatusCode, r.Body)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/xml; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.Body)) {
					t.Errorf("Content-Length %q for %d bytes", cl, len(r.Body))
				}
				if len(r.Body) > 3 && string(r.Body[:3]) == "\xef\xbb\xbf" {
					t.Error("body starts with a BOM")
				}
				ep := parse(t, r.Body)
				if id := ep.SelectAttrValue("id", ""); id != "mail.example.com" {
					t.Errorf("id = %q", id)
				}
				if d := ep.FindElements("domain"); len(d) != 1 || d[0].Text() != domain {
					t.Errorf("domains = %v", d)
				}
				checkServers(t, ep, demoServers(addr))
				testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--content-type", r.Header.Get("Content-Type"))
				testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")
			})
			t.Run(domain+path+"/host", func(t *testing.T) {
				r := testutil.Get(t, srv.URL+path, "autoconfig."+domain)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", r.StatusCode, r.Body)
				}
				ep := parse(t, r.Body)
				if d := ep.FindElements("domain"); len(d) != 1 || d[0].Text() != domain {
					t.Errorf("domains = %v", d)
				}
				checkServers(t, ep, demoServers("%EMAILADDRESS%"))
				testutil.Validate(t, "autoconfig.py", r.Body, "config.xml")
				testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")
			})
		}
	}
}

func TestErrors(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	cases := []struct {
		name, query, host string
		status            int
		body              string
	}{
		{"unknown domain", "emailaddress=bob@unknown.org", "", 404, "no mail settings"},
		{"unknown host", "", "autoconfig.unknown.org", 404, "no mail settings"},
		{"CRLF", "emailaddress=a%0D%0Ab@example.com", "", 400, "control character"},
		{"no at", "emailaddress=example.com", "", 400, "no @"},
		{"angle", "emailaddress=%3Ca@example.com%3E", "", 400, "invalid email address"},
		{"quote", "emailaddress=%22a%22@example.com", "", 400, "invalid email address"},
		{"long local", "emailaddress=" + strings.Repeat("a", 65) + "@example.com", "", 400, "64"},
		{"IP host without address", "", "127.0.0.1", 400, "emailaddress"},
		{"empty", "emailaddress=", "", 400, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?"+c.query, c.host)
			if r.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.status, r.Body)
			}
			if !strings.Contains(string(r.Body), c.body) {
				t.Errorf("body %q does not mention %q", r.Body, c.body)
			}
			if strings.Contains(string(r.Body), "example.com") || strings.Contains(string(r.Body), "imap") {
				t.Errorf("error answer leaks settings: %q", r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestNormalisation: what sloppy clients send still finds the settings, and
// the username is the normalised address.
func TestNormalisation(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	cases := []struct{ raw, want string }{
		{"  Alice@EXAMPLE.com ", "Alice@example.com"},
		{"alice+tag@example.com", "alice+tag@example.com"},
		{"alice tag@example.com", "alice+tag@example.com"}, // '+' decoded as a space
		{"a&b@example.net", "a&b@example.net"},
		{"alice@example.com.", "alice@example.com"},
	}
	for _, c := range cases {
		r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(c.raw), "")
		if r.StatusCode != 200 {
			t.Fatalf("%q: status %d %s", c.raw, r.StatusCode, r.Body)
		}
		ep := parse(t, r.Body)
		if u := ep.FindElement("incomingServer/username").Text(); u != c.want {
			t.Errorf("%q: username %q, want %q", c.raw, u, c.want)
		}
		testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")
	}
}

// TestPlainServers: plain servers are left out unless publish_plain asks for
// them, because Thunderbird for Android rejects the whole document.
func TestPlainServers(t *testing.T) {
	yaml := `
providers:
  - id: mail.plain.test
    domains: [plain.test, "*.wild.test"]
    username: "%EMAILLOCALPART%"
    servers:
      - {type: imap, host: imap.plain.test, security: plain}
      - {type: imap, host: imap.plain.test}
      - {type: smtp, host: smtp.plain.test, port: 25, security: plain}
      - {type: smtp, host: smtp.plain.test}
`
	cfg, err := config.Parse("plain.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=bob@plain.test", "")
	ep := parse(t, r.Body)
	if strings.Contains(string(r.Body), "plain<") {
		t.Errorf("plain server published:\n%s", r.Body)
	}
	if n := len(ep.FindElements("incomingServer")); n != 1 {
		t.Errorf("%d incoming servers", n)
	}
	if u := ep.FindElement("incomingServer/username").Text(); u != "bob" {
		t.Errorf("username %q", u)
	}
	testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")

	// A wildcard serves subdomains, with the subdomain as the domain.
	r = testutil.Get(t, srv.URL+"/mail/config-v1.1.xml", "autoconfig.shop.wild.test")
	if r.StatusCode != 200 || parse(t, r.Body).FindElement("domain").Text() != "shop.wild.test" {
		t.Errorf("wildcard: %d %s", r.StatusCode, r.Body)
	}
	if r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@wild.test", ""); r.StatusCode != 404 {
		t.Errorf("wildcard matched its parent: %d", r.StatusCode)
	}

	cfg.Providers[0].PublishPlain = true
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r = testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=bob@plain.test", "")
	if n := len(parse(t, r.Body).FindElements("incomingServer")); n != 2 {
		t.Errorf("publish_plain: %d incoming servers", n)
	}
	testutil.Validate(t, "autoconfig.py", r.Body, "config.xml")
}

// TestAliasDomain: an address at an alias domain gets the provider's
// settings with the canonical mailbox as login name, and the alias as the
// domain asked for.
func TestAliasDomain(t *testing.T) {
	cfg, err := config.Parse("alias.yaml", []byte(`
providers:
  - id: mail.example.com
    domains: [example.com]
    aliases: {example.ch: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com, username: "%EMAILLOCALPART%"}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=anna@example.ch", "")
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.Body)
	}
	ep := parse(t, r.Body)
	if got := ep.FindElement("domain").Text(); got != "example.ch" {
		t.Errorf("domain %q", got)
	}
	if got := ep.FindElement("incomingServer/username").Text(); got != "anna@example.com" {
		t.Errorf("incoming username %q, want the canonical address", got)
	}
	if got := ep.FindElement("outgoingServer/username").Text(); got != "anna" {
		t.Errorf("outgoing username %q", got)
	}
	testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")
}
