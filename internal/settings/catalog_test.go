package settings

import (
	"slices"
	"testing"
)

const twoProviders = `
providers:
  - id: mail.example.com
    domains: [example.com, "*.kunden.example"]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: mail.other.test
    domains: [other.test]
    servers:
      - {type: imap, host: imap.other.test}
      - {type: smtp, host: smtp.other.test}
`

// TestExtraDomains: domains of other sources are held to the rules of the
// configuration's own; the bad ones are left out with the reason, the rest
// served.
func TestExtraDomains(t *testing.T) {
	extra := []Domain{
		{Name: "Bücher.Example", Provider: "mail.example.com"},
		{Name: "*.Shops.Example", Provider: "MAIL.OTHER.TEST."},
		{Name: "alias.test", Provider: "mail.other.test", AliasOf: "other.test"},
		{Name: "late-alias.test", Provider: "mail.example.com", AliasOf: "bücher.example"}, // an alias of an extra domain
		{Name: "exa mple.net", Provider: "mail.example.com"},
		{Name: "example.com", Provider: "mail.other.test"},
		{Name: "EXAMPLE.ORG", Provider: "mail.other.test"},
		{Name: "nobody.test", Provider: "mail.nobody.test"},
		{Name: "*.x.test", Provider: "mail.example.com", AliasOf: "example.com"},
		{Name: "alias2.test", Provider: "mail.example.com", AliasOf: "other.test"},
		{Name: "alias3.test", Provider: "mail.example.com", AliasOf: "example.org"},
		{Name: "alias.test", Provider: "mail.example.com", AliasOf: "example.com"},
		{Name: "bücher.example", Provider: "mail.example.com"},
		{Name: "first.test"}, // no provider: the first one
		{Name: "first-alias.test", AliasOf: "first.test"},
	}
	cat := New(parse(t, twoProviders), extra...)
	wantSkipped := []Skipped{
		{extra[4], `"exa mple.net" is not a domain name`},
		{extra[5], "domain example.com is already served by provider mail.example.com"},
		{extra[6], "domain example.org is already served by provider mail.example.com"},
		{extra[7], `no provider has the id "mail.nobody.test"`},
		{extra[12], "domain xn--bcher-kva.example is already served by provider mail.example.com"},
		{extra[8], "an alias must be a single domain, not a wildcard"},
		{extra[9], "other.test is not one of the provider's domains"},
		{extra[10], "example.org is not one of the provider's domains"},
		{extra[11], "alias alias.test is already served by provider mail.other.test"},
	}
	if got := cat.Skipped(); !slices.Equal(got, wantSkipped) {
		t.Errorf("skipped:\n got %q\nwant %q", got, wantSkipped)
	}
	cases := []struct {
		addr, provider, canonical string
	}{
		{"a@xn--bcher-kva.example", "mail.example.com", ""},
		{"a@bücher.example", "mail.example.com", ""},
		{"a@shop1.shops.example", "mail.other.test", ""},
		{"a@alias.test", "mail.other.test", "other.test"},
		{"a@late-alias.test", "mail.example.com", "xn--bcher-kva.example"},
		{"a@example.com", "mail.example.com", ""},
		{"a@example.org", "mail.example.com", "example.com"},
		{"a@exa-mple.net", "", ""},
		{"a@nobody.test", "", ""},
		{"a@shops.example", "", ""},
		{"a@first.test", "mail.example.com", ""},
		{"a@first-alias.test", "mail.example.com", "first.test"},
	}
	for _, c := range cases {
		s, err := cat.ForAddress(c.addr)
		switch {
		case c.provider == "" && err != ErrUnknownDomain:
			t.Errorf("%s: %v, want unknown domain", c.addr, err)
		case c.provider == "":
		case err != nil:
			t.Errorf("%s: %v", c.addr, err)
		case s.Provider.ID != c.provider || s.CanonicalDomain != c.canonical:
			t.Errorf("%s: provider %s, canonical %q; want %s, %q", c.addr, s.Provider.ID, s.CanonicalDomain, c.provider, c.canonical)
		}
	}
	if got, want := cat.Providers[0].Domains, []string{"example.com", "*.kunden.example", "xn--bcher-kva.example", "first.test"}; !slices.Equal(got, want) {
		t.Errorf("domains of the first provider %q, want %q", got, want)
	}
	// Without extra domains nothing is skipped and the catalog is the
	// configuration's.
	if plain := New(parse(t, twoProviders)); len(plain.Skipped()) != 0 || len(plain.Providers[1].Domains) != 1 {
		t.Errorf("catalog without extra domains: %v, %q", plain.Skipped(), plain.Providers[1].Domains)
	}
}

