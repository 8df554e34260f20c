package autoconfig_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

const davYAML = `
providers:
  - id: mail.example.com
    display_name: Example Mail
    domains: [example.com, "*.kunden.example"]
    aliases: {example.ch: example.com}
    username: "%EMAILLOCALPART%"
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
    oauth2: {issuer: login.example.com, scope: dav, auth_url: "https://login.example.com/a", token_url: "https://login.example.com/t"}
    caldav:
      url: https://DAV.example.com/calendars/%EMAILADDRESS%/
      username: "%EMAILADDRESS%"
      authentication: [OAuth2, http-basic]
    carddav:
      url: https://%EMAILDOMAIN%:8443/dav/%EMAILLOCALPART%/contacts/
    jmap:
      url: https://jmap.example.com/.well-known/jmap
  - id: mail.cal.test
    domains: [cal.test]
    servers:
      - {type: imap, host: imap.cal.test}
      - {type: smtp, host: smtp.cal.test}
    caldav: {url: "https://cal.cal.test/"}
`

// davElement is what a reader takes from an addressBook or calendar element.
type davElement struct {
	tag, typ, user, auth, url string
}

func davElements(t *testing.T, body []byte) []davElement {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		t.Fatalf("not XML: %v\n%s", err, body)
	}
	var out []davElement
	for _, e := range doc.Root().ChildElements() {
		if e.Tag != "addressBook" && e.Tag != "calendar" {
			continue
		}
		var auth []string
		for _, a := range e.SelectElements("authentication") {
			auth = append(auth, a.Text())
		}
		out = append(out, davElement{e.Tag, e.SelectAttrValue("type", ""), e.FindElement("username").Text(),
			strings.Join(auth, ","), e.FindElement("serverURL").Text()})
	}
	return out
}

// TestDAV: a provider with CardDAV and CalDAV gets the deployed
// addressBook and calendar elements with the mailbox's own URLs (the
// canonical mailbox for an alias, the address percent-encoded so that it
// cannot change the URL), placeholders for clients that send no address,
// and no JMAP element; Thunderbird's and Thunderbird for Android's rules
// (the validators' two modes) accept every document.
func TestDAV(t *testing.T) {
	cfg, err := config.Parse("dav.yaml", []byte(davYAML))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	cases := []struct {
		name, addr, host string
		want             []davElement
	}{
		{"address", "alice@example.com", "", []davElement{
			{"addressBook", "carddav", "alice", "http-basic", "https://example.com:8443/dav/alice/contacts/"},
			{"calendar", "caldav", "alice@example.com", "OAuth2,http-basic", "https://dav.example.com/calendars/alice@example.com/"},
		}},
		{"alias", "Anna@example.ch", "", []davElement{
			{"addressBook", "carddav", "Anna", "http-basic", "https://example.com:8443/dav/Anna/contacts/"},
			{"calendar", "caldav", "Anna@example.com", "OAuth2,http-basic", "https://dav.example.com/calendars/Anna@example.com/"},
		}},
		{"wildcard", "bob@shop.kunden.example", "", []davElement{
			{"addressBook", "carddav", "bob", "http-basic", "https://shop.kunden.example:8443/dav/bob/contacts/"},
			{"calendar", "caldav", "bob@shop.kunden.example", "OAuth2,http-basic", "https://dav.example.com/calendars/bob@shop.kunden.example/"},
		}},
		// "/", "?", "#" and "&" are allowed in a local part; in the URL
		// they stay inside one path segment.
		{"hostile local part", "a/b?c#d&e@example.com", "", []davElement{
			{"addressBook", "carddav", "a/b?c#d&e", "http-basic", "https://example.com:8443/dav/a%2Fb%3Fc%23d&e/contacts/"},
			{"calendar", "caldav", "a/b?c#d&e@example.com", "OAuth2,http-basic", "https://dav.example.com/calendars/a%2Fb%3Fc%23d&e@example.com/"},
		}},
		{"no address", "", "autoconfig.example.com", []davElement{
			{"addressBook", "carddav", "%EMAILLOCALPART%", "http-basic", "https://%EMAILDOMAIN%:8443/dav/%EMAILLOCALPART%/contacts/"},
			{"calendar", "caldav", "%EMAILADDRESS%", "OAuth2,http-basic", "https://dav.example.com/calendars/%EMAILADDRESS%/"},
		}},
		{"calendar only", "carol@cal.test", "", []davElement{
			{"calendar", "caldav", "carol@cal.test", "http-basic", "https://cal.cal.test/"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := srv.URL + "/mail/config-v1.1.xml"
			if c.addr != "" {
				u += "?emailaddress=" + url.QueryEscape(c.addr)
			}
			r := testutil.Get(t, u, c.host)
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			got := davElements(t, r.Body)
			if len(got) != len(c.want) {
				t.Fatalf("elements %+v, want %+v\n%s", got, c.want, r.Body)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("element %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
			if strings.Contains(string(r.Body), "jmap") {
				t.Errorf("JMAP in a 1.1 document:\n%s", r.Body)
			}
			ep := parse(t, r.Body)
			if len(ep.SelectElements("incomingServer")) != 1 || len(ep.SelectElements("outgoingServer")) != 1 {
				t.Errorf("mail servers changed:\n%s", r.Body)
			}
			testutil.Validate(t, "autoconfig.py", r.Body, "config.xml")
			testutil.Validate(t, "autoconfig.py", r.Body, "config.xml", "--android")
		})
	}
}
