package directory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailautoconf/internal/testutil/dbtest"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// postfixadminData fills a Postfixadmin database with the domains and
// mailboxes the tests expect.
const postfixadminData = `
INSERT INTO domain (domain) VALUES ('example.com'), ('example.org'), ('Bücher.example'), ('alias.example'), ('bad domain.example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', false);
INSERT INTO domain (domain, backupmx) VALUES ('backup.example', true);
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
INSERT INTO mailbox (username, local_part, domain) VALUES ('alice@example.com', 'alice', 'example.com');
INSERT INTO mailbox (username, local_part, domain, active) VALUES ('bob@example.com', 'bob', 'example.com', false);
`

// postfixadminRows is what the README's Postfixadmin queries read from
// postfixadminData: no inactive or backup-MX domain, no "ALL", the alias
// with its target, the IDN in A-labels, the bad row skipped.
var postfixadminRows = []Row{
	{Domain: "alias.example", AliasOf: "example.com"},
	{Domain: "example.com"},
	{Domain: "example.org"},
	{Domain: "xn--bcher-kva.example"},
}

// checkPostfixadmin reads a Postfixadmin database through the README's
// example block and checks domains and mailboxes.
func checkPostfixadmin(t *testing.T, src Source) {
	t.Helper()
	ctx := context.Background()
	rows, problems, err := Read(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedRows(rows); !slices.Equal(got, postfixadminRows) {
		t.Errorf("rows:\n got %+v\nwant %+v", got, postfixadminRows)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], `"bad domain.example" is not a domain name`) {
		t.Errorf("problems = %q", problems)
	}
	for _, tc := range []struct {
		addr  string
		found bool
	}{{"alice@example.com", true}, {"bob@example.com", false}, {"carol@example.com", false}} {
		mb, found, err := src.Mailbox(ctx, tc.addr)
		if err != nil || found != tc.found || (found && mb != Mailbox{Login: tc.addr}) {
			t.Errorf("Mailbox(%s) = %+v, %v, %v; want found=%v", tc.addr, mb, found, err, tc.found)
		}
	}
}

