package config

import (
	"strings"
	"testing"
)

func TestParseServiceURL(t *testing.T) {
	cases := []struct {
		raw                           string
		template, host, path, context string
		port                          int
		contextURL                    string
		err                           string
	}{
		{raw: "https://dav.example.com/dav/", template: "https://dav.example.com/dav/", host: "dav.example.com", port: 443,
			path: "/dav/", context: "/dav/", contextURL: "https://dav.example.com/dav/"},
		{raw: " HTTPS://DAV.Example.COM. ", template: "https://dav.example.com/", host: "dav.example.com", port: 443,
			path: "/", context: "/", contextURL: "https://dav.example.com/"},
		{raw: "https://dav.example.com:8443/cal/%EMAILADDRESS%/", template: "https://dav.example.com:8443/cal/%EMAILADDRESS%/",
			host: "dav.example.com", port: 8443, path: "/cal/%EMAILADDRESS%/", context: "/cal/", contextURL: "https://dav.example.com:8443/cal/"},
		{raw: "https://dav.example.com:443/a/b%EMAILLOCALPART%c/d", template: "https://dav.example.com/a/b%EMAILLOCALPART%c/d",
			host: "dav.example.com", port: 443, path: "/a/b%EMAILLOCALPART%c/d", context: "/a/", contextURL: "https://dav.example.com/a/"},
		{raw: "https://DAV.%EMAILDOMAIN%/dav/", template: "https://dav.%EMAILDOMAIN%/dav/", host: "dav.%EMAILDOMAIN%", port: 443,
			path: "/dav/", context: "/dav/", contextURL: ""},
		{raw: "https://[2001:db8::1]:8443/dav/", template: "https://[2001:db8::1]:8443/dav/", host: "2001:db8::1", port: 8443,
			path: "/dav/", context: "/dav/", contextURL: "https://[2001:db8::1]:8443/dav/"},
		{raw: "https://192.0.2.1/remote.php/dav%2Fx/", template: "https://192.0.2.1/remote.php/dav%2Fx/", host: "192.0.2.1", port: 443,
			path: "/remote.php/dav%2Fx/", context: "/remote.php/dav%2Fx/", contextURL: "https://192.0.2.1/remote.php/dav%2Fx/"},
		{raw: "", err: "required"},
		{raw: "http://dav.example.com/", err: "is not an https URL"},
		{raw: "dav.example.com/dav", err: "is not an https URL"},
		{raw: "https://alice@dav.example.com/", err: "user information"},
		{raw: "https://%EMAILLOCALPART%.example.com/", err: "cannot be part of a host name"},
		{raw: "https://dav.example.com:0/", err: "is not a port"},
		{raw: "https://dav.example.com:99999/", err: "is not a port"},
		{raw: "https://dav_example.com/", err: "is not a host name"},
		{raw: "https:///dav/", err: "is not a host name"},
		{raw: "https://dav.example.com/dav/?user=x", err: "query or fragment"},
		{raw: "https://dav.example.com/dav/#x", err: "query or fragment"},
		{raw: "https://dav.example.com?x", err: "query or fragment"},
		{raw: "https://dav.example.com/%USER%/", err: "unknown placeholder"},
		{raw: "https://dav.example.com/%EMAILADDRESS/", err: "unknown placeholder"},
		{raw: "https://dav.example.com/a b/", err: "white space"},
		{raw: "https://dav.example.com/kalender-ü/", err: "non-ASCII"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			u, err := ParseServiceURL(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q (parsed %+v)", err, c.err, u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Template != c.template || u.Host != c.host || u.Port != c.port || u.Path != c.path || u.Context != c.context {
				t.Errorf("got %+v", u)
			}
			if got := u.ContextURL(); got != c.contextURL {
				t.Errorf("ContextURL = %q, want %q", got, c.contextURL)
			}
		})
	}
}

