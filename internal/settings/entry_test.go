package settings

import (
	"testing"

	"mailautoconf/internal/config"
)

// TestEntry: the configured entry of a domain, in agreement with Lookup.
func TestEntry(t *testing.T) {
	cfg, err := config.Parse("entry.yaml", []byte(`
providers:
  - id: mail.example.com
    domains: [example.com, "*.kunden.example.com", "*.example.org"]
    aliases: {example.net: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	cat := New(cfg)
	for domain, want := range map[string]string{
		"example.com":                      "example.com",
		"example.net":                      "example.net",
		"a.kunden.example.com":             "*.kunden.example.com",
		"x.y.z.kunden.example.com":         "*.kunden.example.com",
		"kunden.example.com":               "",
		"sub.example.com":                  "",
		"a.example.org":                    "*.example.org",
		"a.kunden.example.org":             "*.example.org",
		"example.org":                      "",
		"unknown.test":                     "",
		"":                                 "",
		"xn--bcher-kva.kunden.example.com": "*.kunden.example.com",
	} {
		if got := cat.Entry(domain); got != want {
			t.Errorf("Entry(%q) = %q, want %q", domain, got, want)
		}
		_, served := cat.Lookup(domain)
		if served != (want != "") {
			t.Errorf("Lookup(%q) served = %v, but Entry says %q", domain, served, want)
		}
	}
}