// TestPostgres runs the PostgreSQL source against a real server: the
// README's Postfixadmin example, refreshes, NOTIFY, the loss guard and the
// mailbox cache.
func TestPostgres(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	newDB := func(t *testing.T) string {
		dsn := pg.NewDatabase(t)
		dbtest.ExecPostgres(t, dsn, readFile(t, "postfixadmin.pgsql"))
		return dsn
	}

	t.Run("postfixadmin example", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		dbtest.ExecPostgres(t, dsn, postfixadminData)
		src, _ := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
		checkPostfixadmin(t, src)
	})

	t.Run("refresh", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		dbtest.ExecPostgres(t, dsn, postfixadminData)
		src, s := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
		s.Refresh, s.MaxDrop = 300*time.Millisecond, 0.5
		var changes sync.Map
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: (&logs{}).logger(),
			OnChange: func(s *Snapshot) { changes.Store(len(s.Rows), true) }})
		if snap := l.Start(context.Background()); len(snap.Rows) != 4 {
			t.Fatalf("start: %v", names(snap))
		}
		running(t, l)
		start := time.Now()
		dbtest.ExecPostgres(t, dsn, "INSERT INTO domain (domain) VALUES ('new.example')")
		waitFor(t, 5*time.Second, "new.example served", func() bool { return slices.Contains(names(l.Snapshot()), "new.example") })
		t.Logf("INSERT served after %s (refresh %s)", time.Since(start).Round(time.Millisecond), s.Refresh)
		waitFor(t, time.Second, "OnChange called with the new snapshot", func() bool { _, ok := changes.Load(5); return ok })
		dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain = 'example.org'")
		waitFor(t, 5*time.Second, "example.org gone", func() bool { return !slices.Contains(names(l.Snapshot()), "example.org") })
		// A stored snapshot from storage is not needed: none configured.
		if l.Snapshot().Stored {
			t.Error("snapshot marked as stored")
		}
	})

	t.Run("notify", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		dbtest.ExecPostgres(t, dsn, postfixadminData)
		dbtest.ExecPostgres(t, dsn, example(t, "postfixadmin-notify.pgsql"))
		src, s := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
		s.Refresh = time.Hour // only a NOTIFY can bring changes in time
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: (&logs{}).logger()})
		l.Start(context.Background())
		running(t, l)
		// The LISTEN connection comes up in the background; its first
		// refresh shows that it listens.
		waitFor(t, 10*time.Second, "first read after LISTEN", func() bool { return loads(l.m, LoadOK) >= 2 })
		for _, stmt := range []string{
			"INSERT INTO domain (domain) VALUES ('notified.example')",
			"INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('example.org', 'example.com')",
			"DELETE FROM domain WHERE domain = 'notified.example'",
		} {
			before := loads(l.m, LoadOK)
			start := time.Now()
			dbtest.ExecPostgres(t, dsn, stmt)
			waitFor(t, 5*time.Second, "a read after "+stmt, func() bool { return loads(l.m, LoadOK) > before })
			t.Logf("%s: read %s later", stmt, time.Since(start).Round(time.Millisecond))
		}
		want := []Row{{Domain: "alias.example", AliasOf: "example.com"}, {Domain: "example.com"},
			{Domain: "example.org", AliasOf: "example.com"}, {Domain: "xn--bcher-kva.example"}}
		if got := sortedRows(l.Snapshot().Rows); !slices.Equal(got, want) {
			t.Errorf("after the notified changes:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("loss guard", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		for i := range 10 {
			dbtest.ExecPostgres(t, dsn, fmt.Sprintf("INSERT INTO domain (domain) VALUES ('d%d.example')", i))
		}
		src, s := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
		s.Refresh = 200 * time.Millisecond
		var log logs
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger()})
		l.Start(context.Background())
		running(t, l)
		// 1 of 10 (10 %) is within the default 20 %.
		dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain = 'd9.example'")
		waitFor(t, 5*time.Second, "d9 gone", func() bool { return len(l.Snapshot().Rows) == 9 })
		// 3 of 9 (33 %) is not: refused, the 9 stay.
		dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain IN ('d0.example', 'd1.example', 'd2.example')")
		waitFor(t, 5*time.Second, "a refused read", func() bool { return loads(l.m, LoadRefused) >= 1 })
		// A truncated table: refused too.
		dbtest.ExecPostgres(t, dsn, "TRUNCATE domain CASCADE")
		before := loads(l.m, LoadRefused)
		waitFor(t, 5*time.Second, "the truncation refused", func() bool { return loads(l.m, LoadRefused) > before })
		if n := len(l.Snapshot().Rows); n != 9 {
			t.Errorf("%d domains in force after refused reads, want 9", n)
		}
		if value(l.m.Up) != 1 || l.Err() != nil {
			t.Errorf("a refused read is no outage: up=%v err=%v", value(l.m.Up), l.Err())
		}
		for _, w := range []string{"refusing a read that loses too many domains", "lost=3 of=9", "lost=9 of=9", "max_drop_percent=20"} {
			if !strings.Contains(log.String(), w) {
				t.Errorf("log lacks %q:\n%s", w, log.String())
			}
		}
		// Restoring the table ends it.
		for i := range 9 {
			dbtest.ExecPostgres(t, dsn, fmt.Sprintf("INSERT INTO domain (domain) VALUES ('d%d.example')", i))
		}
		dbtest.ExecPostgres(t, dsn, "INSERT INTO domain (domain) VALUES ('d10.example')")
		waitFor(t, 5*time.Second, "restored", func() bool { return len(l.Snapshot().Rows) == 10 })
	})

	t.Run("loss guard against storage at start", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		for i := range 10 {
			dbtest.ExecPostgres(t, dsn, fmt.Sprintf("INSERT INTO domain (domain) VALUES ('d%d.example')", i))
		}
		src, s := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
		if l := NewLoader(src, LoaderOptions{Settings: s, Logger: (&logs{}).logger()}); len(l.Start(context.Background()).Rows) != 10 {
			t.Fatal("first start")
		}
		// Half the table is gone while the service is down: the next
		// start serves the stored ten.
		dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain LIKE 'd_.example' AND domain < 'd5'")
		var log logs
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger()})
		snap := l.Start(context.Background())
		if len(snap.Rows) != 10 || !snap.Stored {
			t.Errorf("start after the loss: %d domains, stored=%v", len(snap.Rows), snap.Stored)
		}
		if !strings.Contains(log.String(), "lost=5 of=10") {
			t.Errorf("log:\n%s", log.String())
		}
	})

	t.Run("bad rows", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		dbtest.ExecPostgres(t, dsn, postfixadminData)
		src, s := openWith(t, `
directory:
  sql:
    driver: postgres
    dsn_file: /etc/mailautoconf/dsn
    domains: "SELECT domain, CASE WHEN domain = 'example.org' THEN 'Other.Example.NET' END, NULL FROM domain WHERE domain <> 'ALL'"
`, dsn)
		var log logs
		l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger(), Check: func(r Row) error {
			if r.Provider != "" && r.Provider != "mail.example.net" {
				return fmt.Errorf("%s: provider %s is not configured", r.Domain, r.Provider)
			}
			return nil
		}})
		snap := l.Start(context.Background())
		want := []string{"alias.example", "backup.example", "example.com", "inactive.example", "xn--bcher-kva.example"}
		if got := names(snap); !slices.Equal(got, want) {
			t.Errorf("served %v, want %v", got, want)
		}
		if value(l.m.Skipped) != 2 {
			t.Errorf("skipped = %v", value(l.m.Skipped))
		}
		for _, w := range []string{"rows skipped", "skipped=2", `\"bad domain.example\" is not a domain name`, "example.org: provider other.example.net is not configured"} {
			if !strings.Contains(log.String(), w) {
				t.Errorf("log lacks %q:\n%s", w, log.String())
			}
		}
	})

	t.Run("columns", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		src, _ := openWith(t, `
directory:
  sql:
    driver: postgres
    dsn_file: /etc/mailautoconf/dsn
    domains: "SELECT 'a.example', 'b', 'c', 'd'"
    mailbox: "SELECT 'a', 'b', 'c', $1::text"
`, dsn)
		if _, err := src.Domains(context.Background()); err == nil || !strings.Contains(err.Error(), "returns 4 columns") {
			t.Errorf("domains: %v", err)
		}
		if _, _, err := src.Mailbox(context.Background(), "a@b.example"); err == nil || !strings.Contains(err.Error(), "returns 4 columns") {
			t.Errorf("mailbox: %v", err)
		}
	})

	t.Run("mailbox cache", func(t *testing.T) {
		t.Parallel()
		dsn := newDB(t)
		dbtest.ExecPostgres(t, dsn, postfixadminData)
		testResolver(t, dsn)
	})
}

