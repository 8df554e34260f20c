package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	c, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if p.ID != "mail.example.com" || len(p.Domains) != 2 || len(p.Servers) != 6 {
		t.Fatalf("demo = %+v", p)
	}
	want := []struct {
		typ, host string
		port      int
		sec       string
	}{
		{"imap", "imap.example.com", 993, "tls"}, {"imap", "imap.example.com", 143, "starttls"},
		{"pop3", "pop.example.com", 995, "tls"}, {"pop3", "pop.example.com", 110, "starttls"},
		{"smtp", "smtp.example.com", 465, "tls"}, {"smtp", "smtp.example.com", 587, "starttls"},
	}
	for i, w := range want {
		s := p.Server(i)
		if s.Type != w.typ || s.Host != w.host || s.Port != w.port || s.Security != w.sec || s.Username != "%EMAILADDRESS%" {
			t.Errorf("server %d = %+v, want %+v", i, s, w)
		}
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "deploy", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if d, err := ParseServedDomain(p.Domains[1]); d != "xn--bckerei-mller-bfb28a.ch" {
		t.Errorf("IDN domain read as %q (%v)", d, err)
	}
	if d, err := ParseServedDomain(p.Domains[2]); d != "*.kunden.alpenhost.ch" {
		t.Errorf("wildcard read as %q (%v)", d, err)
	}
}

