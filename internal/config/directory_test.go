package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const providerYAML = `
providers:
  - id: mail.example.net
    domains: [example.net]
    servers:
      - {type: imap, host: imap.example.net}
      - {type: smtp, host: smtp.example.net}
`

// TestDirectory: the directory block of the README's examples parses into
// the values the directory package reads; paths become absolute.
func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"dsn": "postgres://u:p@db/mail\n", "ldap-password": "secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "config.yaml")
	c, err := Parse(file, []byte(`
directory:
  sql:
    driver: postgres
    dsn_file: dsn
    # Queries may span lines (tabs and line breaks are allowed in them).
    domains: |
      SELECT domain
      	FROM domain WHERE active
    mailbox: "SELECT username FROM mailbox\r\nWHERE username = $1 AND active"
    refresh: 30s
    notify: mailautoconf
  storage: directory.json
  max_drop: 35%
  cache: {size: 1000, ttl: 2m, negative_ttl: 30s, timeout: 500ms, max_concurrent: 4}
`+providerYAML))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Directory
	if d.SQL.Driver != "postgres" || d.SQL.DSNFile != filepath.Join(dir, "dsn") || d.SQL.Refresh != 30*time.Second ||
		d.SQL.Notify != "mailautoconf" || d.Storage != filepath.Join(dir, "directory.json") || *d.MaxDrop != 35 {
		t.Errorf("sql directory = %+v", d)
	}
	if d.Cache != (MailboxCache{Size: 1000, TTL: 2 * time.Minute, NegativeTTL: 30 * time.Second, Timeout: 500 * time.Millisecond, MaxConcurrent: 4}) {
		t.Errorf("cache = %+v", d.Cache)
	}

	c, err = Parse(file, []byte(`
directory:
  ldap:
    url: ldaps://ldap.example.net
    bind_dn: cn=mailautoconf,dc=example,dc=net
    bind_password_file: ldap-password
    domains: {base: "o=domains,dc=example,dc=net", filter: "(objectClass=mailDomain)", attribute: domainName, aliases: domainAliasName}
    mailbox: {base: "o=domains,dc=example,dc=net", filter: "(&(objectClass=mailUser)(|(mail=%s)(shadowAddress=%s)))", login: uid, incoming: mailHost}
  max_drop: 5
`+providerYAML))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Directory.LDAP
	if l.BindPasswordFile != filepath.Join(dir, "ldap-password") || l.Domains.Attribute != "domainName" ||
		l.Domains.Aliases != "domainAliasName" || l.Mailbox.Login != "uid" || l.Mailbox.Incoming != "mailHost" || *c.Directory.MaxDrop != 5 {
		t.Errorf("ldap directory = %+v", l)
	}
}

