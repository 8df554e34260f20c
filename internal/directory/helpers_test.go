package directory

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mailautoconf/internal/config"
	"mailautoconf/internal/testutil/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// providers completes a directory block into a configuration file.
const providers = `
providers:
  - id: mail.example.net
    domains: [example.net]
    servers:
      - {type: imap, host: imap.example.net}
      - {type: smtp, host: smtp.example.net}
`

// example reads one of the configuration examples the README shows.
func example(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openWith parses block with secret as the content of its secret file
// and opens the source.
func openWith(t testing.TB, block, secret string, repl ...string) (Source, Settings) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"dsn", "ldap-password"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	block = strings.NewReplacer(repl...).Replace(block)
	block = strings.ReplaceAll(block, "/etc/mailautoconf/", dir+"/")
	block = strings.ReplaceAll(block, "/var/lib/mailautoconf/", dir+"/")
	c, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(block+providers))
	if err != nil {
		t.Fatalf("%v\n%s", err, block)
	}
	s := SettingsFrom(c.Directory)
	src, err := Open(c.Directory, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, s
}

// logs collects a component's log lines.
type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// names lists a snapshot's domains, sorted.
func names(s *Snapshot) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, r := range s.Rows {
		out = append(out, r.Domain)
	}
	slices.Sort(out)
	return out
}

// sortedRows sorts rows by domain, for comparisons.
func sortedRows(rows []Row) []Row {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b Row) int { return strings.Compare(a.Domain, b.Domain) })
	return out
}

func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func lookups(m *Metrics, result string) float64 {
	return testutil.ToFloat64(m.Lookups.WithLabelValues(result))
}

func loads(m *Metrics, result string) float64 {
	return testutil.ToFloat64(m.Loads.WithLabelValues(result))
}

// running starts a loader's refresh loop for the rest of the test.
func running(t *testing.T, l *Loader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
