package server_test

import (
	"database/sql"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"mailautoconf/internal/config"
	"mailautoconf/internal/directory"
	"mailautoconf/internal/server"
	"mailautoconf/internal/settings"
)

// TestMailboxesAcrossReloads: per-mailbox answers (from a real SQLite
// directory) stay on through a reload of the configuration and a change
// of the directory's domains, which both build a new state, and reach a
// directory domain too.
func TestMailboxesAcrossReloads(t *testing.T) {
	mailboxes := sqliteMailboxes(t, "SELECT 'dir.example'", "SELECT login, imap FROM mailbox WHERE username = ?",
		"CREATE TABLE mailbox (username TEXT PRIMARY KEY, login TEXT, imap TEXT)",
		"INSERT INTO mailbox VALUES ('alice@example.com', 'alice.smith', 'imap2.example.com'), ('bob@dir.example', 'bob.b', NULL)",
	)
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetMailboxes(mailboxes); err != nil {
		t.Fatal(err)
	}
	check := func(step, addr string, want ...string) {
		t.Helper()
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/mail/config-v1.1.xml?emailaddress="+addr, nil))
		for _, w := range want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s: %s: %d, lacks %s:\n%s", step, addr, rec.Code, w, rec.Body.String())
			}
		}
	}
	check("start", "alice@example.com", "<hostname>imap2.example.com</hostname>", "<username>alice.smith</username>")
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	check("reload", "alice@example.com", "<hostname>imap2.example.com</hostname>", "<username>alice.smith</username>")
	if err := srv.SetExtraDomains([]settings.Domain{{Name: "dir.example"}}); err != nil {
		t.Fatal(err)
	}
	check("directory domains", "alice@example.com", "<username>alice.smith</username>")
	check("directory domains", "bob@dir.example", "<username>bob.b</username>", "<hostname>imap.example.com</hostname>")
}

// sqliteMailboxes is a directory of mailboxes in a new SQLite database,
// made by the statements given, read with the domains and mailbox queries
// given, behind the resolver (cache) the server uses.
func sqliteMailboxes(tb testing.TB, domains, mailbox string, statements ...string) *directory.Resolver {
	tb.Helper()
	db := filepath.Join(tb.TempDir(), "mail.sqlite")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		tb.Fatal(err)
	}
	for _, q := range statements {
		if _, err := conn.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	conn.Close()
	d := &config.Directory{SQL: &config.DirectorySQL{Driver: "sqlite", DSN: "file:" + db + "?mode=ro",
		Domains: domains, Mailbox: mailbox}}
	s := directory.SettingsFrom(d)
	src, err := directory.Open(d, s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { src.Close() })
	return directory.NewResolver(src, s.Cache, nil, nil)
}
