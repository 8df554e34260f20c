package e2e

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/html"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// plainServers has servers of every security, listed with the plain ones
// first and STARTTLS before implicit TLS, so that the configured order and
// the order of preference differ; POP3 is offered over plain text only.
const plainServers = `
listen:
  dns: 127.0.0.1:0
dns:
  service_addresses: [127.0.0.1]
  rate_limit: {responses_per_second: 0}
providers:
  - id: mail.example.com
    domains: [example.com]
    publish_plain: PUBLISH
    servers:
      - {type: imap, host: imap-old.example.com, port: 143, security: plain}
      - {type: imap, host: imap.example.com, port: 143, security: starttls}
      - {type: imap, host: imap.example.com, port: 993, security: tls}
      - {type: pop3, host: pop.example.com, port: 110, security: plain}
      - {type: smtp, host: smtp-old.example.com, port: 25, security: plain}
      - {type: smtp, host: smtp.example.com, port: 587, security: starttls}
      - {type: smtp, host: smtp.example.com, port: 465, security: tls}
`

// endpoint is a server as a client reads it from an answer.
type endpoint struct {
	Type, Host string
	Port       int
	Security   string // tls, starttls, plain; "starttls|plain" where a format cannot tell
}

func (e endpoint) String() string {
	return e.Type + " " + e.Host + ":" + strconv.Itoa(e.Port) + " " + e.Security
}

// TestEveryClientToldTheSame: with and without publish_plain, every
// protocol tells its clients about the same servers. The protocols that
// list servers (autoconfig, Autodiscover, the settings page) list them in
// configured order; those that pick (an Apple profile) or rank (DNS SRV
// priorities) prefer implicit TLS, then STARTTLS, then plain. Each answer
// is read from the wire as a client reads it.
func TestEveryClientToldTheSame(t *testing.T) {
	var (
		imapPlain = endpoint{"imap", "imap-old.example.com", 143, "plain"}
		imapStart = endpoint{"imap", "imap.example.com", 143, "starttls"}
		imapTLS   = endpoint{"imap", "imap.example.com", 993, "tls"}
		popPlain  = endpoint{"pop3", "pop.example.com", 110, "plain"}
		smtpPlain = endpoint{"smtp", "smtp-old.example.com", 25, "plain"}
		smtpStart = endpoint{"smtp", "smtp.example.com", 587, "starttls"}
		smtpTLS   = endpoint{"smtp", "smtp.example.com", 465, "tls"}
	)
	cases := []struct {
		publish bool
		// listed is what the listing protocols show, in order.
		listed []endpoint
		// ranked is the order of preference per protocol.
		ranked map[string][]endpoint
	}{
		{
			publish: false,
			listed:  []endpoint{imapStart, imapTLS, smtpStart, smtpTLS},
			ranked: map[string][]endpoint{
				"imap": {imapTLS, imapStart},
				"smtp": {smtpTLS, smtpStart},
			},
		},
		{
			publish: true,
			listed:  []endpoint{imapPlain, imapStart, imapTLS, popPlain, smtpPlain, smtpStart, smtpTLS},
			ranked: map[string][]endpoint{
				"imap": {imapTLS, imapStart, imapPlain},
				"pop3": {popPlain},
				"smtp": {smtpTLS, smtpStart, smtpPlain},
			},
		},
	}
	for _, c := range cases {
		t.Run("publish_plain="+strconv.FormatBool(c.publish), func(t *testing.T) {
			cfg, err := config.Parse("plain.yaml", []byte(strings.Replace(plainServers, "PUBLISH", strconv.FormatBool(c.publish), 1)))
			if err != nil {
				t.Fatal(err)
			}
			srv := testutil.Start(t, cfg, server.Options{})
			const addr = "alice@example.com"

			byType := func(list []endpoint, types ...string) []endpoint {
				var out []endpoint
				for _, e := range list {
					if slices.Contains(types, e.Type) {
						out = append(out, e)
					}
				}
				return out
			}
			check := func(what string, got, want []endpoint) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got %v\nwant %v", what, got, want)
				}
			}

			in, out := autoconfigServers(t, srv.URL, addr)
			check("autoconfig incoming", in, byType(c.listed, "imap", "pop3"))
			check("autoconfig outgoing", out, byType(c.listed, "smtp"))
			check("Autodiscover", autodiscoverServers(t, srv.URL, addr), c.listed)
			page := pageServers(t, srv.URL, addr)
			for _, typ := range []string{"imap", "pop3", "smtp"} {
				check("settings page "+typ, byType(page, typ), byType(c.listed, typ))
			}

			for _, proto := range []string{"imap", "pop3"} {
				in, out, ok := profileServers(t, srv.URL, addr, proto)
				want := c.ranked[proto]
				if !ok || len(want) == 0 {
					if ok != (len(want) > 0) {
						t.Errorf("profile for %s: offered %v, want %v", proto, ok, want)
					}
					continue
				}
				check("profile "+proto+" incoming", []endpoint{in}, want[:1])
				check("profile "+proto+" outgoing", []endpoint{out}, c.ranked["smtp"][:1])
			}

			// SRV: incoming by priority across IMAP and POP3 (IMAP is
			// listed first), outgoing by priority.
			dnsAddr := srv.DNSAddr().String()
			check("SRV incoming", srvServers(t, dnsAddr, "_imaps", "_imap", "_pop3s", "_pop3"),
				srvForm(append(slices.Clone(c.ranked["imap"]), c.ranked["pop3"]...)))
			check("SRV outgoing", srvServers(t, dnsAddr, "_submissions", "_submission"), srvForm(c.ranked["smtp"]))

			// PACC: one host per protocol, reached with implicit TLS
			// on its standard port, so the most preferred such server.
			var pacc []endpoint
			for _, typ := range []string{"imap", "pop3", "smtp"} {
				for _, e := range c.ranked[typ] {
					if e.Security == "tls" && e.Port == map[string]int{"imap": 993, "pop3": 995, "smtp": 465}[typ] {
						pacc = append(pacc, e)
						break
					}
				}
			}
			check("PACC", paccServers(t, srv.URL, "example.com"), pacc)
		})
	}
}

