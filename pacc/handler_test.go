package pacc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
	"mailautoconf/pacc"
)

// endpointYAML has a provider with mail, calendars, contacts and JMAP, one
// with mail only, and one whose servers PACC cannot describe (STARTTLS).
const endpointYAML = `dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1]
  hosts: {dav.example.com: [192.0.2.80], ns1.example.com: [127.0.0.1]}
providers:
  - id: mail.example.com
    display_name: Example Mail
    short_name: Example
    domains: [example.com, example.net, "*.kunden.example"]
    aliases: {example.org: example.com}
    documentation_url: https://www.example.com/help/mail
    caldav: {url: "https://dav.example.com/calendars/%EMAILADDRESS%/"}
    carddav: {url: "https://dav.example.com/addressbooks/%EMAILADDRESS%/"}
    jmap: {url: "https://jmap.example.com/.well-known/jmap"}
    servers:
      - {type: imap, host: imap.example.com, security: tls}
      - {type: imap, host: imap.example.com, port: 143, security: starttls}
      - {type: smtp, host: smtp.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, port: 587, security: starttls}
  - id: mail.other.example
    display_name: Other Mail
    domains: [other.example]
    servers:
      - {type: imap, host: imap.other.example, security: tls}
      - {type: smtp, host: smtp.other.example, security: tls}
  - id: mail.starttls.example
    domains: [starttls.example]
    servers:
      - {type: imap, host: imap.starttls.example, security: starttls}
      - {type: smtp, host: smtp.starttls.example, security: starttls}
`

const (
	fullDoc = `{"protocols":{"jmap":{"url":"https://jmap.example.com/.well-known/jmap"},"imap":{"host":"imap.example.com"},` +
		`"submit":{"host":"smtp.example.com"},"caldav":{"url":"https://dav.example.com/calendars/"},"carddav":{"url":"https://dav.example.com/addressbooks/"}},` +
		`"authentication":{"password":true},"info":{"provider":{"name":"Example Mail","shortName":"Example"},` +
		`"help":{"documentation":"https://www.example.com/help/mail"}}}` + "\n"
	mailDoc = `{"protocols":{"imap":{"host":"imap.other.example"},"submit":{"host":"smtp.other.example"}},` +
		`"authentication":{"password":true},"info":{"provider":{"name":"Other Mail","shortName":"Other Mail"}}}` + "\n"
)

func startEndpoint(t *testing.T, yaml string) *testutil.Running {
	t.Helper()
	cfg, err := config.Parse("config.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Start(t, cfg, server.Options{DNSAddr: "127.0.0.1:0"})
}

// txtOverDNS asks the built-in server for the _ua-auto-config TXT records
// of domain, over UDP and TCP (which must agree), and returns their values.
func txtOverDNS(t *testing.T, srv *testutil.Running, domain string) []string {
	t.Helper()
	var values [2][]string
	for i, netw := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("_ua-auto-config."+domain+".", dns.TypeTXT)
		m.RecursionDesired = false
		r, _, err := (&dns.Client{Net: netw, Timeout: 3 * time.Second}).Exchange(m, srv.DNSAddr().String())
		if err != nil {
			t.Fatalf("%s: %v", netw, err)
		}
		if r.Rcode == dns.RcodeSuccess && !r.Authoritative {
			t.Errorf("%s %s: not authoritative", netw, domain)
		}
		for _, rr := range r.Answer {
			values[i] = append(values[i], strings.Join(rr.(*dns.TXT).Txt, ""))
		}
	}
	if fmt.Sprint(values[0]) != fmt.Sprint(values[1]) {
		t.Errorf("UDP and TCP differ: %q, %q", values[0], values[1])
	}
	return values[0]
}

// digTXT is what dig prints for the record, joined as a client joins
// character-strings.
func digTXT(t *testing.T, dig string, srv *testutil.Running, domain string) string {
	t.Helper()
	host, port, _ := strings.Cut(srv.DNSAddr().String(), ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+norecurse", "_ua-auto-config."+domain, "TXT").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	var parts []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\" \"") {
		parts = append(parts, strings.Trim(f, "\""))
	}
	return strings.Join(parts, "")
}

