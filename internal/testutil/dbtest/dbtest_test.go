package dbtest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestRestartKeepsData starts each server, writes, kills it the hard way,
// starts it again on the same port and data, and writes again: what the
// directory tests rely on when they take a server away mid-run.
func TestRestartKeepsData(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		p := StartPostgres(t)
		dsn := p.NewDatabase(t)
		ExecPostgres(t, dsn, "CREATE TABLE x (a int); INSERT INTO x VALUES (1)")
		p.Kill()
		p.Start(t)
		ExecPostgres(t, dsn, "INSERT INTO x SELECT a + 1 FROM x")
	})
	t.Run("mariadb", func(t *testing.T) {
		t.Parallel()
		m := StartMariaDB(t)
		dsn := m.NewDatabase(t)
		ExecMySQL(t, dsn, "CREATE TABLE x (a int); INSERT INTO x VALUES (1)")
		m.Kill()
		m.Start(t)
		ExecMySQL(t, dsn, "INSERT INTO x SELECT a + 1 FROM x")
	})
	t.Run("slapd", func(t *testing.T) {
		t.Parallel()
		l := StartLDAP(t, LDAPOptions{SizeLimit: 10})
		dn := "domainName=example.com," + LDAPDomains
		l.Add(t, dn, map[string][]string{"objectClass": {"mailDomain"}, "domainName": {"example.com"}})
		l.Kill()
		l.Start(t)
		l.Delete(t, dn)
	})
}