func TestServiceURLExpand(t *testing.T) {
	cases := []struct {
		tmpl, local, domain, want string
	}{
		{"https://dav.example.com/dav/", "alice", "example.com", "https://dav.example.com/dav/"},
		{"https://dav.example.com/cal/%EMAILADDRESS%/", "alice", "example.com", "https://dav.example.com/cal/alice@example.com/"},
		{"https://dav.example.com:8443/u/%EMAILLOCALPART%/%EMAILDOMAIN%/", "bob", "example.net", "https://dav.example.com:8443/u/bob/example.net/"},
		// Characters a local part may hold that would change the URL's
		// structure are percent-encoded.
		{"https://dav.example.com/cal/%EMAILADDRESS%/", "a/b?c#d%e", "example.com", "https://dav.example.com/cal/a%2Fb%3Fc%23d%25e@example.com/"},
		{"https://dav.%EMAILDOMAIN%/dav/%EMAILLOCALPART%/", "bob", "example.net", "https://dav.example.net/dav/bob/"},
		{"https://dav.example.com/cal/%EMAILLOCALPART%/", "jürg+tag", "xn--bcher-kva.ch", "https://dav.example.com/cal/j%C3%BCrg+tag/"},
	}
	for _, c := range cases {
		u, err := ParseServiceURL(c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		if got := u.Expand(c.local, c.domain); got != c.want {
			t.Errorf("%s with %s@%s = %q, want %q", c.tmpl, c.local, c.domain, got, c.want)
		}
	}
}

func TestServicesConfig(t *testing.T) {
	base := `providers:
  - id: mail.example.com
    domains: [example.com]
    username: "%EMAILLOCALPART%"
%s    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`
	cases := []struct {
		name, yaml string
		errs       []string
		check      func(t *testing.T, p *Provider)
	}{
		{name: "none", yaml: "", check: func(t *testing.T, p *Provider) {
			if len(p.Services()) != 0 {
				t.Errorf("services = %+v", p.Services())
			}
		}},
		{name: "all three", yaml: `    caldav: {url: "https://dav.example.com/cal/%EMAILADDRESS%/"}
    carddav: {url: "https://dav.example.com/card/", username: "%EMAILADDRESS%", authentication: [http-digest, http-basic]}
    jmap: {url: "https://jmap.example.com/.well-known/jmap"}
`, check: func(t *testing.T, p *Provider) {
			s := p.Services()
			if len(s) != 3 || s[0].Kind != "caldav" || s[1].Kind != "carddav" || s[2].Kind != "jmap" {
				t.Fatalf("services = %+v", s)
			}
			if got := s[0].LoginTemplate(p); got != "%EMAILLOCALPART%" {
				t.Errorf("caldav login = %q, want the provider's", got)
			}
			if got := s[1].LoginTemplate(p); got != "%EMAILADDRESS%" {
				t.Errorf("carddav login = %q", got)
			}
			if got := strings.Join(s[0].AuthMethods(), ","); got != "http-basic" {
				t.Errorf("caldav auth = %q", got)
			}
			if got := strings.Join(s[1].AuthMethods(), ","); got != "http-digest,http-basic" {
				t.Errorf("carddav auth = %q", got)
			}
		}},
		{name: "bad url", yaml: "    caldav: {url: \"http://dav.example.com/\"}\n",
			errs: []string{`c.yaml:5: providers[0].caldav.url: "http://dav.example.com/" is not an https URL`}},
		{name: "missing url", yaml: "    carddav: {username: \"%EMAILADDRESS%\"}\n",
			errs: []string{`c.yaml:5: providers[0].carddav.url: required (an https URL)`}},
		{name: "bad username", yaml: "    jmap: {url: \"https://jmap.example.com/\", username: \"%REALNAME%\"}\n",
			errs: []string{`c.yaml:5: providers[0].jmap.username: "%REALNAME%" has an unknown placeholder; use %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%`}},
		{name: "mail method", yaml: "    caldav: {url: \"https://dav.example.com/\", authentication: [password-cleartext]}\n",
			errs: []string{`c.yaml:5: providers[0].caldav.authentication: "password-cleartext" is not one of http-basic, http-digest, OAuth2`}},
		{name: "empty methods", yaml: "    caldav: {url: \"https://dav.example.com/\", authentication: []}\n",
			errs: []string{`c.yaml:5: providers[0].caldav.authentication: at least one method is required`}},
		{name: "oauth without section", yaml: "    caldav:\n      url: https://dav.example.com/\n      authentication: OAuth2\n",
			errs: []string{`c.yaml:7: providers[0].caldav.authentication: OAuth2 needs the provider's oauth2 section`}},
		{name: "unknown key", yaml: "    caldav: {url: \"https://dav.example.com/\", path: /x}\n",
			errs: []string{`c.yaml:5: field path not found in type config.Service`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(strings.Replace(base, "%s", c.yaml, 1)))
			if c.errs != nil {
				if err == nil {
					t.Fatalf("no error, want %q", c.errs)
				}
				if got := err.Error(); got != strings.Join(c.errs, "\n") {
					t.Fatalf("errors:\n got %s\nwant %s", got, strings.Join(c.errs, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, &cfg.Providers[0])
		})
	}
}