// TestDirectoryErrors: every mistake is reported with its line and field.
func TestDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "c.yaml")
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"no source", "directory: {storage: x.json}", []string{"c.yaml:1: directory: needs a source: sql or ldap"}},
		{"two sources", `
directory:
  sql: {driver: sqlite, dsn: x.db, domains: "SELECT d FROM t"}
  ldap: {url: "ldap://h", domains: {base: "dc=x", attribute: d}}`, []string{"c.yaml:2: directory: has both sql and ldap; use one source"}},
		{"sql fields", `
directory:
  sql:
    driver: oracle
    refresh: 300ms
    notify: "a\nb"`, []string{
			"c.yaml:4: directory.sql.driver: \"oracle\" is not postgres, mysql or sqlite",
			"c.yaml:3: directory.sql.dsn: required (or dsn_file)",
			"c.yaml:3: directory.sql.domains: required",
			"c.yaml:5: directory.sql.refresh: 300ms is shorter than 1s (write a unit: 30s, 5m)",
			"c.yaml:6: directory.sql.notify: \"a\\nb\" is not a PostgreSQL channel name",
		}},
		{"dsn twice, empty file", `
directory:
  sql: {driver: mysql, dsn: "u@tcp(db)/mail", dsn_file: empty, domains: "SELECT domain FROM domain"}`,
			[]string{"directory.sql.dsn_file: give either it or the inline value, not both"}},
		{"empty dsn file", `
directory:
  sql: {driver: mysql, dsn_file: empty, domains: "SELECT domain FROM domain"}`,
			[]string{"directory.sql.dsn_file: " + filepath.Join(dir, "empty") + " is empty"}},
		{"missing dsn file", `
directory:
  sql: {driver: mysql, dsn_file: nothere, domains: "SELECT domain FROM domain"}`,
			[]string{"directory.sql.dsn_file: cannot be read"}},
		{"mailbox without parameter", `
directory:
  sql: {driver: postgres, dsn: x, domains: "SELECT domain FROM domain", mailbox: "SELECT username FROM mailbox WHERE username = ?"}`,
			[]string{"c.yaml:3: directory.sql.mailbox: takes the address as a parameter: write $1 where it goes"}},
		{"mysql mailbox", `
directory:
  sql: {driver: mariadb, dsn: x, domains: "SELECT domain FROM domain", mailbox: "SELECT username FROM mailbox WHERE username = $1"}`,
			[]string{"directory.sql.mailbox: takes the address as a parameter: write ? where it goes"}},
		{"control character in a query", `
directory:
  sql: {driver: postgres, dsn: x, domains: "SELECT domain\x07 FROM domain"}`,
			[]string{"c.yaml:3: directory.sql.domains: contains a control or private-use character"}},
		{"notify on mysql", `
directory:
  sql: {driver: mysql, dsn: x, domains: "SELECT domain FROM domain", notify: chan}`,
			[]string{"directory.sql.notify: LISTEN/NOTIFY is a PostgreSQL feature; mysql has none"}},
		{"ldap fields", `
directory:
  ldap:
    url: http://ldap.example.net
    bind_password: x
    domains: {base: "not a dn", filter: "(objectClass=mailDomain", attribute: "domain name"}
    mailbox: {base: "o=domains,dc=example,dc=net", filter: "(mail=alice)", login: ""}`, []string{
			"c.yaml:4: directory.ldap.url: \"http://ldap.example.net\" is not an ldap:// or ldaps:// URL",
			"c.yaml:3: directory.ldap.bind_dn: required with a bind password",
			"c.yaml:6: directory.ldap.domains.base: \"not a dn\" is not a DN",
			"c.yaml:6: directory.ldap.domains.filter: \"(objectClass=mailDomain\" is not an LDAP filter",
			"c.yaml:6: directory.ldap.domains.attribute: \"domain name\" is not an attribute name",
			"c.yaml:7: directory.ldap.mailbox.filter: \"(mail=alice)\" has no %s where the address goes",
			"c.yaml:7: directory.ldap.mailbox.login: required: an attribute name",
		}},
		{"ldap bind", `
directory:
  ldap:
    url: ldaps://ldap.example.net
    start_tls: true
    bind_dn: cn=x,dc=example,dc=net
    domains: {base: "dc=example,dc=net", attribute: domainName}
    mailbox: {base: "dc=example,dc=net", filter: "(mail=%s", login: uid}`, []string{
			"c.yaml:5: directory.ldap.start_tls: ldaps:// is TLS already",
			"c.yaml:3: directory.ldap.bind_password_file: required with bind_dn (or bind_password)",
			"c.yaml:8: directory.ldap.mailbox.filter: \"(mail=%s\" is not an LDAP filter",
		}},
		{"storage and cache", `
directory:
  sql: {driver: sqlite, dsn: x.db, domains: "SELECT d FROM t"}
  storage: /nonexistent/dir/snapshot.json
  cache: {size: -1, ttl: -1s, timeout: 30s, max_concurrent: -2}`, []string{
			"c.yaml:4: directory.storage: the directory /nonexistent/dir does not exist",
			"c.yaml:5: directory.cache.size: must not be negative",
			"c.yaml:5: directory.cache.max_concurrent: must not be negative",
			"c.yaml:5: directory.cache.ttl: must not be negative",
			"c.yaml:5: directory.cache.timeout: 30s is longer than 5s",
		}},
		{"max_drop", `
directory:
  sql: {driver: sqlite, dsn: x.db, domains: "SELECT d FROM t"}
  max_drop: 120%`, []string{"c.yaml:4: directory.max_drop: \"120%\" is not a percentage between 0% and 100%"}},
		{"refresh without a unit", `
directory:
  sql: {driver: sqlite, dsn: x.db, domains: "SELECT d FROM t", refresh: 30}`, []string{"c.yaml:3: cannot unmarshal !!int `30` into time.Duration"}},
		{"unknown key", `
directory:
  sql: {driver: sqlite, dsn: x.db, domains: "SELECT d FROM t", query: x}`, []string{"c.yaml:3: field query not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(file, []byte(tc.yaml+"\n"+providerYAML))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := strings.ReplaceAll(err.Error(), file, "c.yaml")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("missing %q in\n%s", w, msg)
				}
			}
		})
	}
}

// TestDirectoryFingerprint: a reload that changes the directory block is
// told apart (it is read at start only), without showing the block's
// secrets.
func TestDirectoryFingerprint(t *testing.T) {
	parse := func(query string) *Config {
		t.Helper()
		c, err := Parse("c.yaml", []byte(`
directory:
  sql: {driver: postgres, dsn: "postgres://u:SECRET@db/mail", domains: "`+query+`"}
`+providerYAML))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b, c := parse("SELECT domain FROM domain"), parse("SELECT domain FROM domain"), parse("SELECT domain FROM domains")
	fa := a.Directory.Fingerprint()
	if fa != b.Directory.Fingerprint() || fa == c.Directory.Fingerprint() || !strings.HasPrefix(fa, "postgres ") || strings.Contains(fa, "SECRET") {
		t.Errorf("fingerprints %q %q %q", fa, b.Directory.Fingerprint(), c.Directory.Fingerprint())
	}
	if (*Directory)(nil).Fingerprint() != "" {
		t.Error("no block, yet a fingerprint")
	}
}
