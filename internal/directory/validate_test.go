package directory

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/config"
)

// TestCheckRows: rows are normalised and refused exactly like domains in
// the configuration file.
func TestCheckRows(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50) + ".example"
	rows := []Row{
		{Domain: " Example.COM. "},
		{Domain: "bücher.ch", Provider: "Mail.Example.NET."},
		{Domain: "*.kunden.example.net"},
		{Domain: "alias.example", AliasOf: "example.com"},
		{Domain: "example.com"},                        // twice
		{Domain: "not a domain"},                       // bad
		{Domain: ""},                                   // empty
		{Domain: "x.example", Provider: "not a host!"}, // bad provider
		{Domain: "self.example", AliasOf: "self.example"},
		{Domain: "*.wild.example", AliasOf: "example.com"},
		{Domain: "chain.example", AliasOf: "alias.example"}, // alias of an alias
		{Domain: long},
		{Domain: "refused.example"}, // by the extra check
	}
	got, problems := checkRows(rows, func(r Row) error {
		if r.Domain == "refused.example" {
			return errors.New("refused.example: no such provider")
		}
		return nil
	})
	want := []Row{
		{Domain: "example.com"},
		{Domain: "xn--bcher-kva.ch", Provider: "mail.example.net"},
		{Domain: "*.kunden.example.net"},
		{Domain: "alias.example", AliasOf: "example.com"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", got, want)
	}
	for _, w := range []string{
		"example.com is listed twice",
		`"not a domain" is not a domain name`,
		`"" is not a domain name`,
		`provider "not a host!" is not a provider id`,
		"self.example is an alias of itself",
		"*.wild.example: an alias must be a single domain, not a wildcard",
		"chain.example: alias of alias.example, which is an alias itself",
		"is longer than 234 characters",
		"refused.example: no such provider",
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("no problem %q in %q", w, problems)
		}
	}
	if len(problems) != 9 {
		t.Errorf("%d problems, want 9: %q", len(problems), problems)
	}
}

// TestCheckMailbox: values from the source are served only when they are
// what the configuration file would accept.
func TestCheckMailbox(t *testing.T) {
	for _, tc := range []struct {
		in   Mailbox
		want Mailbox
		err  string
	}{
		{Mailbox{Login: " alice "}, Mailbox{Login: "alice"}, ""},
		{Mailbox{Login: "alice@example.com", Incoming: "IMAP2.Example.COM.", Outgoing: "192.0.2.25"},
			Mailbox{Login: "alice@example.com", Incoming: "imap2.example.com", Outgoing: "192.0.2.25"}, ""},
		{Mailbox{Login: "jürg"}, Mailbox{Login: "jürg"}, ""},
		{Mailbox{Login: ""}, Mailbox{}, "empty login name"},
		{Mailbox{Login: "a\nb"}, Mailbox{}, "control or private-use character"},
		{Mailbox{Login: "a\ue000b"}, Mailbox{}, "control or private-use character"},
		{Mailbox{Login: "%EMAILADDRESS%"}, Mailbox{}, "contains '%'"},
		{Mailbox{Login: "a\xffb"}, Mailbox{}, "not UTF-8"},
		{Mailbox{Login: strings.Repeat("a", MaxLogin+1)}, Mailbox{}, "longer than"},
		{Mailbox{Login: "alice", Incoming: "imap 2"}, Mailbox{}, `server "imap 2" is not a host name`},
		{Mailbox{Login: "alice", Outgoing: "<script>"}, Mailbox{}, "is not a host name"},
	} {
		got, err := checkMailbox(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestSettingsFrom: the defaults fill what the file leaves out.
func TestSettingsFrom(t *testing.T) {
	s := SettingsFrom(&config.Directory{SQL: &config.DirectorySQL{}})
	want := Settings{Refresh: 30 * time.Second, MaxDrop: 0.2, Cache: CacheSettings{
		Size: 100000, TTL: 5 * time.Minute, NegativeTTL: time.Minute, Timeout: time.Second, MaxConcurrent: 16}}
	if s != want {
		t.Errorf("defaults = %+v, want %+v", s, want)
	}
	p := config.Percent(0)
	s = SettingsFrom(&config.Directory{LDAP: &config.DirectoryLDAP{Refresh: time.Minute}, MaxDrop: &p, Storage: "/x",
		Cache: config.MailboxCache{Size: 10, Timeout: 200 * time.Millisecond}})
	want = Settings{Refresh: time.Minute, MaxDrop: 0, Storage: "/x", Cache: CacheSettings{
		Size: 10, TTL: 5 * time.Minute, NegativeTTL: time.Minute, Timeout: 200 * time.Millisecond, MaxConcurrent: 16}}
	if s != want {
		t.Errorf("set = %+v, want %+v", s, want)
	}
}

// TestREADMEExamples: the examples the README shows are the blocks the
// tests run, character for character, and the overview block is valid.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*"))
	if err != nil || len(files) != 5 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		ex, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lang := "yaml"
		if strings.HasSuffix(f, ".pgsql") {
			lang = "sql"
		}
		if !strings.Contains(readme, "```"+lang+"\n"+string(ex)+"```\n") {
			t.Errorf("README does not show %s as it is tested", f)
		}
	}
	start := strings.Index(readme, "```yaml\ndirectory:\n  sql:\n    driver: postgres                   #")
	if start < 0 {
		t.Fatal("overview block not found")
	}
	block := readme[start+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	src, s := openWith(t, block, "postgres://localhost/x")
	if src.Kind() != "postgres" || !src.HasMailbox() || s.MaxDrop != 0.2 || s.Cache.Size != 100000 {
		t.Errorf("overview block read as %s %+v", src.Kind(), s)
	}
}