// paccServers reads the PACC document of a domain as a PACC client does:
// each protocol's host, with implicit TLS on the protocol's port.
func paccServers(t *testing.T, base, domain string) []endpoint {
	t.Helper()
	r := testutil.Get(t, base+"/.well-known/user-agent-configuration.json", "ua-auto-config."+domain)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("PACC: %d %s", r.StatusCode, r.Body)
	}
	var doc struct {
		Protocols map[string]struct {
			Host string `json:"host"`
		} `json:"protocols"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("PACC: %v\n%s", err, r.Body)
	}
	var out []endpoint
	for _, p := range []struct {
		member, typ string
		port        int
	}{{"imap", "imap", 993}, {"pop3", "pop3", 995}, {"submit", "smtp", 465}} {
		if e, ok := doc.Protocols[p.member]; ok {
			out = append(out, endpoint{p.typ, e.Host, p.port, "tls"})
		}
	}
	return out
}

// srvForm is what SRV records can tell of servers: implicit TLS or not.
func srvForm(list []endpoint) []endpoint {
	out := make([]endpoint, len(list))
	for i, e := range list {
		if e.Security != "tls" {
			e.Security = "starttls|plain"
		}
		out[i] = e
	}
	return out
}

func autoconfigServers(t *testing.T, base, addr string) (in, out []endpoint) {
	t.Helper()
	r := testutil.Get(t, base+"/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(addr), "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("autoconfig: %d %s", r.StatusCode, r.Body)
	}
	type server struct {
		Type       string `xml:"type,attr"`
		Hostname   string `xml:"hostname"`
		Port       int    `xml:"port"`
		SocketType string `xml:"socketType"`
	}
	var doc struct {
		Incoming []server `xml:"emailProvider>incomingServer"`
		Outgoing []server `xml:"emailProvider>outgoingServer"`
	}
	if err := xml.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("autoconfig: %v\n%s", err, r.Body)
	}
	sec := map[string]string{"SSL": "tls", "STARTTLS": "starttls", "plain": "plain"}
	for _, s := range doc.Incoming {
		in = append(in, endpoint{s.Type, s.Hostname, s.Port, sec[s.SocketType]})
	}
	for _, s := range doc.Outgoing {
		out = append(out, endpoint{s.Type, s.Hostname, s.Port, sec[s.SocketType]})
	}
	return in, out
}

func autodiscoverServers(t *testing.T, base, addr string) []endpoint {
	t.Helper()
	body := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + addr + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	req, err := http.NewRequest(http.MethodPost, base+"/autodiscover/autodiscover.xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	r := testutil.Do(t, req)
	var doc struct {
		Protocols []struct {
			Type       string `xml:"Type"`
			Server     string `xml:"Server"`
			Port       int    `xml:"Port"`
			Encryption string `xml:"Encryption"`
		} `xml:"Response>Account>Protocol"`
	}
	if err := xml.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("Autodiscover: %v\n%s", err, r.Body)
	}
	sec := map[string]string{"SSL": "tls", "TLS": "starttls", "None": "plain"}
	var out []endpoint
	for _, p := range doc.Protocols {
		out = append(out, endpoint{strings.ToLower(p.Type), p.Server, p.Port, sec[p.Encryption]})
	}
	return out
}

// pageServers reads the server tables of the settings page, as a person
// reads them: the table's protocol from its id, then host, port and
// security per row.
func pageServers(t *testing.T, base, addr string) []endpoint {
	t.Helper()
	r := testutil.Get(t, base+"/settings?lang=en&emailaddress="+url.QueryEscape(addr), "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("settings page: %d", r.StatusCode)
	}
	root, err := html.Parse(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{"SSL/TLS": "tls", "STARTTLS": "starttls"}
	var out []endpoint
	var walk func(n *html.Node, typ string)
	walk = func(n *html.Node, typ string) {
		if n.Type == html.ElementNode && n.Data == "table" {
			typ = attrOf(n, "data-protocol")
		}
		if n.Type == html.ElementNode && n.Data == "tr" && typ != "" {
			cells := map[string]string{}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && c.Data == "td" {
					cells[attrOf(c, "class")] = strings.TrimSpace(textOf(c))
				}
			}
			if host := cells["host"]; host != "" {
				port, _ := strconv.Atoi(cells["port"])
				s, ok := sec[cells["security"]]
				if !ok {
					s = "plain" // the page spells it out as a warning
				}
				out = append(out, endpoint{typ, strings.Fields(host)[0], port, s})
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, typ)
		}
	}
	walk(root, "")
	return out
}

// profileServers downloads the Apple profile for a protocol; ok is false
// when the service says it offers none (404).
func profileServers(t *testing.T, base, addr, proto string) (in, out endpoint, ok bool) {
	t.Helper()
	r := testutil.Get(t, base+"/mobileconfig?protocol="+proto+"&emailaddress="+url.QueryEscape(addr), "")
	if r.StatusCode == http.StatusNotFound {
		return endpoint{}, endpoint{}, false
	}
	if r.StatusCode != http.StatusOK {
		t.Fatalf("profile: %d %s", r.StatusCode, r.Body)
	}
	var p struct {
		PayloadContent []struct {
			InHost  string `plist:"IncomingMailServerHostName"`
			InPort  int    `plist:"IncomingMailServerPortNumber"`
			InSSL   bool   `plist:"IncomingMailServerUseSSL"`
			OutHost string `plist:"OutgoingMailServerHostName"`
			OutPort int    `plist:"OutgoingMailServerPortNumber"`
			OutSSL  bool   `plist:"OutgoingMailServerUseSSL"`
		}
	}
	if _, err := plist.Unmarshal(r.Body, &p); err != nil || len(p.PayloadContent) != 1 {
		t.Fatalf("profile: %v\n%s", err, r.Body)
	}
	m := p.PayloadContent[0]
	// UseSSL tells encrypted or not; the port tells implicit TLS from
	// STARTTLS as Mail does (the implicit-TLS ports).
	security := func(port int, ssl bool) string {
		switch {
		case !ssl:
			return "plain"
		case port == 993 || port == 995 || port == 465:
			return "tls"
		}
		return "starttls"
	}
	return endpoint{proto, m.InHost, m.InPort, security(m.InPort, m.InSSL)},
		endpoint{"smtp", m.OutHost, m.OutPort, security(m.OutPort, m.OutSSL)}, true
}

// srvServers asks the service's DNS server for the SRV records of the
// labels under example.com and returns their targets by priority.
func srvServers(t *testing.T, dnsAddr string, labels ...string) []endpoint {
	t.Helper()
	type rec struct {
		prio uint16
		e    endpoint
	}
	var recs []rec
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	for _, l := range labels {
		m := new(dns.Msg)
		m.SetQuestion(l+"._tcp.example.com.", dns.TypeSRV)
		resp, _, err := c.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("SRV %s: %v", l, err)
		}
		typ := map[string]string{"_imaps": "imap", "_imap": "imap", "_pop3s": "pop3", "_pop3": "pop3", "_submissions": "smtp", "_submission": "smtp"}[l]
		sec := "starttls|plain"
		if strings.HasSuffix(l, "s") {
			sec = "tls"
		}
		for _, rr := range resp.Answer {
			if s, ok := rr.(*dns.SRV); ok {
				recs = append(recs, rec{s.Priority, endpoint{typ, strings.TrimSuffix(s.Target, "."), int(s.Port), sec}})
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return int(a.prio) - int(b.prio) })
	var out []endpoint
	for _, r := range recs {
		out = append(out, r.e)
	}
	return out
}
