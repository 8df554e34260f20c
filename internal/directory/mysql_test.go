package directory

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/testutil/dbtest"
)

// postfixadminMySQLData is postfixadminData in MySQL's words.
const postfixadminMySQLData = `
INSERT INTO domain (domain) VALUES ('example.com'), ('example.org'), ('Bücher.example'), ('alias.example'), ('bad domain.example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', 0);
INSERT INTO domain (domain, backupmx) VALUES ('backup.example', 1);
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
INSERT INTO mailbox (username, local_part, domain) VALUES ('alice@example.com', 'alice', 'example.com');
INSERT INTO mailbox (username, local_part, domain, active) VALUES ('bob@example.com', 'bob', 'example.com', 0);
`

// mailcowData is a mailcow installation: domains, an alias domain, a
// mailbox, a disabled one and a resource.
const mailcowData = `
INSERT INTO domain (domain) VALUES ('example.com'), ('example.org'), ('Bücher.example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', 0);
INSERT INTO domain (domain, backupmx) VALUES ('backup.example', 1);
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES ('old-alias.example', 'example.com', 0);
INSERT INTO mailbox (username, password, local_part, domain) VALUES ('alice@example.com', '', 'alice', 'example.com');
INSERT INTO mailbox (username, password, local_part, domain, active) VALUES ('bob@example.com', '', 'bob', 'example.com', 0);
INSERT INTO mailbox (username, password, local_part, domain, kind) VALUES ('room1@example.com', '', 'room1', 'example.com', 'location');
`

// TestMariaDB runs the MySQL source against a real MariaDB: the README's
// Postfixadmin and mailcow examples, a refresh, and the server killed and
// restarted under a running loader.
func TestMariaDB(t *testing.T) {
	db := dbtest.StartMariaDB(t)
	ctx := context.Background()

	t.Run("postfixadmin example", func(t *testing.T) {
		dsn := db.NewDatabase(t)
		dbtest.ExecMySQL(t, dsn, readFile(t, "postfixadmin.mysql"))
		dbtest.ExecMySQL(t, dsn, postfixadminMySQLData)
		src, _ := openWith(t, example(t, "postfixadmin-mysql.yaml"), dsn)
		checkPostfixadmin(t, src)
	})

	var mailcow string // its DSN, for the later subtests
	t.Run("mailcow example", func(t *testing.T) {
		mailcow = db.NewDatabase(t)
		dbtest.ExecMySQL(t, mailcow, readFile(t, "mailcow.mysql"))
		dbtest.ExecMySQL(t, mailcow, mailcowData)
		src, _ := openWith(t, example(t, "mailcow.yaml"), mailcow)
		rows, problems, err := Read(ctx, src, nil)
		want := []Row{{Domain: "alias.example", AliasOf: "example.com"}, {Domain: "example.com"},
			{Domain: "example.org"}, {Domain: "xn--bcher-kva.example"}}
		if err != nil || len(problems) > 0 || !slices.Equal(sortedRows(rows), want) {
			t.Errorf("rows = %+v, %q, %v; want %+v", sortedRows(rows), problems, err, want)
		}
		for _, tc := range []struct {
			addr  string
			found bool
		}{{"alice@example.com", true}, {"bob@example.com", false}, {"room1@example.com", false}, {"nobody@example.com", false}} {
			mb, found, err := src.Mailbox(ctx, tc.addr)
			if err != nil || found != tc.found || (found && mb.Login != tc.addr) {
				t.Errorf("Mailbox(%s) = %+v, %v, %v; want found=%v", tc.addr, mb, found, err, tc.found)
			}
		}
	})
	if mailcow == "" {
		return
	}

	t.Run("refresh and outage", func(t *testing.T) {
		src, s := openWith(t, example(t, "mailcow.yaml"), mailcow)
		s.Refresh = 200 * time.Millisecond
		var log logs
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger(), MinRetry: 50 * time.Millisecond})
		if snap := l.Start(ctx); len(snap.Rows) != 4 {
			t.Fatalf("start: %v", names(snap))
		}
		running(t, l)
		r := NewResolver(src, CacheSettings{Size: 10, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 500 * time.Millisecond, MaxConcurrent: 2}, l.m, log.logger())
		if _, ok := r.Lookup(ctx, "alice@example.com"); !ok {
			t.Fatal("alice not found")
		}
		dbtest.ExecMySQL(t, mailcow, "INSERT INTO domain (domain) VALUES ('new.example')")
		waitFor(t, 5*time.Second, "new.example served", func() bool { return slices.Contains(names(l.Snapshot()), "new.example") })

		db.Kill()
		waitFor(t, 5*time.Second, "the outage noticed", func() bool { return value(l.m.Up) == 0 })
		if len(l.Snapshot().Rows) != 5 {
			t.Errorf("in force while down: %v", names(l.Snapshot()))
		}
		if _, ok := r.Lookup(ctx, "alice@example.com"); !ok {
			t.Error("cached alice lost while down")
		}
		db.Start(t)
		dbtest.ExecMySQL(t, mailcow, "DELETE FROM domain WHERE domain = 'new.example'")
		defer func() {
			if t.Failed() {
				t.Log(log.String())
			}
		}()
		waitFor(t, 10*time.Second, "back, with the change made meanwhile", func() bool {
			return value(l.m.Up) == 1 && len(l.Snapshot().Rows) == 4
		})
		if !strings.Contains(log.String(), "reachable again") {
			t.Errorf("log:\n%s", log.String())
		}
	})
}