// TestDefaults: a minimal file means standard ports, security and login
// names; the file's values stay as written.
func TestDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte(`
providers:
  - id: Mail.Example.ORG.
    domains: [Example.ORG]
    servers:
      - {type: imap, host: imap.example.org}
      - {type: pop3, host: pop.example.org, port: 110}
      - {type: smtp, host: smtp.example.org, security: starttls}
      - {type: smtp, host: smtp.example.org, port: 465}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if display, short := p.Names(); p.NormalizedID() != "mail.example.org" || display != "mail.example.org" || short != "mail.example.org" {
		t.Errorf("names: %q %q %q", p.NormalizedID(), display, short)
	}
	if d, _ := ParseServedDomain(p.Domains[0]); d != "example.org" {
		t.Errorf("domain %q", d)
	}
	if p.ID != "Mail.Example.ORG." || p.Domains[0] != "Example.ORG" || p.Servers[0].Port != 0 || p.Servers[0].Security != "" {
		t.Errorf("the parsed file was changed: %+v", p)
	}
	got := ""
	for i := range p.Servers {
		s := p.Server(i)
		got += s.Type + ":" + s.Security + ":" + itoa(s.Port) + ":" + s.Username + ":" + strings.Join(s.Authentication, ",") + " "
	}
	want := "imap:tls:993:%EMAILADDRESS%:password-cleartext pop3:starttls:110:%EMAILADDRESS%:password-cleartext " +
		"smtp:starttls:587:%EMAILADDRESS%:password-cleartext smtp:tls:465:%EMAILADDRESS%:password-cleartext "
	if got != want {
		t.Errorf("defaults:\n got %s\nwant %s", got, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestErrors: every mistake is reported with file, line and field.
func TestErrors(t *testing.T) {
	base := func(servers string) string {
		return "providers:\n  - id: mail.example.com\n    domains: [example.com]\n    servers:\n" + servers
	}
	ok := "      - {type: imap, host: imap.example.com}\n      - {type: smtp, host: smtp.example.com}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"bad port", base(ok + "      - type: imap\n        host: imap.example.com\n        port: 99999\n"),
			[]string{"bad.yaml:9: providers[0].servers[2].port: 99999 is not a port"}},
		{"port not a number", base("      - {type: imap, host: imap.example.com, port: abc}\n"),
			[]string{"bad.yaml:5:", "abc"}},
		{"unknown field", base(ok + "      - {type: imap, host: x.example.com, prot: 1}\n"),
			[]string{"bad.yaml:7:", "prot"}},
		{"bad type", base(ok + "      - {type: imaps, host: imap.example.com}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].type: "imaps" is not imap, pop3 or smtp`}},
		{"bad security", base(ok + "      - {type: imap, host: imap.example.com, security: ssl3}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].security: "ssl3" is not tls, starttls or plain`}},
		{"bad host", base(ok + "      - {type: imap, host: 'imap example.com'}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].host: "imap example.com" is not a host name or IP address`}},
		{"missing host", base(ok + "      - {type: imap}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].host: required`}},
		{"bad auth", base(ok + "      - {type: imap, host: imap.example.com, authentication: [password]}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].authentication: "password" is not one of`}},
		{"none on imap", base(ok + "      - {type: imap, host: imap.example.com, authentication: none}\n"),
			[]string{`servers[2].authentication: "none" is only possible for smtp servers`}},
		{"oauth without section", base(ok + "      - {type: imap, host: imap.example.com, authentication: OAuth2}\n"),
			[]string{`servers[2].authentication: OAuth2 needs the provider's oauth2 section`}},
		{"bad placeholder", base(ok + "      - {type: imap, host: imap.example.com, username: '%EMAIL%'}\n"),
			[]string{`bad.yaml:7: providers[0].servers[2].username: "%EMAIL%" has an unknown placeholder`}},
		{"no smtp", base("      - {type: imap, host: imap.example.com}\n"),
			[]string{`bad.yaml:4: providers[0].servers: no outgoing (smtp) server`}},
		{"no incoming", base("      - {type: smtp, host: smtp.example.com}\n"),
			[]string{`providers[0].servers: no incoming (imap or pop3) server`}},
		{"only plain", base("      - {type: imap, host: imap.example.com, security: plain}\n      - {type: smtp, host: smtp.example.com}\n"),
			[]string{`every incoming server is plain`}},
		{"no servers", "providers:\n  - id: mail.example.com\n    domains: [example.com]\n",
			[]string{`bad.yaml:2: providers[0].servers: at least one server is required`}},
		{"no domains", "providers:\n  - id: mail.example.com\n    servers:\n" + ok,
			[]string{`bad.yaml:2: providers[0].domains: at least one domain is required`}},
		{"bad domain", "providers:\n  - id: mail.example.com\n    domains: [example.com, 'exa mple.com']\n    servers:\n" + ok,
			[]string{`bad.yaml:3: providers[0].domains[1]: "exa mple.com" is not a domain name`}},
		{"no id", "providers:\n  - domains: [example.com]\n    servers:\n" + ok,
			[]string{`providers[0].id: a provider id`}},
		{"placeholder id", "providers:\n  - id: '%EMAILDOMAIN%'\n    domains: [example.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:2: providers[0].id: "%emaildomain%" is not a host name`}},
		{"bad doc url", "providers:\n  - id: mail.example.com\n    documentation_url: 'javascript:alert(1)'\n    domains: [example.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:3: providers[0].documentation_url: "javascript:alert(1)" is not an absolute http or https URL`}},
		{"bad logo url", "providers:\n  - id: mail.example.com\n    logo_url: 'data:image/png;base64,AAAA'\n    domains: [example.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:3: providers[0].logo_url: "data:image/png;base64,AAAA" is not an absolute http or https URL`}},
		{"control char", "providers:\n  - id: mail.example.com\n    display_name: \"A\\r\\nB\"\n    domains: [example.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:3: providers[0].display_name: contains a control or private-use character`}},
		{"duplicate domain", "providers:\n  - id: a.example.com\n    domains: [example.com]\n    servers:\n" + ok +
			"  - id: b.example.com\n    domains: [other.com, EXAMPLE.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:8: providers[1].domains[1]: domain example.com is already served by providers[0].domains[0] (line 3)`}},
		{"duplicate id", "providers:\n  - id: a.example.com\n    domains: [example.com]\n    servers:\n" + ok +
			"  - id: a.example.com\n    domains: [other.com]\n    servers:\n" + ok,
			[]string{`bad.yaml:7: providers[1].id: "a.example.com" is also the id of providers[0].id (line 2)`}},
		{"no providers", "listen: {http: '127.0.0.1:8080'}\n", []string{"providers: at least one provider is required"}},
		{"bad listen", "listen: {http: 'nonsense'}\n" + base(ok), []string{`bad.yaml:1: listen.http: "nonsense" is not a host:port address`}},
		{"empty file", "", []string{"bad.yaml:1: the file is empty"}},
		{"syntax", "providers: [\n", []string{"bad.yaml:"}},
		{"tab indent", "providers:\n\t- id: x\n", []string{"bad.yaml:2:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

// TestAllErrorsAtOnce: an operator sees every problem of a file, not one per run.
func TestAllErrorsAtOnce(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "broken.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("broken.yaml", data)
	errs, ok := err.(Errors)
	if !ok || len(errs) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DemoYAML())
	f.Add([]byte("providers:\n  - id: a.b\n    domains: ['*.x.y']\n    servers: [{type: imap, host: h}, {type: smtp, host: h}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		if len(c.Providers) == 0 {
			t.Fatal("accepted a configuration without providers")
		}
		for _, p := range c.Providers {
			for i := range p.Servers {
				if s := p.Server(i); s.Port < 1 || s.Port > 65535 {
					t.Fatalf("accepted port %d", s.Port)
				}
			}
		}
	})
}

func TestActiveSyncURL(t *testing.T) {
	_, err := Parse("as.yaml", []byte("providers:\n  - id: mail.example.com\n    domains: [example.com]\n    activesync_url: http://eas.example.com/Microsoft-Server-ActiveSync\n    servers: [{type: imap, host: imap.example.com}, {type: smtp, host: smtp.example.com}]\n"))
	if err == nil || !strings.Contains(err.Error(), `as.yaml:4: providers[0].activesync_url: "http://eas.example.com/Microsoft-Server-ActiveSync" is not an absolute https URL`) {
		t.Errorf("got %v", err)
	}
}

// TestLongestDomain: a domain is served up to the length at which its
// longest DNS name, _autodiscover._tcp.<domain>, is still a valid name.
func TestLongestDomain(t *testing.T) {
	domain := func(n int) string {
		var labels []string
		for n > 0 {
			l := min(n, 60)
			if n-l == 1 { // no empty label
				l--
			}
			labels = append(labels, strings.Repeat("a", l))
			n -= l + 1
		}
		return strings.Join(labels, ".")
	}
	yaml := func(d string) []byte {
		return []byte("providers:\n  - id: mail.example.com\n    domains: [" + d + "]\n    servers:\n" +
			"      - {type: imap, host: imap.example.com}\n      - {type: smtp, host: smtp.example.com}\n")
	}
	longest := domain(MaxServedDomain)
	if len(longest) != MaxServedDomain {
		t.Fatalf("test domain has %d characters", len(longest))
	}
	if _, err := Parse("ok.yaml", yaml(longest)); err != nil {
		t.Errorf("a %d-character domain: %v", MaxServedDomain, err)
	}
	tooLong := domain(MaxServedDomain + 1)
	_, err := Parse("bad.yaml", yaml(tooLong))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3: providers[0].domains[0]: "+tooLong+" is longer than 234 characters") {
		t.Errorf("a %d-character domain: %v", len(tooLong), err)
	}
	if _, err := Parse("bad.yaml", []byte(strings.Replace(string(yaml("example.com")), "    servers:", "    aliases: {"+tooLong+": example.com}\n    servers:", 1))); err == nil ||
		!strings.Contains(err.Error(), "is longer than 234 characters") {
		t.Errorf("a %d-character alias domain: %v", len(tooLong), err)
	}
}

// TestEveryStringChecked: a control or private-use character is refused in
// every configured string, not only in names: the renderers use
// private-use characters as template markers, so a configured value that
// held one would be taken for a slot (an OAuth scope or a URL as much as a
// display name).
func TestEveryStringChecked(t *testing.T) {
	// YAML escapes inside the double-quoted values: what tmpl.Marker(0)
	// writes, a BEL and a C1 control (NEL).
	bads := []string{`\uE0000\uE001`, `\a`, `\x85`}
	base := `providers:
  - id: mail.example.com
    display_name: "DISPLAY"
    short_name: "SHORT"
    domains: [example.com]
    documentation_url: "https://example.com/DOC"
    logo_url: "https://example.com/LOGO"
    activesync_url: "https://example.com/EAS"
    username: "%EMAILADDRESS%USER"
    oauth2: {issuer: "ISSUER", scope: "SCOPE", auth_url: "https://example.com/AUTH", token_url: "https://example.com/TOKEN"}
    servers:
      - {type: imap, host: imap.example.com, username: "%EMAILLOCALPART%SRVUSER"}
      - {type: smtp, host: smtp.example.com}
`
	fields := map[string]string{
		"DISPLAY": "providers[0].display_name", "SHORT": "providers[0].short_name",
		"DOC": "providers[0].documentation_url", "LOGO": "providers[0].logo_url", "EAS": "providers[0].activesync_url",
		"USER": "providers[0].username", "ISSUER": "providers[0].oauth2.issuer", "SCOPE": "providers[0].oauth2.scope",
		"AUTH": "providers[0].oauth2.auth_url", "TOKEN": "providers[0].oauth2.token_url",
		"SRVUSER": "providers[0].servers[0].username",
	}
	clean := base
	for word := range fields {
		clean = strings.Replace(clean, word, "x", 1)
	}
	if _, err := Parse("ok.yaml", []byte(clean)); err != nil {
		t.Fatalf("the clean file: %v", err)
	}
	for word, path := range fields {
		for _, bad := range bads {
			yaml := strings.Replace(base, word, bad, 1)
			for other := range fields {
				if other != word {
					yaml = strings.Replace(yaml, other, "x", 1)
				}
			}
			_, err := Parse("bad.yaml", []byte(yaml))
			// A URL with a control character is no URL already; the
			// marker passes url.Parse and is caught by the text check.
			want := " " + path + ": "
			if bad == bads[0] {
				want += "contains a control or private-use character"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q in %s: error %v, want %q", bad, path, err, want)
			}
		}
	}
}
