package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // MySQL and MariaDB
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL for database/sql, as "pgx"
	_ "modernc.org/sqlite"             // SQLite in pure Go, as "sqlite"

	"mailautoconf/internal/config"
)

// sqlSource runs the configured queries through database/sql.
type sqlSource struct {
	kind    string // postgres, mysql, sqlite
	db      *sql.DB
	dsn     string
	domains string
	mailbox string
	notify  string
}

// driverNames maps a driver family to its database/sql name.
var driverNames = map[string]string{"postgres": "pgx", "mysql": "mysql", "sqlite": "sqlite"}

func openSQL(c *config.DirectorySQL, dsn string, maxConcurrent int) (*sqlSource, error) {
	kind, ok := config.SQLDriver(c.Driver)
	if !ok {
		return nil, fmt.Errorf("directory.sql.driver: %q is not postgres, mysql or sqlite", c.Driver)
	}
	db, err := sql.Open(driverNames[kind], dsn)
	if err != nil {
		// The DSN is not repeated: it may hold a password.
		return nil, fmt.Errorf("directory.sql: the %s DSN cannot be used: %w", kind, redact(err, dsn))
	}
	// One connection for the domain list plus one per concurrent mailbox
	// lookup; idle ones are closed after a while so that a database
	// restart does not leave dead connections behind for long.
	db.SetMaxOpenConns(maxConcurrent + 1)
	db.SetMaxIdleConns(min(maxConcurrent+1, 4))
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	return &sqlSource{kind: kind, db: db, dsn: dsn, domains: c.Domains, mailbox: c.Mailbox, notify: c.Notify}, nil
}

func (s *sqlSource) Kind() string     { return s.kind }
func (s *sqlSource) HasMailbox() bool { return s.mailbox != "" }
func (s *sqlSource) Close() error     { return s.db.Close() }

// Domains runs the domains query. Its first column is the domain, an
// optional second the provider id, an optional third the alias target;
// NULL reads as "not given".
func (s *sqlSource) Domains(ctx context.Context) ([]Row, error) {
	rows, err := s.db.QueryContext(ctx, s.domains)
	if err != nil {
		return nil, fmt.Errorf("domains query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("domains query: %w", err)
	}
	if len(cols) < 1 || len(cols) > 3 {
		return nil, fmt.Errorf("domains query returns %d columns; want the domain, optionally the provider id and the alias target", len(cols))
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Row
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("domains query: %w", err)
		}
		r := Row{Domain: vals[0].String}
		if len(vals) > 1 {
			r.Provider = vals[1].String
		}
		if len(vals) > 2 {
			r.AliasOf = vals[2].String
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		// A connection lost half-way is an error, not a short list:
		// a partial list must never replace a complete one.
		return nil, fmt.Errorf("domains query: %w", err)
	}
	return out, nil
}

// Mailbox runs the mailbox query with the address as its one parameter.
// Its first column is the login name, an optional second the incoming
// and an optional third the outgoing server host. The first row counts.
func (s *sqlSource) Mailbox(ctx context.Context, addr string) (Mailbox, bool, error) {
	if s.mailbox == "" {
		return Mailbox{}, false, nil
	}
	rows, err := s.db.QueryContext(ctx, s.mailbox, addr)
	if err != nil {
		return Mailbox{}, false, fmt.Errorf("mailbox query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Mailbox{}, false, fmt.Errorf("mailbox query: %w", err)
	}
	if len(cols) < 1 || len(cols) > 3 {
		return Mailbox{}, false, fmt.Errorf("mailbox query returns %d columns; want the login name, optionally the incoming and outgoing server", len(cols))
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Mailbox{}, false, fmt.Errorf("mailbox query: %w", err)
		}
		return Mailbox{}, false, nil
	}
	vals := make([]sql.NullString, 3)
	ptrs := make([]any, len(cols))
	for i := range ptrs {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return Mailbox{}, false, fmt.Errorf("mailbox query: %w", err)
	}
	if !vals[0].Valid {
		// A NULL login names no mailbox.
		return Mailbox{}, false, nil
	}
	return Mailbox{Login: vals[0].String, Incoming: vals[1].String, Outgoing: vals[2].String}, true, nil
}

// Listen implements Notifier for PostgreSQL with a channel configured: a
// connection of its own LISTENs, and every NOTIFY on the channel calls
// changed. A lost connection is re-opened with back-off.
func (s *sqlSource) Listen(ctx context.Context, changed func(), log *slog.Logger) error {
	if s.kind != "postgres" || s.notify == "" {
		return nil
	}
	delay := time.Second
	for {
		start := time.Now()
		err := s.listenOnce(ctx, changed)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			delay = time.Second // it worked for a while: retry soon
		}
		// The refreshes report the database's state; this is detail.
		log.Debug("directory: LISTEN connection lost", "channel", s.notify, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (s *sqlSource) listenOnce(ctx context.Context, changed func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.notify}.Sanitize()); err != nil {
		return err
	}
	changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		changed()
	}
}

// redact removes the DSN from a driver's error message, in case the driver
// quoted it with its password.
func redact(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	msg := err.Error()
	if len(dsn) > 3 && strings.Contains(msg, dsn) {
		return errors.New(strings.ReplaceAll(msg, dsn, "<dsn>"))
	}
	return err
}
