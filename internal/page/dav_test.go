package page_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"mailautoconf/internal/config"
	"mailautoconf/internal/page"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

const davPageYAML = `
providers:
  - id: mail.example.org
    display_name: Example
    domains: [example.org]
    aliases: {example.ch: example.org}
    logo_url: https://static.example.org/logo.png
    servers:
      - {type: imap, host: imap.example.org}
      - {type: smtp, host: smtp.example.org}
    caldav:
      url: https://dav.example.org/calendars/%EMAILADDRESS%/
    carddav:
      url: https://dav.example.org:8443/card/%EMAILLOCALPART%/
      username: "%EMAILLOCALPART%"
    jmap:
      url: https://jmap.example.org/.well-known/jmap
  - id: mail.jmap.test
    domains: [jmap.test]
    servers:
      - {type: imap, host: imap.jmap.test}
      - {type: smtp, host: smtp.jmap.test}
    jmap: {url: "https://jmap.jmap.test/session"}
  - id: mail.cal.test
    domains: [cal.test]
    servers:
      - {type: imap, host: imap.cal.test}
      - {type: smtp, host: smtp.cal.test}
    caldav: {url: "https://cal.cal.test/"}
  - id: mail.plain.test
    domains: [plain.test]
    servers:
      - {type: imap, host: imap.plain.test}
      - {type: smtp, host: smtp.plain.test}
`

// davRow is one service as the page lists it.
type davRow struct{ Kind, Name, URL, Login, Copy string }

func (d doc) davRows() []davRow {
	var out []davRow
	for _, tr := range find(d.root, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-service") != "" }) {
		cell := func(c string) *html.Node {
			return find(tr, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, c) })[0]
		}
		code := find(cell("url"), func(n *html.Node) bool { return n.Data == "code" })[0]
		out = append(out, davRow{attr(tr, "data-service"), text(cell("service")), text(code), text(cell("login")), attr(code, "data-copy")})
	}
	return out
}

