package config

import (
	"maps"
	"strings"
	"testing"
)

// aliasConfig is two providers; aliases are filled in per case.
func aliasConfig(aliasesA, aliasesB string) string {
	return `providers:
  - id: mail.example.com
    domains: [example.com, Bücher.example, "*.wild.example"]
    aliases:` + aliasesA + `
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: mail.other.test
    domains: [other.test]
    aliases:` + aliasesB + `
    servers:
      - {type: imap, host: imap.other.test}
      - {type: smtp, host: smtp.other.test}
`
}

func TestAliases(t *testing.T) {
	cases := []struct {
		name, a, b string
		want       map[string]string // normalised aliases of the first provider
		errs       []string          // expected error lines, in order
	}{
		{name: "none", a: " {}", b: " {}", want: map[string]string{}},
		{name: "normalised", a: "\n      Example.ORG.: EXAMPLE.com\n      bücher.test: bücher.example", b: " {}",
			want: map[string]string{"example.org": "example.com", "xn--bcher-kva.test": "xn--bcher-kva.example"}},
		{name: "target not the provider's", a: "\n      example.org: other.test", b: " {}",
			errs: []string{"a.yaml:5: providers[0].aliases.example.org: other.test is not one of the provider's domains (example.com, xn--bcher-kva.example, *.wild.example)"}},
		{name: "target is a wildcard", a: "\n      example.org: \"*.wild.example\"", b: " {}",
			errs: []string{`a.yaml:5: providers[0].aliases.example.org: "*.wild.example" is not a domain name of this provider`}},
		{name: "alias is a wildcard", a: "\n      \"*.example.org\": example.com", b: " {}",
			errs: []string{"a.yaml:5: providers[0].aliases.*.example.org: an alias must be a single domain, not a wildcard"}},
		{name: "alias is an own domain", a: "\n      example.com: xn--bcher-kva.example", b: " {}",
			errs: []string{"a.yaml:5: providers[0].aliases.example.com: example.com is one of the provider's own domains and cannot also be an alias"}},
		{name: "bad alias", a: "\n      \"exa mple.org\": example.com", b: " {}",
			errs: []string{`a.yaml:5: providers[0].aliases.exa mple.org: "exa mple.org" is not a domain name`}},
		{name: "same alias twice", a: "\n      example.org: example.com\n      EXAMPLE.org: example.com", b: " {}",
			errs: []string{`a.yaml:5: providers[0].aliases.example.org: alias example.org is already listed as "EXAMPLE.org"`}},
		{name: "alias is another provider's domain", a: "\n      other.test: example.com", b: " {}",
			errs: []string{"a.yaml:5: providers[0].aliases.other.test: alias other.test is already served by providers[1].domains[0] (line 10)"}},
		{name: "alias in two providers", a: "\n      example.org: example.com", b: "\n      example.org: other.test",
			errs: []string{"a.yaml:12: providers[1].aliases.example.org: alias example.org is already an alias in providers[0].aliases.example.org (line 5)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("a.yaml", []byte(aliasConfig(c.a, c.b)))
			if c.errs != nil {
				if err == nil {
					t.Fatalf("no error, want %q", c.errs)
				}
				if got := err.Error(); got != strings.Join(c.errs, "\n") {
					t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(c.errs, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What the aliases mean, as the catalog reads them.
			p := &cfg.Providers[0]
			own := map[string]bool{}
			for _, d := range p.Domains {
				n, _ := ParseServedDomain(d)
				own[n] = true
			}
			got := map[string]string{}
			for k, target := range p.Aliases {
				a, canon, err := ParseAlias(k, target, func(d string) bool { return own[d] })
				if err != nil {
					t.Fatalf("accepted alias %s: %v", k, err)
				}
				got[a] = canon
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("aliases %v, want %v", got, c.want)
			}
		})
	}
}
