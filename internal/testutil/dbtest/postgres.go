package dbtest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server started for a test. The superuser is
// "postgres" with trust authentication on loopback.
type Postgres struct {
	Port int
	dir  string
	bin  string
	acct account
	proc *process
	dbs  atomic.Int32
}

// pgDirs are where Debian installs the server binaries, which are not on
// PATH.
var pgDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// StartPostgres starts a PostgreSQL server (Debian package postgresql) and
// stops it when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := findBinary("postgres", pgDirs...)
	if err != nil {
		missing(t, "PostgreSQL", "postgresql", err)
	}
	initdb, err := findBinary("initdb", filepath.Dir(bin))
	if err != nil {
		missing(t, "PostgreSQL's initdb", "postgresql", err)
	}
	acct, err := unprivileged()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := templates.get("postgres", acct, func(dir string) error {
		return acct.run(initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres",
			"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	})
	if err != nil {
		t.Fatalf("initdb: %v", err)
	}
	p := &Postgres{bin: bin, acct: acct, dir: acct.tempDir(t, "mailautoconf-pg-")}
	if err := copyTree(filepath.Join(tpl, "data"), filepath.Join(p.dir, "data")); err != nil {
		t.Fatal(err)
	}
	p.Port = FreePort(t)
	p.Start(t)
	t.Cleanup(func() {
		if p.proc != nil {
			p.proc.stop(syscall.SIGQUIT, 10*time.Second)
		}
	})
	return p
}

// Start (re)starts the server on its port and data directory, e.g. after
// Kill.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	cmd := p.acct.command(p.bin, "-D", filepath.Join(p.dir, "data"),
		"-p", strconv.Itoa(p.Port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		// A test server keeps nothing worth an fsync; commits still reach
		// the WAL before they return, so a killed server keeps them.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=100",
		"-c", "log_min_messages=warning")
	proc, err := start("postgres", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.waitReady(func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	p.proc = proc
}

// Kill ends the server at once (SIGKILL to postmaster and backends), as a
// crash would: clients see their connections drop.
func (p *Postgres) Kill() {
	if p.proc != nil {
		p.proc.kill()
		p.proc = nil
	}
}

// DSN is a connection URL for database db.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// NewDatabase creates an empty database and returns its DSN, so that tests
// sharing one server do not see each other's tables.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("db%d", p.dbs.Add(1))
	p.Exec(t, "postgres", "CREATE DATABASE "+name)
	return p.DSN(name)
}

// Exec runs SQL statements (several, separated by semicolons, are fine) in
// database db.
func (p *Postgres) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	ExecPostgres(t, p.DSN(db), sql, args...)
}

// ExecPostgres runs SQL against the database of dsn (from NewDatabase).
func ExecPostgres(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("PostgreSQL: %v\n%s", err, sql)
	}
}
