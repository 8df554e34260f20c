package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver the service uses too
)

// MariaDB is a MariaDB server started for a test; "root" logs in over
// loopback TCP without a password.
type MariaDB struct {
	Port int
	dir  string
	bin  string
	acct account
	proc *process
	dbs  atomic.Int32
}

// StartMariaDB starts a MariaDB server (Debian package mariadb-server) and
// stops it when the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	bin, err := findBinary("mariadbd", "/usr/sbin")
	if err != nil {
		missing(t, "MariaDB", "mariadb-server", err)
	}
	install, err := findBinary("mariadb-install-db", "/usr/bin")
	if err != nil {
		missing(t, "MariaDB's mariadb-install-db", "mariadb-server", err)
	}
	acct, err := unprivileged()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := templates.get("mariadb", acct, func(dir string) error {
		return acct.run(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
			"--auth-root-authentication-method=normal", "--skip-test-db",
			"--skip-name-resolve", "--innodb-log-file-size=4M")
	})
	if err != nil {
		t.Fatalf("mariadb-install-db: %v", err)
	}
	m := &MariaDB{bin: bin, acct: acct, dir: acct.tempDir(t, "mailautoconf-mariadb-")}
	if err := copyTree(filepath.Join(tpl, "data"), filepath.Join(m.dir, "data")); err != nil {
		t.Fatal(err)
	}
	m.Port = FreePort(t)
	m.Start(t)
	t.Cleanup(func() {
		if m.proc != nil {
			m.proc.stop(syscall.SIGTERM, 10*time.Second)
		}
	})
	return m
}

// Start (re)starts the server on its port and data directory.
func (m *MariaDB) Start(t testing.TB) {
	t.Helper()
	cmd := m.acct.command(m.bin, "--no-defaults",
		"--datadir="+filepath.Join(m.dir, "data"),
		"--socket="+filepath.Join(m.dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(m.dir, "mysqld.pid"),
		"--port="+strconv.Itoa(m.Port), "--bind-address=127.0.0.1",
		"--skip-name-resolve", "--skip-log-bin",
		"--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M",
		"--innodb-flush-log-at-trx-commit=2", "--performance-schema=OFF")
	proc, err := start("mariadbd", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.waitReady(func(ctx context.Context) error {
		db, err := sql.Open("mysql", m.DSN(""))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	m.proc = proc
}

// Kill ends the server at once, as a crash would.
func (m *MariaDB) Kill() {
	if m.proc != nil {
		m.proc.kill()
		m.proc = nil
	}
}

// DSN is a go-sql-driver/mysql DSN for database db ("" for none).
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.Port, db)
}

// NewDatabase creates an empty database and returns its DSN.
func (m *MariaDB) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("db%d", m.dbs.Add(1))
	ExecMySQL(t, m.DSN(""), "CREATE DATABASE "+name+" CHARACTER SET utf8mb4")
	return m.DSN(name)
}

// ExecMySQL runs SQL statements (several, separated by semicolons, are
// fine) against the database of dsn.
func ExecMySQL(t testing.TB, dsn, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sql.Open("mysql", dsn+sep+"multiStatements=true")
	if err != nil {
		t.Fatalf("MariaDB: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, query, args...); err != nil {
		t.Fatalf("MariaDB: %v\n%s", err, query)
	}
}
