package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

var updateNoDAV = flag.Bool("update-nodav", false, "rewrite testdata/nodav from the running code")

// noDAVConfig has providers without calendars, contacts or JMAP, of every
// shape the renderers treat differently (aliases, a wildcard, POP3 only,
// STARTTLS, plain servers published, OAuth2, a logo and documentation,
// an Autodiscover target), and one provider with all three services, whose
// presence must change nothing for the others. %s is the signing section.
const noDAVConfig = `
listen:
  http: 127.0.0.1:0
%sproviders:
  - id: mail.example.com
    display_name: Example Mail
    short_name: Example
    domains: [example.com, "*.kunden.example"]
    aliases: {alias.example: example.com}
    username: "%%EMAILADDRESS%%"
    documentation_url: https://help.example.com/mail
    logo_url: https://static.example.com/logo.png
    servers:
      - {type: imap, host: imap.example.com, port: 993, security: tls}
      - {type: imap, host: imap.example.com, port: 143, security: starttls}
      - {type: pop3, host: pop.example.com, port: 995, security: tls}
      - {type: smtp, host: smtp.example.com, port: 465, security: tls}
      - {type: smtp, host: smtp.example.com, port: 587, security: starttls}
  - id: mail.plain.test
    domains: [plain.test]
    publish_plain: true
    username: "%%EMAILLOCALPART%%"
    dns: {autodiscover_target: autodiscover.hoster.test}
    servers:
      - {type: pop3, host: pop.plain.test, port: 110, security: plain}
      - {type: pop3, host: pop.plain.test, port: 995, security: tls, authentication: [password-encrypted]}
      - {type: smtp, host: smtp.plain.test, port: 25, security: plain, authentication: [none]}
  - id: mail.oauth.test
    display_name: OAuth & <Co>
    domains: [oauth.test]
    oauth2: {issuer: login.oauth.test, scope: "mail offline", auth_url: "https://login.oauth.test/auth", token_url: "https://login.oauth.test/token"}
    servers:
      - {type: imap, host: imap.oauth.test, authentication: [OAuth2, password-cleartext]}
      - {type: smtp, host: smtp.oauth.test, authentication: [OAuth2, password-cleartext]}
  - id: mail.dav.test
    display_name: DAV Mail
    domains: [dav.test]
    servers:
      - {type: imap, host: imap.dav.test}
      - {type: smtp, host: smtp.dav.test}
    caldav: {url: "https://dav.dav.test/calendars/%%EMAILADDRESS%%/"}
    carddav: {url: "https://dav.dav.test/addressbooks/%%EMAILADDRESS%%/"}
    jmap: {url: "https://jmap.dav.test/.well-known/jmap"}
`

// noDAVRequest is one request whose answer must not change.
type noDAVRequest struct {
	name, path, host, ua, lang string
}

// noDAVRequests are the answers of autoconfig, the profile and the page
// for providers without services, kept in testdata/nodav as they were
// before calendars, contacts and JMAP were published. The profile is asked
// for with the calendar choice too: a provider without them answers it
// with the mail profile.
var noDAVRequests = []noDAVRequest{
	{name: "autoconfig-address", path: "/mail/config-v1.1.xml?emailaddress=alice@example.com"},
	{name: "autoconfig-alias", path: "/mail/config-v1.1.xml?emailaddress=Bob.Smith@alias.example"},
	{name: "autoconfig-wildcard", path: "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=c%26d@shop.kunden.example"},
	{name: "autoconfig-host", path: "/mail/config-v1.1.xml", host: "autoconfig.example.com"},
	{name: "autoconfig-plain", path: "/mail/config-v1.1.xml?emailaddress=carol@plain.test"},
	{name: "autoconfig-plain-host", path: "/mail/config-v1.1.xml", host: "autoconfig.plain.test"},
	{name: "autoconfig-oauth", path: "/mail/config-v1.1.xml?emailaddress=dave@oauth.test"},
	{name: "profile-imap", path: "/mobileconfig?emailaddress=alice@example.com"},
	{name: "profile-pop3-named", path: "/email.mobileconfig?emailaddress=alice@example.com&protocol=pop3&name=Alice%20%3CA%3E"},
	{name: "profile-alias", path: "/mobileconfig?emailaddress=Bob.Smith@alias.example"},
	{name: "profile-plain", path: "/mobileconfig?emailaddress=carol@plain.test"},
	{name: "profile-oauth", path: "/mobileconfig?emailaddress=dave@oauth.test"},
	{name: "profile-imap-dav", path: "/mobileconfig?emailaddress=alice@example.com&dav=1"},
	{name: "page-form", path: "/", host: "autoconfig.example.com", lang: "en"},
	{name: "page-en", path: "/settings?emailaddress=alice@example.com", lang: "en"},
	{name: "page-de-iphone", path: "/settings?emailaddress=Bob.Smith@alias.example&lang=de", ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"},
	{name: "page-plain-android", path: "/settings?emailaddress=carol@plain.test", lang: "en", ua: "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"},
	{name: "page-oauth-windows", path: "/settings?emailaddress=dave@oauth.test", lang: "en", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"},
}

// noDAVHeaders are the headers kept with each answer.
var noDAVHeaders = []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "Cache-Control", "Vary"}

// TestNoDAVUnchanged: for providers without calendars, contacts and JMAP,
// autoconfig, the profile (unsigned, and the content of the signed one)
// and the settings page are byte for byte what they were before those
// services were published (testdata/nodav, written by the code of that
// time; -update-nodav rewrites them from the running code).
func TestNoDAVUnchanged(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "signer", time.Time{}, "autoconfig.example.com")
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			signing := ""
			if signed {
				signing = fmt.Sprintf("signing: {certificate: %q, key: %q}\n", cert, key)
			}
			cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), fmt.Appendf(nil, noDAVConfig, signing))
			if err != nil {
				t.Fatal(err)
			}
			srv := testutil.Start(t, cfg, server.Options{})
			for _, rq := range noDAVRequests {
				if signed && !strings.HasPrefix(rq.name, "profile-") {
					continue
				}
				t.Run(rq.name, func(t *testing.T) {
					req, err := http.NewRequest(http.MethodGet, srv.URL+rq.path, nil)
					if err != nil {
						t.Fatal(err)
					}
					if rq.host != "" {
						req.Host = rq.host
					}
					if rq.ua != "" {
						req.Header.Set("User-Agent", rq.ua)
					}
					if rq.lang != "" {
						req.Header.Set("Accept-Language", rq.lang)
					}
					resp := testutil.Do(t, req)
					body := resp.Body
					if signed {
						p7, err := pkcs7.Parse(body)
						if err != nil {
							t.Fatalf("not a signed profile: %v", err)
						}
						if err := p7.Verify(); err != nil {
							t.Fatalf("signature: %v", err)
						}
						body = p7.Content
					}
					got := noDAVAnswer(resp, body)
					file := filepath.Join("testdata", "nodav", rq.name+".golden")
					if *updateNoDAV && !signed {
						if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(file, got, 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(file)
					if err != nil {
						t.Fatalf("%v (run with -update-nodav once)", err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s %s changed:\n--- got ---\n%s\n--- want ---\n%s", rq.path, rq.host, got, want)
					}
				})
			}
		})
	}
}

// noDAVAnswer is the status, the kept headers and the body of an answer.
func noDAVAnswer(resp testutil.Response, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", resp.StatusCode)
	for _, h := range noDAVHeaders {
		for _, v := range resp.Header.Values(h) {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return b.Bytes()
}
