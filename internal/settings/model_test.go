package settings

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"mailautoconf/internal/config"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func names(list []Server) string {
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s:%s:%d:%s:%s:%s", s.Type, s.Host, s.Port, s.Security, s.Username, strings.Join(s.Authentication, ",")))
	}
	return strings.Join(out, " ")
}

// TestModel: the provider as clients are told about it, with the defaults
// of a minimal file filled in and publish_plain applied once.
func TestModel(t *testing.T) {
	const file = `
providers:
  - id: Mail.Example.ORG.
    domains: [Example.ORG, "*.Kunden.Example"]
    publish_plain: PUBLISH
    username: "%EMAILLOCALPART%"
    servers:
      - {type: IMAP, host: Old.Example.ORG., security: plain}
      - {type: imap, host: imap.example.org, port: 143}
      - {type: pop3, host: pop.example.org, port: 995}
      - {type: imap, host: imap2.example.org, security: SSL, authentication: [OAuth2, password-cleartext]}
      - {type: smtp, host: smtp.example.org, security: starttls, username: "%EMAILADDRESS%"}
      - {type: smtp, host: smtp.example.org}
    oauth2: {issuer: login.example.org, scope: mail, auth_url: "https://login.example.org/a", token_url: "https://login.example.org/t"}
`
	cases := []struct {
		publish                  string
		servers, incoming, imap  string
		outgoing, smtp, prefPOP3 string
	}{
		{
			publish:  "false",
			servers:  "imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext",
			incoming: "imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext",
			imap:     "imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext",
			outgoing: "smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext",
			smtp:     "smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext",
			prefPOP3: "pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext",
		},
		{
			publish:  "true",
			servers:  "imap:old.example.org:143:plain:%EMAILLOCALPART%:password-cleartext imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext",
			incoming: "imap:old.example.org:143:plain:%EMAILLOCALPART%:password-cleartext imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext",
			imap:     "imap:imap2.example.org:993:tls:%EMAILLOCALPART%:OAuth2,password-cleartext imap:imap.example.org:143:starttls:%EMAILLOCALPART%:password-cleartext imap:old.example.org:143:plain:%EMAILLOCALPART%:password-cleartext",
			outgoing: "smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext",
			smtp:     "smtp:smtp.example.org:465:tls:%EMAILLOCALPART%:password-cleartext smtp:smtp.example.org:587:starttls:%EMAILADDRESS%:password-cleartext",
			prefPOP3: "pop3:pop.example.org:995:tls:%EMAILLOCALPART%:password-cleartext",
		},
	}
	for _, c := range cases {
		t.Run("publish_plain="+c.publish, func(t *testing.T) {
			cfg := parse(t, strings.Replace(file, "PUBLISH", c.publish, 1))
			p := New(cfg).Providers[0]
			if p.ID != "mail.example.org" || p.DisplayName != "mail.example.org" || p.ShortName != "mail.example.org" {
				t.Errorf("names %q %q %q", p.ID, p.DisplayName, p.ShortName)
			}
			if !slices.Equal(p.Domains, []string{"example.org", "*.kunden.example"}) {
				t.Errorf("domains %q", p.Domains)
			}
			for _, l := range []struct{ what, got, want string }{
				{"Servers", names(p.Servers), c.servers},
				{"Incoming", names(p.Incoming()), c.incoming},
				{"Outgoing", names(p.Outgoing()), c.outgoing},
				{"Preferred(imap)", names(p.Preferred(config.TypeIMAP)), c.imap},
				{"Preferred(pop3)", names(p.Preferred(config.TypePOP3)), c.prefPOP3},
				{"Preferred(smtp)", names(p.Preferred(config.TypeSMTP)), c.smtp},
			} {
				if l.got != l.want {
					t.Errorf("%s:\n got %s\nwant %s", l.what, l.got, l.want)
				}
			}
			// The configuration keeps what the file says.
			if s := cfg.Providers[0].Servers[0]; s.Type != "IMAP" || s.Port != 0 || s.Host != "Old.Example.ORG." {
				t.Errorf("the configuration was changed: %+v", s)
			}
		})
	}
}

func TestSuffixes(t *testing.T) {
	cases := []struct {
		name string
		want []string
	}{
		{"a.example.com", []string{"0 a.example.com", "2 example.com", "10 com"}},
		{"a.example.com.", []string{"0 a.example.com.", "2 example.com.", "10 com."}},
		{"com", []string{"0 com"}},
		{"", nil},
	}
	for _, c := range cases {
		var got, gotBytes []string
		for off, s := range Suffixes(c.name) {
			got = append(got, fmt.Sprint(off, " ", s))
		}
		for off, s := range Suffixes([]byte(c.name)) {
			gotBytes = append(gotBytes, fmt.Sprint(off, " ", string(s)))
		}
		if !slices.Equal(got, c.want) || !slices.Equal(gotBytes, c.want) {
			t.Errorf("Suffixes(%q) = %q / %q, want %q", c.name, got, gotBytes, c.want)
		}
	}
	served := map[string]bool{"example.com": true, "sub.example.com": true}
	for _, c := range []struct{ name, want string }{
		{"a.sub.example.com", "sub.example.com"},
		{"sub.example.com", "sub.example.com"},
		{"imap.example.com", "example.com"},
		{"example.org", ""},
	} {
		if got, ok := Closest(c.name, func(n string) bool { return served[n] }); got != c.want || ok != (c.want != "") {
			t.Errorf("Closest(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}
