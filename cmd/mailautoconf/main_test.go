package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "config.yaml")
	os.WriteFile(good, []byte("providers:\n  - id: mail.example.org\n    domains: [example.org]\n    servers:\n      - {type: imap, host: imap.example.org}\n      - {type: smtp, host: smtp.example.org}\n"), 0o644)
	os.WriteFile(bad, []byte("providers:\n  - id: mail.example.org\n    domains: [example.org]\n    servers:\n      - {type: imap, host: imap.example.org}\n      - type: smtp\n        host: smtp.example.org\n        port: 99999\n"), 0o644)

	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", good}, &out, &errb); code != 0 {
		t.Fatalf("check good: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "OK, 1 provider(s), 1 domain(s)") {
		t.Errorf("check good said %q", out.String())
	}
	if strings.Contains(out.String(), "PACC") {
		t.Errorf("check names PACC for a provider that has a document: %q", out.String())
	}
	// A provider PACC cannot describe (STARTTLS only) is named.
	starttls := filepath.Join(dir, "starttls.yaml")
	os.WriteFile(starttls, []byte("providers:\n  - id: mail.example.org\n    domains: [example.org]\n    servers:\n      - {type: imap, host: imap.example.org, security: starttls}\n      - {type: smtp, host: smtp.example.org, security: starttls}\n"), 0o644)
	out.Reset()
	if code := run([]string{"check", "--config", starttls}, &out, &errb); code != 0 {
		t.Fatalf("check starttls: exit %d: %s", code, errb.String())
	}
	if want := starttls + ": providers[0] (mail.example.org): no PACC document: no server can be described in PACC"; !strings.Contains(out.String(), want) {
		t.Errorf("check said %q, want %q", out.String(), want)
	}
	if !strings.Contains(out.String(), `read at start only (a reload keeps the running values, restart to change them): listen.http="" listen.https="" listen.dns="" listen.metrics="" log.format="" directory=""`) {
		t.Errorf("check does not name the keys read at start only: %q", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != 1 {
		t.Fatalf("check bad: exit %d", code)
	}
	want := bad + ":8: providers[0].servers[1].port: 99999 is not a port"
	if !strings.Contains(errb.String(), want) {
		t.Errorf("check bad said %q, want %q", errb.String(), want)
	}
	if code := run([]string{"check", "--config", filepath.Join(dir, "missing.yaml")}, &out, &errb); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
	if code := run([]string{"check"}, &out, &errb); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "mailautoconf ") {
		t.Errorf("--version: %d %q", code, out.String())
	}
}

// buildBinary builds the real command once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailautoconf")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServeDemoAndGracefulShutdown runs the real binary on the demo
// configuration, follows its printed curl line, and checks that SIGTERM lets
// a request that is already being read finish before the process exits 0.
func TestServeDemoAndGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve", "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0")
	if !hasFlag(t, bin, "dns") {
		cmd = exec.Command(bin, "serve", "--http", "127.0.0.1:0")
	}
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// The first curl line names the listening address.
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`curl '(http://127\.0\.0\.1:\d+/mail/config-v1\.1\.xml\?emailaddress=alice@example\.com)'`)
	var url string
	deadline := time.Now().Add(20 * time.Second)
	for url == "" && time.Now().Before(deadline) && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no curl line printed; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<username>alice@example.com</username>")) {
		t.Fatalf("demo answer %d:\n%s", resp.StatusCode, body)
	}

	// Start a request whose handler is running (it is reading the body)
	// when SIGTERM arrives. net/http drops requests whose header was not
	// complete at shutdown, so the header goes out whole first.
	host := strings.TrimPrefix(strings.SplitN(url, "/mail", 2)[0], "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reqBody := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>bob@example.net</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	fmt.Fprintf(conn, "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.net\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n", len(reqBody))
	io.WriteString(conn, reqBody[:40])
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// New connections are refused once shutdown began.
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted during shutdown")
	}
	io.WriteString(conn, reqBody[40:])
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v\n%s", err, stderr.String())
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !bytes.Contains(b, []byte("bob@example.net")) {
		t.Errorf("in-flight request: %d %s", r.StatusCode, b)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if strings.Contains(stderr.String(), "alice") || strings.Contains(stderr.String(), "bob") {
		t.Errorf("log contains the local part of an address:\n%s", stderr.String())
	}
}

func hasFlag(t *testing.T, bin, name string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("-"+name))
}

// TestCheckDirectory: check reads the directory once and reports counts,
// the first skipped rows and whether the mailbox lookup works; a query
// that fails makes the check fail.
func TestCheckDirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mail.sqlite")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"CREATE TABLE domain (domain TEXT, active INTEGER)",
		"CREATE TABLE mailbox (username TEXT, active INTEGER)",
		"INSERT INTO domain VALUES ('example.com', 1), ('example.net', 1), ('bad domain', 1), ('off.example', 0), ('example.org', 1)",
		"INSERT INTO mailbox VALUES ('postmaster@example.com', 1)",
	} {
		if _, err := conn.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	write := func(query string) string {
		f := filepath.Join(dir, "config.yaml")
		os.WriteFile(f, []byte(`directory:
  sql:
    driver: sqlite
    dsn: "file:`+db+`?mode=ro"
    domains: "`+query+`"
    mailbox: "SELECT username FROM mailbox WHERE username = ? AND active = 1"
providers:
  - id: mail.example.org
    domains: [example.org]
    servers:
      - {type: imap, host: imap.example.org}
      - {type: smtp, host: smtp.example.org}
`), 0o644)
		return f
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", write("SELECT domain FROM domain WHERE active = 1")}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{
		"directory (sqlite): 2 domain(s), 2 row(s) skipped",
		`skipped: "bad domain" is not a domain name`,
		"skipped: example.org: domain example.org is already served by provider mail.example.org",
		"directory (sqlite): mailbox lookup works (postmaster@example.com: found)",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("check said %q, want %q", out.String(), w)
		}
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", write("SELECT name FROM domains")}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "directory: reading the domains from sqlite: domains query: SQL logic error: no such table: domains") {
		t.Errorf("bad query: exit %d, %q", code, errb.String())
	}
}