// TestDAVPage: the page lists a provider's calendar, contacts and JMAP URLs
// for the mailbox (the canonical one for an alias, percent-encoded), with
// the copy script allowed by its hash and by nothing else, and offers the
// profile with calendars and contacts where the profile can carry them.
// The QR code follows the choice. Providers without services keep their
// page (internal/e2e's golden answers hold it byte for byte).
func TestDAVPage(t *testing.T) {
	cfg, err := config.Parse("dav.yaml", []byte(davPageYAML))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	cases := []struct {
		name, addr, lang string
		rows             []davRow
		choice           bool
	}{
		{"all three", "alice@example.org", "en", []davRow{
			{"caldav", "Calendars (CalDAV)", "https://dav.example.org/calendars/alice@example.org/", "alice@example.org", "Copy"},
			{"carddav", "Contacts (CardDAV)", "https://dav.example.org:8443/card/alice/", "alice", "Copy"},
			{"jmap", "Mail, calendars and contacts (JMAP)", "https://jmap.example.org/.well-known/jmap", "alice@example.org", "Copy"},
		}, true},
		{"alias, German", "Bob@example.ch", "de", []davRow{
			{"caldav", "Kalender (CalDAV)", "https://dav.example.org/calendars/Bob@example.org/", "Bob@example.org", "Kopieren"},
			{"carddav", "Kontakte (CardDAV)", "https://dav.example.org:8443/card/Bob/", "Bob", "Kopieren"},
			{"jmap", "E-Mail, Kalender und Kontakte (JMAP)", "https://jmap.example.org/.well-known/jmap", "Bob@example.org", "Kopieren"},
		}, true},
		{"hostile local part", "a/b?c#d&e@example.org", "en", []davRow{
			{"caldav", "Calendars (CalDAV)", "https://dav.example.org/calendars/a%2Fb%3Fc%23d&e@example.org/", "a/b?c#d&e@example.org", "Copy"},
			{"carddav", "Contacts (CardDAV)", "https://dav.example.org:8443/card/a%2Fb%3Fc%23d&e/", "a/b?c#d&e", "Copy"},
			{"jmap", "Mail, calendars and contacts (JMAP)", "https://jmap.example.org/.well-known/jmap", "a/b?c#d&e@example.org", "Copy"},
		}, true},
		// JMAP only: URLs and script, but Apple's profile has no JMAP.
		{"JMAP only", "carol@jmap.test", "en", []davRow{
			{"jmap", "Mail, calendars and contacts (JMAP)", "https://jmap.jmap.test/session", "carol@jmap.test", "Copy"},
		}, false},
		{"calendar only", "dave@cal.test", "en", []davRow{
			{"caldav", "Calendars (CalDAV)", "https://cal.cal.test/", "dave@cal.test", "Copy"},
		}, true},
		{"no services", "erin@plain.test", "en", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, srv.URL+"/settings?lang="+c.lang+"&emailaddress="+url.QueryEscape(c.addr))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			d := parse(t, r.Body)
			rows := d.davRows()
			if len(rows) != len(c.rows) {
				t.Fatalf("rows %+v, want %+v", rows, c.rows)
			}
			for i := range rows {
				if rows[i] != c.rows[i] {
					t.Errorf("row %d = %+v, want %+v", i, rows[i], c.rows[i])
				}
			}

			// Scripts: exactly the copy script where there are URLs,
			// allowed by its hash; no inline handler anywhere.
			policy := r.Header.Get("Content-Security-Policy")
			scripts := find(d.root, func(n *html.Node) bool { return n.Data == "script" })
			for _, n := range find(d.root, func(*html.Node) bool { return true }) {
				for _, a := range n.Attr {
					if strings.HasPrefix(strings.ToLower(a.Key), "on") {
						t.Errorf("inline handler %s on <%s>", a.Key, n.Data)
					}
				}
			}
			if c.rows == nil {
				if len(scripts) != 0 || strings.Contains(policy, "script-src") {
					t.Errorf("a page without services runs scripts: %d, policy %q", len(scripts), policy)
				}
			} else {
				if len(scripts) != 1 || attr(scripts[0], "src") != "" {
					t.Fatalf("%d script elements", len(scripts))
				}
				sum := sha256.Sum256([]byte(scripts[0].FirstChild.Data))
				want := "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; style-src 'self'; "
				if !strings.HasPrefix(policy, want) {
					t.Errorf("policy %q, want it to start with %q", policy, want)
				}
				if strings.Contains(policy, "unsafe") || strings.Count(policy, "script-src") != 1 {
					t.Errorf("policy %q", policy)
				}
			}

			// The profile's choice.
			form := byID(d, "profile-choice")
			if (form != nil) != c.choice {
				t.Fatalf("choice offered: %v, want %v", form != nil, c.choice)
			}
			qr := byID(d, "qr")
			if !c.choice {
				if a := byID(d, "profile"); a == nil || a.Data != "a" || attr(qr, "data-dav-src") != "" {
					t.Errorf("without a choice the profile link is the mail profile's")
				}
				return
			}
			if attr(form, "action") != page.ProfilePath || attr(form, "method") != "get" {
				t.Errorf("form %s %s", attr(form, "method"), attr(form, "action"))
			}
			inputs := find(form, func(n *html.Node) bool { return n.Data == "input" })
			var got []string
			for _, in := range inputs {
				v := attr(in, "type") + ":" + attr(in, "name") + "=" + attr(in, "value")
				if hasAttr(in, "checked") {
					v += "*"
				}
				got = append(got, v)
			}
			want := []string{"hidden:emailaddress=" + c.addr, "radio:dav=0*", "radio:dav=1"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("form inputs %q, want %q", got, want)
			}

			// The QR code for each choice.
			for src, q := range map[string]string{attr(qr, "src"): "", attr(qr, "data-dav-src"): "dav=1&"} {
				png := testutil.Get(t, srv.URL+src, "")
				wantURL := srv.URL + page.ProfilePath + "?" + q + "emailaddress=" + url.QueryEscape(c.addr)
				if got := decodeQR(t, png.Body); got != wantURL {
					t.Errorf("QR code %s holds %q, want %q", src, got, wantURL)
				}
			}
		})
	}

	// dav=1 on the QR code of a provider whose profile cannot carry
	// calendars: the mail profile's link.
	png := testutil.Get(t, srv.URL+page.QRPath+"?dav=1&emailaddress=erin%40plain.test", "")
	if got, want := decodeQR(t, png.Body), srv.URL+page.ProfilePath+"?emailaddress=erin%40plain.test"; got != want {
		t.Errorf("QR code %q, want %q", got, want)
	}
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
