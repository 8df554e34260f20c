package settings

import (
	"slices"
	"strings"
	"testing"

	"mailautoconf/internal/config"
)

// TestDAV: the services of the configuration reach the model with their
// defaults filled in, and URLFor fills a mailbox's URL the way the server
// knows it (the canonical address, percent-encoded).
func TestDAV(t *testing.T) {
	const file = `
providers:
  - id: mail.example.org
    domains: [example.org]
    aliases: {alias.example: example.org}
    username: "%EMAILLOCALPART%"
    servers:
      - {type: imap, host: imap.example.org}
      - {type: smtp, host: smtp.example.org}
    oauth2: {issuer: login.example.org, scope: mail, auth_url: "https://login.example.org/a", token_url: "https://login.example.org/t"}
    caldav:
      url: HTTPS://DAV.Example.ORG/calendars/%EMAILADDRESS%/
      username: "%EMAILADDRESS%"
    carddav:
      url: https://dav.example.org:8443/card/
      authentication: [OAuth2, http-digest]
    jmap:
      url: https://%EMAILDOMAIN%/.well-known/jmap
  - id: plain.example.net
    domains: [example.net]
    servers:
      - {type: imap, host: imap.example.net}
      - {type: smtp, host: smtp.example.net}
`
	c := New(parse(t, file))
	p := c.Providers[0]
	if !p.HasDAV() || len(p.Services()) != 3 {
		t.Fatalf("services %v", p.Services())
	}
	kinds := []string{}
	for _, s := range p.Services() {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []string{config.ServiceCalDAV, config.ServiceCardDAV, config.ServiceJMAP}) {
		t.Errorf("kinds %v", kinds)
	}
	cases := []struct {
		name    string
		svc     *Service
		host    string
		port    int
		context string
		user    string
		auth    string
	}{
		{"caldav", p.CalDAV, "dav.example.org", 443, "/calendars/", "%EMAILADDRESS%", "http-basic"},
		{"carddav", p.CardDAV, "dav.example.org", 8443, "/card/", "%EMAILLOCALPART%", "OAuth2,http-digest"},
		{"jmap", p.JMAP, "%EMAILDOMAIN%", 443, "/.well-known/jmap", "%EMAILLOCALPART%", "http-basic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.svc
			if s.URL.Host != tc.host || s.URL.Port != tc.port || s.URL.Context != tc.context {
				t.Errorf("url %+v", s.URL)
			}
			if s.Username != tc.user || strings.Join(s.Authentication, ",") != tc.auth {
				t.Errorf("username %q, authentication %q", s.Username, s.Authentication)
			}
		})
	}

	urls := []struct {
		addr string
		svc  *Service
		want string
	}{
		{"alice@example.org", p.CalDAV, "https://dav.example.org/calendars/alice@example.org/"},
		// An alias stands for the canonical mailbox.
		{"alice@alias.example", p.CalDAV, "https://dav.example.org/calendars/alice@example.org/"},
		// A local part cannot change the URL's structure.
		{"a/b?c#d@example.org", p.CalDAV, "https://dav.example.org/calendars/a%2Fb%3Fc%23d@example.org/"},
		{"alice@example.org", p.CardDAV, "https://dav.example.org:8443/card/"},
		{"alice@example.org", p.JMAP, "https://example.org/.well-known/jmap"},
	}
	for _, u := range urls {
		st, err := c.ForAddress(u.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.URLFor(u.svc); got != u.want {
			t.Errorf("%s %s: %q, want %q", u.addr, u.svc.Kind, got, u.want)
		}
	}
	st, err := c.ForHost("autoconfig.example.org", "autoconfig.")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.URLFor(p.CalDAV); got != "https://dav.example.org/calendars/%EMAILADDRESS%/" {
		t.Errorf("without an address: %q", got)
	}

	if q := c.Providers[1]; q.HasDAV() || q.CalDAV != nil || q.CardDAV != nil || q.JMAP != nil || q.Services() != nil {
		t.Errorf("provider without services: %+v", q.DAV)
	}
}
