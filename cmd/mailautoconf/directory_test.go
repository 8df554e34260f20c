package main

import (
	"bytes"
	"database/sql"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/testutil"
	"mailautoconf/internal/testutil/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// dirProviders is the configuration's part beside the directory block: one
// provider (the one directory rows without a provider get), a domain of
// its own, and the built-in DNS server's settings.
const dirProviders = `
dns:
  nameservers: [ns1.example.net]
  service_addresses: [127.0.0.1]
providers:
  - id: mail.example.net
    display_name: Example Hosting
    domains: [file.example]
    servers:
      - {type: imap, host: imap.example.net}
      - {type: smtp, host: smtp.example.net}
`

// dirExample reads one of the README's directory blocks (the directory
// package's tests run the same files) and points it at dir: the secret
// file and the storage.
func dirExample(t testing.TB, name, dir string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "internal", "directory", "testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(repl...).Replace(string(b))
	s = strings.ReplaceAll(s, "/etc/mailautoconf/", dir+"/")
	return strings.ReplaceAll(s, "/var/lib/mailautoconf/", dir+"/")
}

// dirSchema reads an SQL file of the directory package's test data.
func dirSchema(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "internal", "directory", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeConfig writes the configuration file and the secret file next to it.
func writeConfig(t testing.TB, dir, block, secret string) string {
	t.Helper()
	for _, f := range []struct{ name, body string }{{"dsn", secret + "\n"}, {"ldap-password", secret + "\n"}, {"config.yaml", block + dirProviders}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.yaml")
}

// lockedBuffer collects a process's log while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is the real binary serving a configuration.
type served struct {
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process exited
	log       *lockedBuffer
	http, dns string
}

var listening = regexp.MustCompile(`msg=listening (http|dns)=(\S+)`)

// serveConfig runs `mailautoconf serve` on a configuration file, with HTTP
// and DNS on free loopback ports, and waits until it listens.
func serveConfig(t testing.TB, bin, file string) *served {
	t.Helper()
	s := &served{log: &lockedBuffer{}}
	s.cmd = exec.Command(bin, "serve", "--config", file, "--http", "127.0.0.1:0", "--dns", "127.0.0.1:0")
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for (s.http == "" || s.dns == "") && time.Now().Before(deadline) && !s.exited() {
		for _, m := range listening.FindAllStringSubmatch(s.log.String(), -1) {
			if m[1] == "http" {
				s.http = m[2]
			} else {
				s.dns = m[2]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.http == "" || s.dns == "" {
		t.Fatalf("serve did not listen; log:\n%s", s.log.String())
	}
	return s
}

func (s *served) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *served) stop() {
	if s.exited() {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// get fetches a path and returns the status and body.
func (s *served) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// autoconfig asks for the Thunderbird document of an address.
func (s *served) autoconfig(t testing.TB, addr string) (int, string) {
	t.Helper()
	return s.get(t, "/mail/config-v1.1.xml?emailaddress="+addr)
}

// metric returns the line of a series on /metrics, "" when absent.
func (s *served) metric(t testing.TB, series string) string {
	t.Helper()
	_, body := s.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// srv asks the built-in DNS server for a name's SRV records over UDP and
// over TCP and returns the rcode and the number of answers (which must be
// the same both ways).
func (s *served) srv(t testing.TB, name string) (int, int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	var rcode, n [2]int
	for i, net := range []string{"udp", "tcp"} {
		r, _, err := (&dns.Client{Net: net}).Exchange(m, s.dns)
		if err != nil {
			t.Fatalf("DNS over %s, %s: %v", net, name, err)
		}
		rcode[i], n[i] = r.Rcode, len(r.Answer)
	}
	if rcode[0] != rcode[1] || n[0] != n[1] {
		t.Errorf("DNS %s: UDP rcode %d with %d answers, TCP rcode %d with %d", name, rcode[0], n[0], rcode[1], n[1])
	}
	return rcode[0], n[0]
}

// logged waits for a log line holding text: the service's log writer
// batches lines for a few milliseconds.
func (s *served) logged(text string) bool {
	for range 100 {
		if strings.Contains(s.log.String(), text) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// eventually polls cond every 20 ms until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}

// TestServeDirectoryPostgres runs the real binary on the README's
// Postfixadmin (PostgreSQL) block against a real PostgreSQL: directory
// domains are served beside the file's in HTTP and DNS, a domain INSERTed
// is served at once through NOTIFY and a DELETEd one is gone; with the
// database down a restart serves the domains kept in storage, and a
// running service keeps serving them (metric, log, /readyz); a truncated
// table is refused.
func TestServeDirectoryPostgres(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	dbtest.ExecPostgres(t, dsn, dirSchema(t, "postfixadmin.pgsql"))
	dbtest.ExecPostgres(t, dsn, dirSchema(t, "examples/postfixadmin-notify.pgsql"))
	dbtest.ExecPostgres(t, dsn, `
INSERT INTO domain (domain) VALUES ('example.com'), ('example.org'), ('Bücher.example'), ('alias.example'), ('file.example'), ('bad domain.example');
INSERT INTO domain (domain, active) VALUES ('inactive.example', false);
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
INSERT INTO mailbox (username, local_part, domain) VALUES ('alice@example.com', 'alice', 'example.com');
`)
	dir := t.TempDir()
	bin := buildBinary(t)
	file := writeConfig(t, dir, dirExample(t, "postfixadmin-postgresql.yaml", dir), dsn)
	s := serveConfig(t, bin, file)

	for _, tc := range []struct {
		addr   string
		status int
	}{
		{"alice@example.com", 200}, {"bob@example.org", 200}, {"carol@bücher.example", 200}, {"dave@alias.example", 200},
		{"erin@file.example", 200}, {"x@inactive.example", 404}, {"x@unknown.example", 404},
	} {
		code, body := s.autoconfig(t, tc.addr)
		if code != tc.status {
			t.Errorf("%s: %d, want %d\n%s", tc.addr, code, tc.status, body)
			continue
		}
		if code == 200 {
			if !strings.Contains(body, "<hostname>imap.example.net</hostname>") {
				t.Errorf("%s: not the provider's settings:\n%s", tc.addr, body)
			}
			testutil.Validate(t, "autoconfig.py", []byte(body), "config.xml")
		}
	}
	for _, tc := range []struct {
		name    string
		answers int
	}{{"_imaps._tcp.example.com", 1}, {"_imaps._tcp.alias.example", 1}, {"_imaps._tcp.file.example", 1}} {
		if rc, n := s.srv(t, tc.name); rc != dns.RcodeSuccess || n != tc.answers {
			t.Errorf("DNS %s: rcode %d, %d answers", tc.name, rc, n)
		}
	}
	// file.example is the file's; the row naming it is skipped, the bad
	// row too, and the log says why.
	if !s.logged("file.example is already served") || !s.logged(`\"bad domain.example\" is not a domain name`) {
		log := s.log.String()
		t.Errorf("skipped rows not logged:\n%s", log)
	}
	if l := s.metric(t, "mailautoconf_directory_up"); l != "mailautoconf_directory_up 1" {
		t.Errorf("metric: %q", l)
	}

	// A new customer domain: the trigger's NOTIFY makes it served at once
	// (the refresh interval is 30s), in HTTP and DNS.
	dbtest.ExecPostgres(t, dsn, "INSERT INTO domain (domain) VALUES ('new.example')")
	took := eventually(t, 2*time.Second, "new.example served", func() bool { c, _ := s.autoconfig(t, "a@new.example"); return c == 200 })
	t.Logf("new.example served %s after the INSERT", took)
	if rc, n := s.srv(t, "_imaps._tcp.new.example"); rc != dns.RcodeSuccess || n != 1 {
		t.Errorf("DNS for new.example: rcode %d, %d answers", rc, n)
	}
	dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain = 'new.example'")
	eventually(t, 2*time.Second, "new.example gone", func() bool { c, _ := s.autoconfig(t, "a@new.example"); return c == 404 })
	if rc, _ := s.srv(t, "_imaps._tcp.new.example"); rc != dns.RcodeRefused && rc != dns.RcodeNameError {
		t.Errorf("DNS for a deleted domain: rcode %d", rc)
	}
	s.stop()

	// The database down at start: the domains kept in storage are served,
	// and the log says so.
	pg.Kill()
	file = writeConfig(t, dir, strings.Replace(dirExample(t, "postfixadmin-postgresql.yaml", dir), "refresh: 30s", "refresh: 1s", 1), dsn)
	s = serveConfig(t, bin, file)
	if !s.logged("serving the domains kept in storage") {
		t.Errorf("start from storage not logged:\n%s", s.log.String())
	}
	for _, a := range []string{"alice@example.com", "dave@alias.example"} {
		if c, body := s.autoconfig(t, a); c != 200 {
			t.Errorf("%s from storage: %d %s", a, c, body)
		}
	}
	if l := s.metric(t, "mailautoconf_directory_up"); l != "mailautoconf_directory_up 0" {
		t.Errorf("metric with the database down: %q", l)
	}
	if c, _ := s.get(t, "/readyz"); c != 200 {
		t.Errorf("/readyz with the database down: %d", c)
	}

	// The database back: read again within the refresh interval and its
	// back-off.
	pg.Start(t)
	eventually(t, 5*time.Second, "the database read again", func() bool { return s.metric(t, "mailautoconf_directory_up") == "mailautoconf_directory_up 1" })
	dbtest.ExecPostgres(t, dsn, "INSERT INTO domain (domain) VALUES ('later.example')")
	eventually(t, 3*time.Second, "later.example served", func() bool { c, _ := s.autoconfig(t, "a@later.example"); return c == 200 })

	// A truncated table is refused: everything stays served.
	dbtest.ExecPostgres(t, dsn, "DELETE FROM domain WHERE domain <> 'ALL'")
	eventually(t, 5*time.Second, "the read refused", func() bool {
		l := s.metric(t, `mailautoconf_directory_loads_total{result="refused"}`)
		return l != "" && !strings.HasSuffix(l, " 0")
	})
	for _, a := range []string{"alice@example.com", "a@later.example", "dave@alias.example"} {
		if c, _ := s.autoconfig(t, a); c != 200 {
			t.Errorf("%s after the refused read: %d", a, c)
		}
	}
	if !s.logged("refusing a read that loses too many domains") {
		t.Errorf("refused read not logged:\n%s", s.log.String())
	}

	// The database killed under the running service: answers continue.
	pg.Kill()
	eventually(t, 5*time.Second, "the outage noticed", func() bool { return s.metric(t, "mailautoconf_directory_up") == "mailautoconf_directory_up 0" })
	if c, _ := s.autoconfig(t, "alice@example.com"); c != 200 {
		t.Errorf("alice@example.com with the database killed: %d", c)
	}
	if c, _ := s.get(t, "/readyz"); c != 200 {
		t.Errorf("/readyz with the database killed: %d", c)
	}
	if !s.logged("cannot read the domains; serving the last good data") {
		t.Errorf("outage not logged:\n%s", s.log.String())
	}
}

// TestServeDirectoryMariaDBAndLDAP: the README's mailcow (MariaDB) and
// iRedMail (OpenLDAP) blocks serve their domains and alias domains through
// the real binary.
func TestServeDirectoryMariaDBAndLDAP(t *testing.T) {
	bin := buildBinary(t)
	t.Run("mailcow", func(t *testing.T) {
		db := dbtest.StartMariaDB(t)
		dsn := db.NewDatabase(t)
		dbtest.ExecMySQL(t, dsn, dirSchema(t, "mailcow.mysql"))
		dbtest.ExecMySQL(t, dsn, `
INSERT INTO domain (domain) VALUES ('example.com'), ('example.org');
INSERT INTO domain (domain, active) VALUES ('inactive.example', 0);
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
`)
		dir := t.TempDir()
		s := serveConfig(t, bin, writeConfig(t, dir, dirExample(t, "mailcow.yaml", dir), dsn))
		checkServed(t, s, map[string]int{"a@example.com": 200, "a@example.org": 200, "a@alias.example": 200, "a@inactive.example": 404, "a@file.example": 200})
	})
	t.Run("iredmail", func(t *testing.T) {
		l := dbtest.StartLDAP(t, dbtest.LDAPOptions{})
		dom := func(name string) string { return "domainName=" + name + "," + dbtest.LDAPDomains }
		l.AddMany(t, []dbtest.Entry{
			{DN: dom("example.com"), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"example.com"},
				"accountStatus": {"active"}, "domainAliasName": {"alias.example"}}},
			{DN: dom("example.org"), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"example.org"}, "accountStatus": {"active"}}},
			{DN: dom("disabled.example"), Attrs: map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"disabled.example"}, "accountStatus": {"disabled"}}},
			{DN: "ou=Users," + dom("example.com"), Attrs: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Users"}}},
			{DN: "mail=alice@example.com,ou=Users," + dom("example.com"), Attrs: map[string][]string{
				"objectClass": {"inetOrgPerson", "mailUser"}, "cn": {"alice"}, "sn": {"alice"}, "mail": {"alice@example.com"}, "uid": {"alice"},
				"accountStatus": {"active"}, "enabledService": {"mail"}, "mailHost": {"imap2.example.net"}, "shadowAddress": {"a.smith@example.com"}}},
		})
		dir := t.TempDir()
		block := dirExample(t, "iredmail-ldap.yaml", dir, "ldaps://ldap.example.net", l.URL)
		s := serveConfig(t, bin, writeConfig(t, dir, block, dbtest.LDAPReaderPassword))
		checkServed(t, s, map[string]int{"a@example.com": 200, "a@example.org": 200, "a@alias.example": 200, "a@disabled.example": 404})
		// The mailbox's server (iRedMail's mailHost), also for its
		// shadow address; the login is the mail attribute.
		for _, addr := range []string{"alice@example.com", "a.smith@example.com"} {
			if _, body := s.autoconfig(t, addr); !strings.Contains(body, "<hostname>imap2.example.net</hostname>") ||
				!strings.Contains(body, "<username>alice@example.com</username>") || !strings.Contains(body, "<hostname>smtp.example.net</hostname>") {
				t.Errorf("%s:\n%s", addr, body)
			}
		}
	})
}

func checkServed(t *testing.T, s *served, want map[string]int) {
	t.Helper()
	for addr, status := range want {
		code, body := s.autoconfig(t, addr)
		if code != status {
			t.Errorf("%s: %d, want %d\n%s\nlog:\n%s", addr, code, status, body, s.log.String())
		}
		if code == 200 {
			testutil.Validate(t, "autoconfig.py", []byte(body), "config.xml")
		}
	}
}

// TestRecordsDirectory: records prints the directory's domains beside the
// file's; with the source unreadable it prints the ones kept in storage
// and says so, and without either it fails.
func TestRecordsDirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mail.sqlite")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"CREATE TABLE domain (domain TEXT, active INTEGER)",
		"INSERT INTO domain VALUES ('example.com', 1), ('alias.example', 1), ('off.example', 0)",
	} {
		if _, err := conn.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	block := `directory:
  sql:
    driver: sqlite
    dsn: "file:` + db + `?mode=ro"
    domains: "SELECT domain FROM domain WHERE active = 1"
  storage: ` + filepath.Join(dir, "directory.json") + `
`
	file := writeConfig(t, dir, block, "")
	out, errs, code := runCLI(t, "records", "--config", file)
	if code != 0 {
		t.Fatalf("records: exit %d: %s", code, errs)
	}
	for _, want := range []string{"_imaps._tcp.example.com.", "_imaps._tcp.alias.example.", "_imaps._tcp.file.example."} {
		if !strings.Contains(out, want) {
			t.Errorf("records lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "off.example") {
		t.Errorf("records prints an inactive domain:\n%s", out)
	}

	// The source gone: the storage (written by a serve) is printed.
	storage := `{"version":1,"rows":[{"domain":"stored.example"}],"loaded":"2026-01-02T03:04:05Z","source":"sqlite"}`
	if err := os.WriteFile(filepath.Join(dir, "directory.json"), []byte(storage), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(db)
	out, errs, code = runCLI(t, "records", "--config", file)
	if code != 0 || !strings.Contains(out, "_imaps._tcp.stored.example.") || strings.Contains(out, "alias.example") ||
		!strings.Contains(errs, "printing the domains kept in storage, read at 2026-01-02T03:04:05Z") {
		t.Errorf("records from storage: exit %d\n%s\n%s", code, out, errs)
	}
	os.Remove(filepath.Join(dir, "directory.json"))
	if _, errs, code = runCLI(t, "records", "--config", file); code != 1 || !strings.Contains(errs, "mailautoconf records: directory:") {
		t.Errorf("records without source and storage: exit %d, %s", code, errs)
	}
}

// mailboxSchema adds a table of per-mailbox login names and servers (a
// hoster sharding mailboxes over imap1/imap2) to Postfixadmin's.
const mailboxSchema = `
CREATE TABLE mailbox_server (
  username  varchar(255) PRIMARY KEY REFERENCES mailbox ON DELETE CASCADE,
  login     varchar(255),
  imap_host varchar(255),
  smtp_host varchar(255)
);
INSERT INTO domain (domain) VALUES ('example.com'), ('alias.example');
INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.com');
INSERT INTO mailbox (username, local_part, domain) VALUES
  ('alice@example.com', 'alice', 'example.com'), ('bob@example.com', 'bob', 'example.com'),
  ('mallory@example.com', 'mallory', 'example.com');
INSERT INTO mailbox_server VALUES
  ('alice@example.com', 'alice.smith', 'imap2.example.net', 'smtp2.example.net'),
  ('mallory@example.com', E'mallory\n<x>', NULL, NULL);
`

const mailboxBlock = `
directory:
  sql:
    driver: postgres
    dsn_file: /etc/mailautoconf/dsn
    domains: |
      SELECT d.domain, NULL, a.target_domain
        FROM domain d LEFT JOIN alias_domain a ON a.alias_domain = d.domain AND a.active
       WHERE d.active AND d.domain <> 'ALL'
    mailbox: |
      SELECT coalesce(s.login, m.username), s.imap_host, s.smtp_host
        FROM mailbox m LEFT JOIN mailbox_server s USING (username)
       WHERE m.username = $1 AND m.active
`

// TestServeDirectoryMailboxes: with a mailbox query, a mailbox the
// directory knows gets its own login name and shard servers in every
// protocol that carries them (autoconfig, Autodiscover POX, the Apple
// profile, the settings page); a mailbox it does not know, one whose row
// fails the checks, and one whose row changes nothing get the domain's
// answer byte for byte (compared with the same provider's file domain, and
// with the same service without a mailbox query).
func TestServeDirectoryMailboxes(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	dbtest.ExecPostgres(t, dsn, dirSchema(t, "postfixadmin.pgsql"))
	dbtest.ExecPostgres(t, dsn, mailboxSchema)
	dir := t.TempDir()
	block := strings.ReplaceAll(mailboxBlock, "/etc/mailautoconf/", dir+"/")
	bin := buildBinary(t)
	s := serveConfig(t, bin, writeConfig(t, dir, block, dsn))

	pox := func(s *served, addr string) string {
		t.Helper()
		body := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` + addr +
			`</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
		resp, err := http.Post("http://"+s.http+"/autodiscover/autodiscover.xml", "text/xml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POX %s: %d %s", addr, resp.StatusCode, b)
		}
		return string(b)
	}
	get := func(s *served, path string) string {
		t.Helper()
		code, body := s.get(t, path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		return body
	}
	answersOf := func(s *served, addr string) map[string]string {
		return map[string]string{
			"autoconfig":   get(s, "/mail/config-v1.1.xml?emailaddress="+addr),
			"pox":          pox(s, addr),
			"mobileconfig": get(s, "/mobileconfig?emailaddress="+addr),
			"page":         get(s, "/?emailaddress="+addr),
		}
	}
	answers := func(addr string) map[string]string { return answersOf(s, addr) }

	alice := answers("alice@example.com")
	for proto, want := range map[string][]string{
		"autoconfig":   {"<hostname>imap2.example.net</hostname>", "<hostname>smtp2.example.net</hostname>", "<username>alice.smith</username>"},
		"pox":          {"<Server>imap2.example.net</Server>", "<Server>smtp2.example.net</Server>", "<LoginName>alice.smith</LoginName>"},
		"mobileconfig": {"<string>imap2.example.net</string>", "<string>smtp2.example.net</string>", "<string>alice.smith</string>"},
		"page":         {"imap2.example.net", "smtp2.example.net", "alice.smith"},
	} {
		for _, w := range want {
			if !strings.Contains(alice[proto], w) {
				t.Errorf("%s for alice lacks %s:\n%s", proto, w, alice[proto])
			}
		}
		if strings.Contains(alice[proto], "imap.example.net") {
			t.Errorf("%s for alice still names the domain's server:\n%s", proto, alice[proto])
		}
	}
	testutil.Validate(t, "autoconfig.py", []byte(alice["autoconfig"]), "config.xml")
	testutil.Validate(t, "autodiscover.py", []byte(alice["pox"]), "autodiscover.xml")
	testutil.Validate(t, "mobileconfig.py", []byte(alice["mobileconfig"]), "alice.mobileconfig", "--for-address", "alice@example.com")

	// Through the alias domain: Autodiscover redirects to the canonical
	// address; autoconfig answers with the canonical mailbox's login.
	if a := get(s, "/mail/config-v1.1.xml?emailaddress=alice@alias.example"); !strings.Contains(a, "<username>alice.smith</username>") {
		t.Errorf("autoconfig for alice@alias.example:\n%s", a)
	}

	// Unknown, invalid row (a line break in the login) and a row that
	// says what the domain says: the domain's answer, byte for byte.
	for _, local := range []string{"nobody", "mallory", "bob"} {
		got := answers(local + "@example.com")
		domain := answers(local + "@file.example")
		for proto := range got {
			want := strings.ReplaceAll(domain[proto], "file.example", "example.com")
			if proto == "mobileconfig" {
				// The profile's identifiers derive from the address.
				continue
			}
			if got[proto] != want {
				t.Errorf("%s for %s@example.com is not the domain's answer:\n%s\nwant\n%s", proto, local, got[proto], want)
			}
		}
		if strings.Contains(got["mobileconfig"], "imap2") || strings.Contains(got["mobileconfig"], "alice.smith") {
			t.Errorf("profile for %s names another mailbox's values", local)
		}
	}
	// The same service without the mailbox query: its answers for these
	// addresses, every protocol (the profile too), are the same bytes.
	plainDir := t.TempDir()
	plainBlock := block[:strings.Index(block, "    mailbox: |")]
	plain := serveConfig(t, bin, writeConfig(t, plainDir, plainBlock, dsn))
	for _, local := range []string{"nobody", "mallory", "bob"} {
		got, want := answers(local+"@example.com"), answersOf(plain, local+"@example.com")
		for proto := range got {
			if got[proto] != want[proto] {
				t.Errorf("%s for %s@example.com differs from the answer without a mailbox query:\n%s\nwant\n%s", proto, local, got[proto], want[proto])
			}
		}
	}
	if a, b := answers("alice@example.com")["autoconfig"], answersOf(plain, "alice@example.com")["autoconfig"]; a == b {
		t.Error("alice's answer is the same without the mailbox query")
	}
	if !s.logged("directory: mailbox row skipped") {
		t.Errorf("the bad mailbox row is not logged:\n%s", s.log.String())
	}
	if strings.Contains(s.log.String(), "alice.smith") || strings.Contains(s.log.String(), "mallory@") {
		t.Errorf("the log names a mailbox:\n%s", s.log.String())
	}
}
