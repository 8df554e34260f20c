package config

import (
	"fmt"
	"testing"
)

func TestDiff(t *testing.T) {
	parse := func(text string) *Config {
		t.Helper()
		c, err := Parse("diff.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse(`
providers:
  - id: mail.example.com
    domains: [example.com, example.net, "*.kunden.example.com"]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: starttls}
`)
	cur := parse(`
providers:
  - id: mail.example.com
    domains: [example.com, example.info]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com, security: tls}
      - {type: pop3, host: pop.example.com}
`)
	got := Diff(old, cur)
	want := Changes{
		DomainsRemoved: []string{"*.kunden.example.com", "example.net", "example.org"},
		DomainsAdded:   []string{"example.info"},
		ServersRemoved: []string{"mail.example.com: smtp smtp.example.com:587 starttls"},
		ServersAdded:   []string{"mail.example.com: pop3 pop.example.com:995 tls"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Diff:\n got %+v\nwant %+v", got, want)
	}
	if !got.Removed() {
		t.Error("Removed() false")
	}
	if same := Diff(old, old); same.Removed() || len(same.DomainsAdded)+len(same.ServersAdded) > 0 {
		t.Errorf("Diff of a configuration with itself: %+v", same)
	}
}