// shardSchema adds what a hoster that spreads mailboxes over servers keeps
// next to Postfixadmin's tables, and a mailbox query reading it. Addresses
// starting with "slow" take two seconds to look up.
const shardSchema = `
CREATE TABLE mailbox_server (
  username  varchar(255) PRIMARY KEY REFERENCES mailbox ON DELETE CASCADE,
  login     varchar(255),
  imap_host varchar(255),
  smtp_host varchar(255)
);
INSERT INTO mailbox (username, local_part, domain) VALUES
  ('carol@example.com', 'carol', 'example.com'), ('slow.dave@example.com', 'slow.dave', 'example.com'),
  ('erin@example.com', 'erin', 'example.com'), ('frank@example.com', 'frank', 'example.com'),
  ('mallory@example.com', 'mallory', 'example.com'), ('slow.sam@example.com', 'slow.sam', 'example.com');
INSERT INTO mailbox_server VALUES
  ('alice@example.com', 'alice.smith', 'imap2.example.com', 'smtp2.example.com'),
  ('mallory@example.com', E'mallory\n<x>', NULL, NULL);
`

const shardMailbox = `
directory:
  sql:
    driver: postgres
    dsn_file: /etc/mailautoconf/dsn
    domains: "SELECT domain FROM domain WHERE domain <> 'ALL'"
    mailbox: |
      SELECT coalesce(s.login, m.username), s.imap_host, s.smtp_host
        FROM mailbox m LEFT JOIN mailbox_server s USING (username)
       WHERE m.username = $1 AND m.active
         AND CASE WHEN $1 LIKE 'slow%' THEN (SELECT true FROM pg_sleep(2)) ELSE true END
`

