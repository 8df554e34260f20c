package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/testutil/dbtest"
)

// iredmail fills a test directory the way iRedMail lays one out: domains
// under o=domains, users under ou=Users of their domain.
func iredmail(t *testing.T, l *dbtest.LDAP, domains int) {
	t.Helper()
	dom := func(name string) string { return "domainName=" + name + "," + dbtest.LDAPDomains }
	var es []dbtest.Entry
	es = append(es,
		dbtest.Entry{DN: dom("example.com"), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"example.com"},
			"accountStatus": {"active"}, "domainAliasName": {"alias.example", "Alias2.Example"}}},
		dbtest.Entry{DN: dom("disabled.example"), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"disabled.example"},
			"accountStatus": {"disabled"}}},
		dbtest.Entry{DN: "ou=Users," + dom("example.com"), Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Users"}}},
	)
	for i := range domains {
		name := fmt.Sprintf("d%03d.example", i)
		es = append(es, dbtest.Entry{DN: dom(name), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {name}, "accountStatus": {"active"}}})
	}
	user := func(local, status string, extra map[string][]string) dbtest.Entry {
		a := map[string][]string{
			"objectClass": {"inetOrgPerson", "mailUser"}, "cn": {local}, "sn": {local},
			"mail": {local + "@example.com"}, "uid": {local}, "accountStatus": {status}, "enabledService": {"mail", "imap", "smtp"},
		}
		for k, v := range extra {
			a[k] = v
		}
		return dbtest.Entry{DN: "mail=" + local + "@example.com,ou=Users," + dom("example.com"), Attrs: a}
	}
	es = append(es,
		user("alice", "active", map[string][]string{"mailHost": {"IMAP2.example.com"}, "shadowAddress": {"a.smith@example.com"}}),
		user("bob", "disabled", nil),
		user("carol", "active", nil),
		user("mallory", "active", map[string][]string{"mailHost": {"imap 2"}}),
	)
	l.AddMany(t, es)
}