// TestServedNames: every name a certificate must cover, and the one-name
// question that also covers wildcard domains.
func TestServedNames(t *testing.T) {
	cat := New(parse(t, twoProviders), Domain{Name: "extra.test", Provider: "mail.other.test"})
	want := []string{
		"autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com",
		"autoconfig.example.org", "autodiscover.example.org", "ua-auto-config.example.org",
		"autoconfig.other.test", "autodiscover.other.test", "ua-auto-config.other.test",
		"autoconfig.extra.test", "autodiscover.extra.test", "ua-auto-config.extra.test",
	}
	if got := cat.ServedNames(); !slices.Equal(got, want) {
		t.Errorf("ServedNames:\n got %q\nwant %q", got, want)
	}
	for _, n := range want {
		if !cat.ServesHost(n) {
			t.Errorf("ServesHost(%q) = false for a listed name", n)
		}
	}
	cases := []struct {
		host string
		want bool
	}{
		{"AutoConfig.Example.COM.", true},
		{"autodiscover.shop.kunden.example", true},   // below the wildcard
		{"autoconfig.a.b.kunden.example", true},      // deeper below it
		{"autoconfig.kunden.example", false},         // the wildcard's parent is not served
		{"example.com", false},                       // the domain itself: its web site's name
		{"mail.example.com", false},                  // not a service name
		{"autoconfig.", false},                       // no domain
		{"autoconfig.unknown.test", false},           // not served
		{"autoconfig.autoconfig.example.com", false}, // only one prefix
		{"www.autoconfig.example.com", false},
		{"UA-Auto-Config.shop.kunden.example", true}, // PACC, below the wildcard
		{"ua-auto-config.unknown.test", false},
		{"ua-auto-config.", false},
		{"_ua-auto-config.example.com", false}, // the TXT record's name, not a host
	}
	for _, c := range cases {
		if got := cat.ServesHost(c.host); got != c.want {
			t.Errorf("ServesHost(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

// TestServedNamesAutodiscoverTarget: a provider with an Autodiscover target
// needs a certificate for that one host, not for autodiscover.<domain> of
// each of its domains; a provider without one keeps its own names.
func TestServedNamesAutodiscoverTarget(t *testing.T) {
	cfg := parse(t, "dns: {autodiscover_target: Autodiscover.Hoster.Example.}\n"+twoProviders)
	cfg.Providers[1].DNS.AutodiscoverTarget = "autodiscover.other.test"
	cat := New(cfg)
	want := []string{
		"autodiscover.hoster.example",
		"autoconfig.example.com", "ua-auto-config.example.com", "autoconfig.example.org", "ua-auto-config.example.org",
		"autodiscover.other.test", "autoconfig.other.test", "ua-auto-config.other.test",
	}
	if got := cat.ServedNames(); !slices.Equal(got, want) {
		t.Errorf("ServedNames:\n got %q\nwant %q", got, want)
	}
	for host, want := range map[string]bool{
		"autodiscover.hoster.example.": true,
		"AUTODISCOVER.hoster.example":  true,
		"autodiscover.other.test":      true,
		"hoster.example":               false,
	} {
		if got := cat.ServesHost(host); got != want {
			t.Errorf("ServesHost(%q) = %v, want %v", host, got, want)
		}
	}
	for _, c := range []struct{ provider, domain, want string }{
		{"mail.example.com", "example.com", "autodiscover.hoster.example"},
		{"mail.example.com", "example.org", "autodiscover.hoster.example"},
		{"mail.other.test", "other.test", "autodiscover.other.test"},
	} {
		p, ok := cat.Lookup(c.domain)
		if !ok {
			t.Fatalf("%s not served", c.domain)
		}
		if p.ID != c.provider || p.AutodiscoverHost(c.domain) != c.want {
			t.Errorf("%s: provider %s, host %q, want %s and %s", c.domain, p.ID, p.AutodiscoverHost(c.domain), c.provider, c.want)
		}
	}
	if !cat.IsAutodiscoverTarget("autodiscover.hoster.example") || cat.IsAutodiscoverTarget("autodiscover.example.com") {
		t.Error("IsAutodiscoverTarget")
	}
}
