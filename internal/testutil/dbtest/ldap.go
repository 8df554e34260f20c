package dbtest

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

//go:embed iredmail.schema
var iredmailSchema []byte

// LDAP directory names of a test server.
const (
	LDAPBase          = "dc=example,dc=net"
	LDAPDomains       = "o=domains," + LDAPBase
	LDAPAdminDN       = "cn=admin," + LDAPBase
	LDAPAdminPassword = "admin-secret"
	// LDAPReaderDN is an ordinary account that may read the directory,
	// the kind of account a service binds as; the size limits apply to
	// it, unlike to the admin.
	LDAPReaderDN       = "cn=vmail," + LDAPBase
	LDAPReaderPassword = "reader-secret"
)

// LDAP is an OpenLDAP server (slapd, back-mdb) started for a test, holding
// dc=example,dc=net with o=domains below it and the iRedMail schema's mail
// classes loaded.
type LDAP struct {
	Port int
	URL  string // ldap://127.0.0.1:PORT
	dir  string
	bin  string
	proc *process
}

// LDAPOptions tune a test server.
type LDAPOptions struct {
	// SizeLimit is the most entries one search (or one page of a paged
	// search) returns to the reader account; 0 means unlimited. A real
	// OpenLDAP has 500.
	SizeLimit int
}

// StartLDAP starts slapd (Debian packages slapd, ldap-utils) and stops it
// when the test ends.
func StartLDAP(t testing.TB, opts LDAPOptions) *LDAP {
	t.Helper()
	bin, err := findBinary("slapd", "/usr/sbin")
	if err != nil {
		missing(t, "OpenLDAP", "slapd", err)
	}
	schemaDir := "/etc/ldap/schema"
	if _, err := os.Stat(filepath.Join(schemaDir, "cosine.schema")); err != nil {
		missing(t, "OpenLDAP's schema files", "slapd", err)
	}
	moduleDir := "/usr/lib/ldap"
	if _, err := os.Stat(filepath.Join(moduleDir, "back_mdb.so")); err != nil {
		missing(t, "OpenLDAP's back-mdb module", "slapd", err)
	}
	l := &LDAP{bin: bin, dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(l.dir, "iredmail.schema"), iredmailSchema, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(l.dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	limit := "size=unlimited"
	if opts.SizeLimit > 0 {
		// size.pr caps one page, size.prtotal leaves a paged search
		// unlimited in total: what a directory admin sets for
		// accounts that must read everything.
		limit = fmt.Sprintf("size.soft=%d size.hard=%d size.pr=%d size.prtotal=unlimited", opts.SizeLimit, opts.SizeLimit, opts.SizeLimit)
	}
	conf := fmt.Sprintf(`include %[1]s/core.schema
include %[1]s/cosine.schema
include %[1]s/inetorgperson.schema
include %[2]s/iredmail.schema
pidfile %[2]s/slapd.pid
argsfile %[2]s/slapd.args
modulepath %[3]s
moduleload back_mdb
database mdb
maxsize 1073741824
suffix "%[4]s"
rootdn "%[5]s"
rootpw %[6]s
directory %[2]s/db
index objectClass eq
index domainName,mail,domainAliasName eq
limits dn.exact="%[7]s" %[8]s
access to attrs=userPassword by anonymous auth by * none
access to * by * read
`, schemaDir, l.dir, moduleDir, LDAPBase, LDAPAdminDN, LDAPAdminPassword, LDAPReaderDN, limit)
	if err := os.WriteFile(filepath.Join(l.dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Port = FreePort(t)
	l.URL = fmt.Sprintf("ldap://127.0.0.1:%d", l.Port)
	l.Start(t)
	t.Cleanup(func() {
		if l.proc != nil {
			l.proc.stop(syscall.SIGTERM, 10*time.Second)
		}
	})
	l.Add(t, LDAPBase, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}})
	l.Add(t, LDAPDomains, map[string][]string{"objectClass": {"organization"}, "o": {"domains"}})
	l.Add(t, LDAPReaderDN, map[string][]string{
		"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"vmail"},
		"userPassword": {LDAPReaderPassword},
	})
	return l
}

// Start (re)starts slapd on its port and database, e.g. after Kill.
func (l *LDAP) Start(t testing.TB) {
	t.Helper()
	cmd := (account{}).command(l.bin, "-f", filepath.Join(l.dir, "slapd.conf"),
		"-h", l.URL+"/", "-d", "0")
	proc, err := start("slapd", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.waitReady(func(ctx context.Context) error {
		c, err := ldap.DialURL(l.URL)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Bind(LDAPAdminDN, LDAPAdminPassword)
	}); err != nil {
		t.Fatal(err)
	}
	l.proc = proc
}

// Kill ends slapd at once, as a crash would.
func (l *LDAP) Kill() {
	if l.proc != nil {
		l.proc.kill()
		l.proc = nil
	}
}

// admin returns a connection bound as the directory's admin.
func (l *LDAP) admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(l.URL)
	if err != nil {
		t.Fatalf("connecting to slapd: %v", err)
	}
	if err := c.Bind(LDAPAdminDN, LDAPAdminPassword); err != nil {
		c.Close()
		t.Fatalf("binding to slapd: %v", err)
	}
	return c
}

// Add adds one entry.
func (l *LDAP) Add(t testing.TB, dn string, attrs map[string][]string) {
	t.Helper()
	l.AddMany(t, []Entry{{DN: dn, Attrs: attrs}})
}

// Entry is an LDAP entry to add.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// AddMany adds entries over one connection.
func (l *LDAP) AddMany(t testing.TB, entries []Entry) {
	t.Helper()
	c := l.admin(t)
	defer c.Close()
	for _, e := range entries {
		req := ldap.NewAddRequest(e.DN, nil)
		for name, vals := range e.Attrs {
			req.Attribute(name, vals)
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("adding %s: %v", e.DN, err)
		}
	}
}

// Delete removes one entry (without children).
func (l *LDAP) Delete(t testing.TB, dn string) {
	t.Helper()
	c := l.admin(t)
	defer c.Close()
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("deleting %s: %v", dn, err)
	}
}

// Modify replaces the values of one attribute of an entry.
func (l *LDAP) Modify(t testing.TB, dn, attr string, vals []string) {
	t.Helper()
	c := l.admin(t)
	defer c.Close()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace(attr, vals)
	if err := c.Modify(req); err != nil {
		t.Fatalf("modifying %s: %v", dn, err)
	}
}
