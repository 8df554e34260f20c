package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
)

// BenchmarkMailbox compares the per-mailbox answer with a warm cache (a
// login name and shard servers from a real SQLite directory, looked up
// once) with the plain domain answer of a server without a directory, for
// every protocol that carries per-mailbox values. The README's target is a
// ratio of at least 0.8 (ns/op of plain / ns/op of mailbox).
func BenchmarkMailbox(b *testing.B) {
	mailboxes := sqliteMailboxes(b, "SELECT 'x.example'", "SELECT login, imap, smtp FROM mailbox WHERE username = ?",
		"CREATE TABLE mailbox (username TEXT PRIMARY KEY, login TEXT, imap TEXT, smtp TEXT)",
		"INSERT INTO mailbox VALUES ('alice@example.com', 'alice.smith', 'imap2.example.com', 'smtp2.example.com')",
	)

	newServer := func(withDirectory bool) http.Handler {
		cfg, err := config.Demo()
		if err != nil {
			b.Fatal(err)
		}
		cfg.Limits.RatePerSecond = -1
		srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if withDirectory {
			if err := srv.SetMailboxes(mailboxes); err != nil {
				b.Fatal(err)
			}
		}
		return srv.Handler()
	}
	plain, mailbox := newServer(false), newServer(true)
	const pox = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	for _, tc := range []struct{ name, method, target, body string }{
		{"autoconfig", "GET", "/mail/config-v1.1.xml?emailaddress=alice@example.com", ""},
		{"pox", "POST", "/autodiscover/autodiscover.xml", pox},
		{"mobileconfig", "GET", "/mobileconfig?emailaddress=alice@example.com", ""},
	} {
		// Warm the cache, and check that the answers differ as meant.
		rec := httptest.NewRecorder()
		mailbox.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body)))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "imap2.example.com") {
			b.Fatalf("%s: %d, no per-mailbox server:\n%s", tc.name, rec.Code, rec.Body.String())
		}
		run := func(b *testing.B, h http.Handler) {
			b.ReportAllocs()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			body := strings.NewReader(tc.body)
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				body.Reset(tc.body)
				req.Body = io.NopCloser(body)
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		}
		b.Run(tc.name+"/plain", func(b *testing.B) { run(b, plain) })
		b.Run(tc.name+"/mailbox", func(b *testing.B) { run(b, mailbox) })
	}
}
