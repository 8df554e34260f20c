package settings

import (
	"testing"

	"mailautoconf/internal/config"
)

// TestAliasLookup: an alias domain finds its provider and tells the
// canonical domain, by address and by Host header alike; other domains are
// unchanged.
func TestAliasLookup(t *testing.T) {
	cfg, err := config.Parse("a.yaml", []byte(`
providers:
  - id: mail.example.com
    domains: [example.com, "*.wild.example"]
    aliases: {Example.ORG: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	cat := New(cfg)
	cases := []struct {
		name, addr, host           string
		domain, canonical, mailbox string
	}{
		{name: "alias address", addr: "Alice@EXAMPLE.org", domain: "example.org", canonical: "example.com", mailbox: "Alice@example.com"},
		{name: "canonical address", addr: "alice@example.com", domain: "example.com", mailbox: "alice@example.com"},
		{name: "wildcard address", addr: "bob@shop.wild.example", domain: "shop.wild.example", mailbox: "bob@shop.wild.example"},
		{name: "alias host", host: "autoconfig.example.org:8080", domain: "example.org", canonical: "example.com"},
		{name: "alias host without prefix", host: "example.org", domain: "example.org", canonical: "example.com"},
		{name: "canonical host", host: "autoconfig.example.com", domain: "example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Settings
			var err error
			if c.addr != "" {
				s, err = cat.ForAddress(c.addr)
			} else {
				s, err = cat.ForHost(c.host, "autoconfig.")
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Provider.ID != "mail.example.com" || s.Domain != c.domain || s.CanonicalDomain != c.canonical {
				t.Errorf("got provider %s, domain %q, canonical %q", s.Provider.ID, s.Domain, s.CanonicalDomain)
			}
			if got := s.Canonical(); (got == nil) != (c.mailbox == "") || (got != nil && got.String() != c.mailbox) {
				t.Errorf("Canonical() = %v, want %q", got, c.mailbox)
			}
		})
	}
	if _, err := cat.ForAddress("a@other.example"); err != ErrUnknownDomain {
		t.Errorf("unknown domain: %v", err)
	}
	if d, ok := cat.Canonical("example.com"); ok {
		t.Errorf("Canonical(example.com) = %q, true", d)
	}
}