func testResolver(t *testing.T, dsn string) {
	dbtest.ExecPostgres(t, dsn, shardSchema)
	src, _ := openWith(t, shardMailbox, dsn)
	ctx := context.Background()
	newResolver := func(c CacheSettings) (*Resolver, *logs) {
		var log logs
		return NewResolver(src, c, NewMetrics(), log.logger()), &log
	}

	t.Run("found, unknown, cached", func(t *testing.T) {
		r, _ := newResolver(CacheSettings{Size: 100, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 3 * time.Second, MaxConcurrent: 4})
		mb, ok := r.Lookup(ctx, "alice@example.com")
		if want := (Mailbox{Login: "alice.smith", Incoming: "imap2.example.com", Outgoing: "smtp2.example.com"}); !ok || mb != want {
			t.Errorf("alice = %+v %v, want %+v", mb, ok, want)
		}
		if mb, ok := r.Lookup(ctx, "carol@example.com"); !ok || mb != (Mailbox{Login: "carol@example.com"}) {
			t.Errorf("carol = %+v %v", mb, ok)
		}
		for _, a := range []string{"nobody@example.com", "bob@example.com"} { // unknown, inactive
			if mb, ok := r.Lookup(ctx, a); ok {
				t.Errorf("%s = %+v", a, mb)
			}
		}
		// A login with a line break is never served.
		if mb, ok := r.Lookup(ctx, "mallory@example.com"); ok {
			t.Errorf("mallory = %+v", mb)
		}
		if lookups(r.m, LookupFound) != 2 || lookups(r.m, LookupUnknown) != 2 || lookups(r.m, LookupInvalid) != 1 {
			t.Errorf("found=%v unknown=%v invalid=%v", lookups(r.m, LookupFound), lookups(r.m, LookupUnknown), lookups(r.m, LookupInvalid))
		}
		// Again, in another case: all from the cache.
		for _, a := range []string{"Alice@example.com", "carol@example.com", "NOBODY@example.com", "bob@example.com", "mallory@example.com"} {
			r.Lookup(ctx, a)
		}
		if lookups(r.m, LookupCached) != 5 || lookups(r.m, LookupFound) != 2 || value(r.m.CacheSize) != 5 {
			t.Errorf("cached=%v found=%v entries=%v", lookups(r.m, LookupCached), lookups(r.m, LookupFound), value(r.m.CacheSize))
		}
	})

	t.Run("one query per address", func(t *testing.T) {
		r, _ := newResolver(CacheSettings{Size: 100, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 4 * time.Second, MaxConcurrent: 4})
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[Mailbox]int{}
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mb, _ := r.Lookup(ctx, "slow.dave@example.com")
				mu.Lock()
				got[mb]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if got[Mailbox{Login: "slow.dave@example.com"}] != 50 || lookups(r.m, LookupFound) != 1 {
			t.Errorf("50 concurrent lookups: answers %v, %v queries", got, lookups(r.m, LookupFound))
		}
	})

	t.Run("timeout and pause", func(t *testing.T) {
		r, log := newResolver(CacheSettings{Size: 100, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 300 * time.Millisecond, MaxConcurrent: 4})
		start := time.Now()
		if mb, ok := r.Lookup(ctx, "slow.sam@example.com"); ok {
			t.Errorf("slow lookup answered %+v", mb)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("slow lookup took %s with a 300ms timeout", d)
		}
		waitFor(t, 2*time.Second, "the query given up", func() bool { return lookups(r.m, LookupTimeout) == 1 })
		// The source just failed: a new address is not sent to it.
		start = time.Now()
		if _, ok := r.Lookup(ctx, "erin@example.com"); ok || lookups(r.m, LookupSkipped) != 1 || time.Since(start) > 100*time.Millisecond {
			t.Errorf("lookup during the pause: found=%v skipped=%v in %s", ok, lookups(r.m, LookupSkipped), time.Since(start))
		}
		if !strings.Contains(log.String(), "mailbox lookup failed") || strings.Contains(log.String(), "slow.sam") {
			t.Errorf("log (the domain only, no address):\n%s", log.String())
		}
		waitFor(t, 2*ErrorPause, "erin found after the pause", func() bool { _, ok := r.Lookup(ctx, "erin@example.com"); return ok })
	})

	t.Run("concurrency cap", func(t *testing.T) {
		for _, max := range []int{1, 2} {
			r, _ := newResolver(CacheSettings{Size: 100, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: 600 * time.Millisecond, MaxConcurrent: max})
			go r.Lookup(ctx, "slow.dave@example.com") // holds one slot until its timeout
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			_, ok := r.Lookup(ctx, "frank@example.com")
			took := time.Since(start)
			t.Logf("max_concurrent %d: a second lookup took %s (found=%v)", max, took.Round(time.Millisecond), ok)
			switch {
			case max == 1 && (took < 300*time.Millisecond):
				t.Errorf("with one slot taken, a lookup did not wait for it (%s)", took)
			case max == 2 && (!ok || took > 300*time.Millisecond):
				t.Errorf("with a free slot, a lookup waited %s (found=%v)", took, ok)
			}
		}
	})

	t.Run("expired entries refresh in the background", func(t *testing.T) {
		r, _ := newResolver(CacheSettings{Size: 100, TTL: 300 * time.Millisecond, NegativeTTL: 300 * time.Millisecond, Timeout: 2 * time.Second, MaxConcurrent: 4})
		if mb, _ := r.Lookup(ctx, "alice@example.com"); mb.Incoming != "imap2.example.com" {
			t.Fatalf("alice = %+v", mb)
		}
		if _, ok := r.Lookup(ctx, "grace@example.com"); ok {
			t.Fatal("grace exists before she is added")
		}
		dbtest.ExecPostgres(t, dsn, `
UPDATE mailbox_server SET imap_host = 'imap3.example.com' WHERE username = 'alice@example.com';
INSERT INTO mailbox (username, local_part, domain) VALUES ('grace@example.com', 'grace', 'example.com');`)
		// Within the TTLs the cache answers: the old values.
		if mb, _ := r.Lookup(ctx, "alice@example.com"); mb.Incoming != "imap2.example.com" {
			t.Errorf("alice within the TTL = %+v", mb)
		}
		if _, ok := r.Lookup(ctx, "grace@example.com"); ok {
			t.Error("grace within the negative TTL found")
		}
		time.Sleep(400 * time.Millisecond)
		// Expired: answered at once from the old entry, refreshed behind.
		start := time.Now()
		if mb, _ := r.Lookup(ctx, "alice@example.com"); mb.Incoming != "imap2.example.com" || time.Since(start) > 50*time.Millisecond {
			t.Errorf("expired alice = %+v after %s", mb, time.Since(start))
		}
		waitFor(t, 2*time.Second, "alice's new server", func() bool { mb, _ := r.Lookup(ctx, "alice@example.com"); return mb.Incoming == "imap3.example.com" })
		waitFor(t, 2*time.Second, "grace found", func() bool { _, ok := r.Lookup(ctx, "grace@example.com"); return ok })
	})
}