// TestEndpoint fetches the document the way a PACC client does, from
// ua-auto-config.<domain>, and checks the exact bytes, the headers, and
// that the digest of those bytes is what the built-in DNS server publishes
// at _ua-auto-config.<domain> (dig, and the validator asking the server
// itself).
func TestEndpoint(t *testing.T) {
	dig := testutil.Tool(t, "dig", "bind9-dnsutils")
	srv := startEndpoint(t, endpointYAML)
	for _, c := range []struct {
		domain, want string
		dns          bool // the domain has DNS records (not a wildcard)
		expect       []string
	}{
		{"example.com", fullDoc, true, []string{"--expect-imap", "imap.example.com", "--expect-smtp", "smtp.example.com"}},
		{"example.net", fullDoc, true, nil},
		{"example.org", fullDoc, true, nil}, // an alias domain
		{"shop.kunden.example", fullDoc, false, nil},
		{"other.example", mailDoc, true, []string{"--expect-imap", "imap.other.example", "--expect-smtp", "smtp.other.example"}},
	} {
		t.Run(c.domain, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+pacc.Path, pacc.HostPrefix+c.domain)
			if r.StatusCode != http.StatusOK || string(r.Body) != c.want {
				t.Fatalf("status %d, body:\n%s\nwant:\n%s", r.StatusCode, r.Body, c.want)
			}
			sum := sha256.Sum256(r.Body)
			txt := "v=UAAC1; a=sha256; d=" + base64.StdEncoding.EncodeToString(sum[:])
			etag := `"` + base64.StdEncoding.EncodeToString(sum[:]) + `"`
			for k, v := range map[string]string{
				"Content-Type": "application/json", "Content-Length": fmt.Sprint(len(c.want)),
				"Cache-Control": "no-cache", "ETag": etag,
			} {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// HEAD: the same headers, no body.
			req, _ := http.NewRequest(http.MethodHead, srv.URL+pacc.Path, nil)
			req.Host = pacc.HostPrefix + strings.ToUpper(c.domain) + ":443"
			h := testutil.Do(t, req)
			if h.StatusCode != http.StatusOK || len(h.Body) != 0 || h.Header.Get("Content-Length") != fmt.Sprint(len(c.want)) || h.Header.Get("ETag") != etag {
				t.Errorf("HEAD: %d, %d bytes, %v", h.StatusCode, len(h.Body), h.Header)
			}
			// A cache revalidating its copy.
			req, _ = http.NewRequest(http.MethodGet, srv.URL+pacc.Path, nil)
			req.Host = pacc.HostPrefix + c.domain
			req.Header.Set("If-None-Match", `"other", W/`+etag)
			if nm := testutil.Do(t, req); nm.StatusCode != http.StatusNotModified || len(nm.Body) != 0 || nm.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match: %d, %q", nm.StatusCode, nm.Body)
			}
			if !c.dns {
				if got := txtOverDNS(t, srv, c.domain); len(got) != 0 {
					t.Errorf("a domain under a wildcard has TXT records: %q", got)
				}
				testutil.Validate(t, "pacc.py", r.Body, "user-agent-configuration.json",
					append([]string{"--content-type", r.Header.Get("Content-Type"), "--txt", txt}, c.expect...)...)
				return
			}
			if got := txtOverDNS(t, srv, c.domain); len(got) != 1 || got[0] != txt {
				t.Errorf("DNS has %q, the body's digest gives %q", got, txt)
			}
			if got := digTXT(t, dig, srv, c.domain); got != txt {
				t.Errorf("dig prints %q, the body's digest gives %q", got, txt)
			}
			host, port, _ := strings.Cut(srv.DNSAddr().String(), ":")
			testutil.Validate(t, "pacc.py", r.Body, "user-agent-configuration.json",
				append([]string{"--content-type", r.Header.Get("Content-Type"), "--resolver", host + ":" + port, "--domain", c.domain}, c.expect...)...)
		})
	}
}

// TestEndpointNotFound: every host that is not ua-auto-config.<a served
// domain with a document> gets the not-found answer of the other endpoints
// for an unknown domain, with nothing of any served domain in it; and the
// DNS server publishes no record for a provider without a document.
func TestEndpointNotFound(t *testing.T) {
	srv := startEndpoint(t, endpointYAML)
	want := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=alice@unknown.example", "")
	if want.StatusCode != http.StatusNotFound {
		t.Fatalf("autoconfig for an unknown domain: %d", want.StatusCode)
	}
	for _, host := range []string{
		"ua-auto-config.unknown.example",
		"ua-auto-config.starttls.example", // served, but no server PACC can describe
		"ua-auto-config.kunden.example",   // the wildcard's parent is not served
		"example.com",                     // the domain itself
		"autoconfig.example.com",
		"ua-auto-config.",
		"ua-auto-config.ua-auto-config.example.com",
		"_ua-auto-config.example.com",
		strings.TrimPrefix(srv.URL, "http://"),
		"ua-auto-config.exa mple.com",
		"ua-auto-config.xn--zz.kunden.example", // not Punycode, under the wildcard
		"ua-auto-config.xn--a-s10i.kunden.example",
	} {
		r := testutil.Get(t, srv.URL+pacc.Path+"?emailaddress=alice@example.com", host)
		if r.StatusCode != want.StatusCode || string(r.Body) != string(want.Body) || r.Header.Get("ETag") != "" {
			t.Errorf("Host %q: %d %q, want %d %q", host, r.StatusCode, r.Body, want.StatusCode, want.Body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+pacc.Path, strings.NewReader("{}"))
	req.Host = "ua-auto-config.example.com"
	if r := testutil.Do(t, req); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
	if got := txtOverDNS(t, srv, "starttls.example"); len(got) != 0 {
		t.Errorf("a provider without a document has TXT records: %q", got)
	}
}

// TestEndpointReload: after a reload that changes the document, the HTTP
// body and the DNS record change together: the digest of what is served is
// always what DNS says.
func TestEndpointReload(t *testing.T) {
	srv := startEndpoint(t, endpointYAML)
	check := func(want string) {
		t.Helper()
		r := testutil.Get(t, srv.URL+pacc.Path, "ua-auto-config.other.example")
		if string(r.Body) != want {
			t.Fatalf("body %q, want %q", r.Body, want)
		}
		sum := sha256.Sum256(r.Body)
		if got := txtOverDNS(t, srv, "other.example"); len(got) != 1 || got[0] != "v=UAAC1; a=sha256; d="+base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("DNS %q does not vouch for %q", got, r.Body)
		}
	}
	check(mailDoc)
	cfg, err := config.Parse("config.yaml", []byte(strings.Replace(endpointYAML, "display_name: Other Mail", "display_name: Other Mail Renamed", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	check(strings.ReplaceAll(mailDoc, "Other Mail", "Other Mail Renamed"))
}
