package settings

import (
	"context"
	"testing"
)

// mailboxes is a directory's answers by address.
type mailboxes map[string]Mailbox

func (m mailboxes) Lookup(_ context.Context, addr string) (Mailbox, bool) {
	mb, ok := m[addr]
	return mb, ok
}

// TestWithMailbox: a known mailbox gets a provider with its login name
// and, where given, its servers' hosts (once per mailbox and catalog); an
// alias address is looked up as its canonical address; anything else is
// left as it was.
func TestWithMailbox(t *testing.T) {
	cat := New(parse(t, twoProviders))
	cat.Mailboxes = mailboxes{
		"alice@example.com": {Login: "alice.smith", Incoming: "imap2.example.com", Outgoing: "smtp2.example.com"},
		"bob@example.com":   {Login: "bob"},
	}
	ctx := context.Background()
	at := func(addr string) Settings {
		t.Helper()
		s, err := cat.ForAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		addr, login, imap, smtp string
	}{
		{"alice@example.com", "alice.smith", "imap2.example.com", "smtp2.example.com"},
		{"alice@example.org", "alice.smith", "imap2.example.com", "smtp2.example.com"}, // alias of example.com
		{"bob@example.com", "bob", "imap.example.com", "smtp.example.com"},
	} {
		s := cat.WithMailbox(ctx, at(tc.addr))
		p := s.Provider
		if p.Variant == nil || p.Index != 0 {
			t.Fatalf("%s: provider %+v", tc.addr, p)
		}
		if in, out := p.Incoming()[0], p.Outgoing()[0]; in.Username != tc.login || out.Username != tc.login || in.Host != tc.imap || out.Host != tc.smtp ||
			p.Preferred("imap")[0].Host != tc.imap {
			t.Errorf("%s: incoming %+v, outgoing %+v", tc.addr, in, out)
		}
		if again := cat.WithMailbox(ctx, at(tc.addr)); again.Provider != p {
			t.Errorf("%s: a second provider for the same mailbox", tc.addr)
		}
	}
	if base := cat.Providers[0]; base.Variant != nil || base.Servers[0].Host != "imap.example.com" || base.Servers[0].Username != "%EMAILADDRESS%" {
		t.Errorf("the catalog's provider changed: %+v", base.Servers)
	}
	for _, addr := range []string{"nobody@example.com", "alice@other.test"} {
		if s := at(addr); cat.WithMailbox(ctx, s) != s {
			t.Errorf("%s: settings changed", addr)
		}
	}
	if s := at("alice@example.com"); New(parse(t, twoProviders)).WithMailbox(ctx, s) != s {
		t.Error("settings changed without a lookup")
	}
}