// TestLDAP runs the LDAP source against a real slapd holding an iRedMail
// directory: the README's example (more domains than one search may
// return, so paged), mailboxes, escaping, binding, and the server killed
// and restarted under a running loader.
func TestLDAP(t *testing.T) {
	srv := dbtest.StartLDAP(t, dbtest.LDAPOptions{SizeLimit: 50})
	iredmail(t, srv, 120)
	ctx := context.Background()
	block := example(t, "iredmail-ldap.yaml")
	url := []string{"ldaps://ldap.example.net", srv.URL}

	t.Run("iredmail example", func(t *testing.T) {
		src, _ := openWith(t, block, dbtest.LDAPReaderPassword, url...)
		rows, problems, err := Read(ctx, src, nil)
		if err != nil || len(problems) > 0 {
			t.Fatalf("%v %q", err, problems)
		}
		if len(rows) != 123 {
			t.Errorf("%d rows, want 120 + example.com + 2 aliases", len(rows))
		}
		rows = sortedRows(rows)
		for _, w := range []Row{{Domain: "alias.example", AliasOf: "example.com"}, {Domain: "alias2.example", AliasOf: "example.com"},
			{Domain: "d000.example"}, {Domain: "d119.example"}, {Domain: "example.com"}} {
			if !slices.Contains(rows, w) {
				t.Errorf("no row %+v", w)
			}
		}
		if slices.ContainsFunc(rows, func(r Row) bool { return r.Domain == "disabled.example" }) {
			t.Error("disabled domain served")
		}
		for _, tc := range []struct {
			addr string
			want Mailbox
			ok   bool
		}{
			{"alice@example.com", Mailbox{Login: "alice@example.com", Incoming: "IMAP2.example.com"}, true},
			{"a.smith@example.com", Mailbox{Login: "alice@example.com", Incoming: "IMAP2.example.com"}, true}, // shadowAddress
			{"carol@example.com", Mailbox{Login: "carol@example.com"}, true},
			{"bob@example.com", Mailbox{}, false}, // disabled
			{"nobody@example.com", Mailbox{}, false},
			// Filter syntax in an address is escaped, never obeyed.
			{"*", Mailbox{}, false},
			{"x)(mail=*", Mailbox{}, false},
			{"*)(|(mail=*", Mailbox{}, false},
			{`\2a`, Mailbox{}, false},
		} {
			mb, ok, err := src.Mailbox(ctx, tc.addr)
			if err != nil || ok != tc.ok || mb != tc.want {
				t.Errorf("Mailbox(%q) = %+v %v %v; want %+v %v", tc.addr, mb, ok, err, tc.want, tc.ok)
			}
		}
		// Through the resolver, values are checked: mallory's server is
		// not a host name, so mallory gets the domain's answer.
		r := NewResolver(src, CacheSettings{Size: 10, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 2 * time.Second, MaxConcurrent: 2}, nil, (&logs{}).logger())
		if mb, ok := r.Lookup(ctx, "alice@example.com"); !ok || mb.Incoming != "imap2.example.com" {
			t.Errorf("resolver alice = %+v %v", mb, ok)
		}
		if mb, ok := r.Lookup(ctx, "mallory@example.com"); ok {
			t.Errorf("resolver mallory = %+v", mb)
		}
	})

	t.Run("login uid, provider attribute, default filter", func(t *testing.T) {
		srv.Modify(t, "domainName=d007.example,"+dbtest.LDAPDomains, "description", []string{"Other.Example.NET"})
		src, _ := openWith(t, `
directory:
  ldap:
    url: `+srv.URL+`
    bind_dn: cn=vmail,dc=example,dc=net
    bind_password: `+dbtest.LDAPReaderPassword+`
    domains: {base: "o=domains,dc=example,dc=net", attribute: domainName, provider: description}
    mailbox: {base: "o=domains,dc=example,dc=net", filter: "(mail=%s)", login: uid, outgoing: mailHost}
`, "")
		rows, _, err := Read(ctx, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The default filter finds every entry with the attribute,
		// disabled ones too; aliases only when asked for.
		if len(rows) != 122 || !slices.Contains(rows, Row{Domain: "d007.example", Provider: "other.example.net"}) {
			t.Errorf("%d rows; d007: %v", len(rows), slices.ContainsFunc(rows, func(r Row) bool { return r.Domain == "d007.example" }))
		}
		if mb, ok, err := src.Mailbox(ctx, "alice@example.com"); err != nil || !ok || mb != (Mailbox{Login: "alice", Outgoing: "IMAP2.example.com"}) {
			t.Errorf("alice = %+v %v %v", mb, ok, err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		src, _ := openWith(t, block, "not-the-password", url...)
		_, err := src.Domains(ctx)
		if err == nil || !strings.Contains(err.Error(), "binding to "+srv.URL+" as cn=vmail,dc=example,dc=net") ||
			!strings.Contains(err.Error(), "Invalid Credentials") || strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("outage", func(t *testing.T) {
		src, s := openWith(t, block, dbtest.LDAPReaderPassword, url...)
		s.Refresh = 200 * time.Millisecond
		var log logs
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger(), MinRetry: 50 * time.Millisecond})
		if snap := l.Start(ctx); snap == nil || len(snap.Rows) != 123 {
			t.Fatalf("start: %+v", snap)
		}
		running(t, l)
		r := NewResolver(src, CacheSettings{Size: 10, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 500 * time.Millisecond, MaxConcurrent: 2}, l.m, log.logger())
		if _, ok := r.Lookup(ctx, "alice@example.com"); !ok {
			t.Fatal("alice")
		}
		srv.Kill()
		waitFor(t, 5*time.Second, "the outage noticed", func() bool { return value(l.m.Up) == 0 })
		if len(l.Snapshot().Rows) != 123 {
			t.Errorf("in force while down: %d", len(l.Snapshot().Rows))
		}
		if _, ok := r.Lookup(ctx, "carol@example.com"); ok {
			t.Error("carol found while the directory is down")
		}
		srv.Start(t)
		srv.Add(t, "domainName=new.example,"+dbtest.LDAPDomains, map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"new.example"}, "accountStatus": {"active"}})
		waitFor(t, 10*time.Second, "back with new.example", func() bool {
			return value(l.m.Up) == 1 && slices.Contains(names(l.Snapshot()), "new.example")
		})
		// The mailbox lookups reconnect too.
		waitFor(t, 3*ErrorPause, "carol found again", func() bool { _, ok := r.Lookup(ctx, "carol@example.com"); return ok })
	})
}