// TestPostgresOutage takes the database away under a running loader and
// resolver, restarts the service while it is down, and brings it back.
func TestPostgresOutage(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	dbtest.ExecPostgres(t, dsn, readFile(t, "postfixadmin.pgsql"))
	dbtest.ExecPostgres(t, dsn, postfixadminData)
	src, s := openWith(t, example(t, "postfixadmin-postgresql.yaml"), dsn)
	s.Refresh = 200 * time.Millisecond
	s.Cache.Timeout = 500 * time.Millisecond
	storage := s.Storage
	if !strings.HasSuffix(storage, "directory.json") {
		t.Fatalf("storage = %q", storage)
	}
	var log logs
	l := NewLoader(src, LoaderOptions{Settings: s, Logger: log.logger(), MinRetry: 50 * time.Millisecond})
	if snap := l.Start(context.Background()); len(snap.Rows) != 4 {
		t.Fatalf("start: %v", names(snap))
	}
	if _, err := os.Stat(storage); err != nil {
		t.Fatalf("snapshot not stored: %v", err)
	}
	running(t, l)
	r := NewResolver(src, s.Cache, l.m, log.logger())
	ctx := context.Background()
	if _, ok := r.Lookup(ctx, "alice@example.com"); !ok {
		t.Fatal("alice not found")
	}

	pg.Kill()
	waitFor(t, 5*time.Second, "mailautoconf_directory_up 0", func() bool { return value(l.m.Up) == 0 })
	if got := names(l.Snapshot()); len(got) != 4 {
		t.Errorf("in force while down: %v", got)
	}
	if !strings.Contains(log.String(), "cannot read the domains; serving the last good data") {
		t.Errorf("log:\n%s", log.String())
	}
	// Mailboxes: the cached one still answers; a new one gets the
	// domain's answer quickly.
	if _, ok := r.Lookup(ctx, "alice@example.com"); !ok {
		t.Error("alice not answered from the cache while the database is down")
	}
	start := time.Now()
	if _, ok := r.Lookup(ctx, "new@example.com"); ok || time.Since(start) > time.Second {
		t.Errorf("new address while down: found=%v after %s", ok, time.Since(start))
	}
	// refresh × 10 = 2s without success: a warning.
	waitFor(t, 6*time.Second, "the staleness warning", func() bool { return strings.Contains(log.String(), "no successful read for a long time") })
	if n := loads(l.m, LoadError); n < 3 {
		t.Errorf("%v failed reads: no retries", n)
	}

	// A restart while the database is down starts from storage.
	var log2 logs
	l2 := NewLoader(src, LoaderOptions{Settings: s, Logger: log2.logger(), MinRetry: 50 * time.Millisecond, StartTimeout: 2 * time.Second})
	snap := l2.Start(context.Background())
	if snap == nil || !snap.Stored || !slices.Equal(sortedRows(snap.Rows), postfixadminRows) {
		t.Fatalf("start with the database down: %+v", snap)
	}
	if !strings.Contains(log2.String(), "not read at start; serving the domains kept in storage") || value(l2.m.Up) != 0 {
		t.Errorf("up=%v log:\n%s", value(l2.m.Up), log2.String())
	}
	running(t, l2)

	// The database comes back: both recover, and a change made
	// meanwhile is served.
	pg.Start(t)
	dbtest.ExecPostgres(t, dsn, "INSERT INTO domain (domain) VALUES ('back.example')")
	for i, l := range []*Loader{l, l2} {
		waitFor(t, 10*time.Second, fmt.Sprintf("loader %d back", i+1), func() bool {
			return value(l.m.Up) == 1 && slices.Contains(names(l.Snapshot()), "back.example")
		})
	}
	if !strings.Contains(log.String(), "directory: reachable again") || l2.Snapshot().Stored {
		t.Errorf("log:\n%s", log.String())
	}
	if _, ok := r.Lookup(ctx, "new@example.com"); ok {
		t.Error("new@example.com found")
	}
	waitFor(t, 2*ErrorPause, "erin... alice looked up again", func() bool { _, ok := r.Lookup(ctx, "alice@example.com"); return ok })
}