// TestSQLite reads a SQLite file with the pure-Go driver.
func TestSQLite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mail.sqlite")
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"CREATE TABLE domains (name TEXT PRIMARY KEY, provider TEXT, alias_of TEXT, enabled INTEGER NOT NULL DEFAULT 1)",
		"CREATE TABLE users (address TEXT PRIMARY KEY, login TEXT, imap TEXT, smtp TEXT)",
		"INSERT INTO domains (name, provider, alias_of) VALUES ('example.com', NULL, NULL), ('example.org', 'Other.Example.NET', NULL), ('alias.example', '', 'example.com')",
		"INSERT INTO domains (name, enabled) VALUES ('off.example', 0)",
		"INSERT INTO users VALUES ('alice@example.com', 'alice', 'imap2.example.com', NULL), ('bob@example.com', NULL, NULL, NULL)",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	ctx := context.Background()
	for _, param := range []string{"?", "$1"} {
		src, _ := openWith(t, `
directory:
  sql:
    driver: sqlite
    dsn: "file:`+file+`?mode=ro"
    domains: SELECT name, provider, alias_of FROM domains WHERE enabled
    mailbox: SELECT login, imap, smtp FROM users WHERE address = `+param+`
`, "")
		rows, problems, err := Read(ctx, src, nil)
		want := []Row{{Domain: "alias.example", AliasOf: "example.com"}, {Domain: "example.com"}, {Domain: "example.org", Provider: "other.example.net"}}
		if err != nil || len(problems) > 0 || !slices.Equal(sortedRows(rows), want) {
			t.Errorf("rows = %+v, %q, %v; want %+v", sortedRows(rows), problems, err, want)
		}
		mb, found, err := src.Mailbox(ctx, "alice@example.com")
		if err != nil || !found || mb != (Mailbox{Login: "alice", Incoming: "imap2.example.com"}) {
			t.Errorf("%s: alice = %+v %v %v", param, mb, found, err)
		}
		// A NULL login names no mailbox.
		if mb, found, err := src.Mailbox(ctx, "bob@example.com"); err != nil || found {
			t.Errorf("%s: bob = %+v %v %v", param, mb, found, err)
		}
	}

	// A file that is not there is an error, never an empty list.
	src, _ := openWith(t, `
directory:
  sql: {driver: sqlite, dsn: "file:`+file+`.gone?mode=ro", domains: SELECT name FROM domains}
`, "")
	if rows, err := src.Domains(ctx); err == nil {
		t.Errorf("missing file read as %v", rows)
	}
}
