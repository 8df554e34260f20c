// Package directory reads served domains, and per-mailbox login names and
// servers, from a hoster's own database (PostgreSQL, MySQL/MariaDB, SQLite)
// or LDAP directory: the tables a control panel such as Postfixadmin,
// mailcow or iRedMail already keeps.
//
// Nothing here sits on the request path for domains. A Loader reads the
// whole list in the background (every refresh interval, at once on a
// PostgreSQL NOTIFY), checks every row like a domain in the configuration
// file, and hands a complete Snapshot to whoever builds the catalog, which
// swaps it in as one value. When the source fails, the last good snapshot
// stays in force (and is kept on disk, for a restart while the source is
// down); a refresh that suddenly loses many domains is refused.
//
// Per-mailbox answers cannot be loaded in advance (there may be millions of
// mailboxes), so a Resolver asks the source for one address while the
// client waits, bounded: a cache with a TTL and a negative TTL, one query
// in flight per address, a timeout and a cap on concurrent queries. When
// any bound is hit the client gets the domain's ordinary answer.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// Row is one served domain as the source lists it.
type Row struct {
	// Domain is the served domain, normalised like a domain in the
	// configuration file (lower case, A-labels; "*.parent" for every
	// subdomain).
	Domain string `json:"domain"`
	// Provider is the id of the provider serving Domain; empty for the
	// configuration's first provider.
	Provider string `json:"provider,omitempty"`
	// AliasOf is set when Domain is an alias domain: the domain whose
	// mailboxes its addresses stand for.
	AliasOf string `json:"alias_of,omitempty"`
}

// Mailbox is what the source says about one address: the login name and,
// when given, the hosts of the mailbox's incoming (IMAP, POP3) and outgoing
// (SMTP) servers; ports and security stay the provider's. It is the
// catalog's type, which the renderers read.
type Mailbox = settings.Mailbox

// Source is a database or directory holding domains and mailboxes.
type Source interface {
	// Kind names the source in logs and metrics: postgres, mysql,
	// sqlite or ldap.
	Kind() string
	// Domains reads every served domain. Rows are returned as found;
	// the Loader checks them.
	Domains(ctx context.Context) ([]Row, error)
	// HasMailbox reports whether per-mailbox lookups are configured.
	HasMailbox() bool
	// Mailbox looks one address up; found is false when the source does
	// not know it. The Resolver checks the values.
	Mailbox(ctx context.Context, address string) (mb Mailbox, found bool, err error)
	// Close releases connections.
	Close() error
}

// Notifier is a Source that can tell when its domains changed (PostgreSQL
// LISTEN/NOTIFY).
type Notifier interface {
	// Listen calls changed for every notification until ctx ends,
	// reconnecting on its own. It calls changed after every (re)connect
	// too: notifications sent while it was away are lost.
	Listen(ctx context.Context, changed func(), log *slog.Logger) error
}

// Settings are the directory block with its defaults applied.
type Settings struct {
	Refresh time.Duration
	// MaxDrop is the share (0–1) of domains a refresh may lose at once.
	MaxDrop float64
	// Storage is the snapshot file; empty keeps none.
	Storage string
	Cache   CacheSettings
}

// CacheSettings bound per-mailbox lookups.
type CacheSettings struct {
	Size          int
	TTL           time.Duration
	NegativeTTL   time.Duration
	Timeout       time.Duration
	MaxConcurrent int
}

// SettingsFrom applies the defaults to a checked directory block.
func SettingsFrom(d *config.Directory) Settings {
	s := Settings{
		Refresh: config.DefaultDirectoryRefresh,
		MaxDrop: config.DefaultMaxDrop / 100.0,
		Storage: d.Storage,
		Cache: CacheSettings{
			Size:          orDefault(d.Cache.Size, config.DefaultCacheSize),
			TTL:           orDefault(d.Cache.TTL, config.DefaultCacheTTL),
			NegativeTTL:   orDefault(d.Cache.NegativeTTL, config.DefaultCacheNegativeTTL),
			Timeout:       orDefault(d.Cache.Timeout, config.DefaultLookupTimeout),
			MaxConcurrent: orDefault(d.Cache.MaxConcurrent, config.DefaultMaxConcurrent),
		},
	}
	switch {
	case d.SQL != nil && d.SQL.Refresh > 0:
		s.Refresh = d.SQL.Refresh
	case d.LDAP != nil && d.LDAP.Refresh > 0:
		s.Refresh = d.LDAP.Refresh
	}
	if d.MaxDrop != nil {
		s.MaxDrop = float64(*d.MaxDrop) / 100
	}
	return s
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Open connects to the source a checked directory block names. Connecting
// is lazy: an unreachable database is not an error here but on the first
// query, so that the service can start from its stored snapshot.
func Open(d *config.Directory, s Settings) (Source, error) {
	switch {
	case d.SQL != nil:
		dsn, err := secret(d.SQL.DSN, d.SQL.DSNFile)
		if err != nil {
			return nil, fmt.Errorf("directory.sql.dsn_file: %w", err)
		}
		return openSQL(d.SQL, dsn, s.Cache.MaxConcurrent)
	case d.LDAP != nil:
		pw, err := secret(d.LDAP.BindPassword, d.LDAP.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("directory.ldap.bind_password_file: %w", err)
		}
		return openLDAP(d.LDAP, pw, s.Cache.Timeout)
	}
	return nil, errors.New("directory: no source configured")
}

// secret returns the inline value, or the file's content without the
// trailing line break editors add. It is read when the source is opened,
// at start: the connection pools keep the password they were given.
func secret(inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
