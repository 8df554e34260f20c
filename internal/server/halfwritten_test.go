package server_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// halfConfig is written in place in TestHalfWrittenConfig. Its first 32
// lines are a valid configuration of their own, without the second
// provider (example.org, example.info) and without the STARTTLS
// submission server of the first.
const halfConfig = `# Configuration for the reload test: written in place, line by line,
# as a configuration tool or an editor without atomic saves writes it.
# Its first 32 lines are a complete configuration of their own.
limits:
  rate_per_second: -1
  expensive_per_second: -1
log:
  format: text
metrics:
  per_domain: false
providers:
  - id: mail.example.com
    display_name: Example Mail
    short_name: Example
    documentation_url: https://www.example.com/help/mail
    username: "%EMAILADDRESS%"
    authentication: password-cleartext
    domains:
      - example.com
      - example.net
    servers:
      - type: imap
        host: imap.example.com
        security: tls
      - type: imap
        host: imap.example.com
        security: starttls
      - type: pop3
        host: pop.example.com
        security: tls
      - type: smtp
        host: smtp.example.com
      - type: smtp
        host: smtp.example.com
        security: starttls
  - id: mail.example.org
    domains:
      - example.org
      - example.info
    servers:
      - type: imap
        host: imap.example.org
      - type: smtp
        host: smtp.example.org
`

// TestHalfWrittenConfig: a configuration file rewritten in place is not
// loaded while the write is unfinished, neither by SIGHUP nor by the
// periodic check, even though its first 32 lines are a valid
// configuration that would drop two domains and an SMTP server; once the
// writer closes it, the complete file is loaded. A reload that removes
// domains and servers says so in a warning.
func TestHalfWrittenConfig(t *testing.T) {
	lines := strings.SplitAfter(halfConfig, "\n")
	head := strings.Join(lines[:32], "")
	cut, err := config.Parse("head.yaml", []byte(head))
	if err != nil {
		t.Fatalf("the first 32 lines must be a valid configuration: %v", err)
	}
	if ch := config.Diff(mustParse(t, halfConfig), cut); len(ch.DomainsRemoved) != 2 || len(ch.ServersRemoved) != 3 {
		t.Fatalf("the first 32 lines should lack two domains and servers: %+v", ch)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, []byte(halfConfig))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LogBuffer{}
	srv := testutil.Start(t, cfg, server.Options{
		ConfigPath: path, PollInterval: 50 * time.Millisecond, Settle: 100 * time.Millisecond,
		Logger: logs.Logger(),
	})
	served := func(domain string) bool {
		return testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@"+domain, "").StatusCode == 200
	}
	hasSubmission := func() bool {
		b := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.com", "").Body
		return bytes.Contains(b, []byte("<port>587</port>"))
	}
	reloads := func() float64 {
		return metricValue(t, srv.URL, `mailautoconf_config_reloads_total{result="success"}`) +
			metricValue(t, srv.URL, `mailautoconf_config_reloads_total{result="failure"}`)
	}
	if !served("example.org") || !served("example.info") || !hasSubmission() {
		t.Fatal("the complete configuration is not in force at start")
	}
	before := reloads()

	// Rewrite in place: the first 32 lines, then a pause.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(head); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	// Twenty periodic checks and ten settle intervals.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if !served("example.org") || !served("example.info") || !hasSubmission() {
			t.Fatal("the first 32 lines of a file still being written replaced the configuration")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := reloads(); n != before {
		t.Errorf("%v reloads counted while the file was being written", n-before)
	}
	waiting := "the configuration file is being written; the reload waits until it is complete"
	if !strings.Contains(logs.String(), waiting) {
		t.Errorf("the postponed reload is not logged:\n%s", logs.String())
	}

	// The writer finishes (with one more domain than before) and closes.
	if _, err := f.WriteString(strings.Join(lines[32:], "") + "      - type: pop3\n        host: pop.example.org\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor(t, "the finished file to be loaded", func() bool {
		return bytes.Contains(testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.org", "").Body, []byte("pop.example.org"))
	})
	if !served("example.info") || !hasSubmission() {
		t.Error("the finished file lost a domain or a server")
	}
	out := logs.String()
	if strings.Count(out, `msg="configuration reloaded"`) != 1 || strings.Contains(out, "domains_removed") || strings.Contains(out, "servers_removed") {
		t.Errorf("want exactly one reload, removing nothing:\n%s", out)
	}
	if !strings.Contains(out, `level=INFO msg="configuration reloaded" file=`+path+` servers_added="[mail.example.org: pop3 pop.example.org:995 tls]"`) {
		t.Errorf("the reload does not log the added server:\n%s", out)
	}

	// A deliberate removal, renamed into place, is loaded and warned of.
	testutil.WriteFile(t, path, []byte(head))
	waitFor(t, "the smaller file to be loaded", func() bool { return !served("example.org") })
	out = logs.String()
	for _, want := range []string{
		`level=WARN msg="configuration reloaded" file=` + path,
		`domains_removed="[example.info example.org]"`,
		`servers_removed="[mail.example.com: smtp smtp.example.com:587 starttls mail.example.org: imap imap.example.org:993 tls`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("full.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
