package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.yaml.in/yaml/v3"
)

// Directory reads served domains, and optionally per-mailbox login names
// and servers, from the hoster's own database (PostgreSQL, MySQL/MariaDB,
// SQLite) or LDAP directory, next to the providers listed in the file.
//
// Only one source is read: a control panel keeps its domains in one place.
// The values here are checked, not defaulted: zero values mean "the
// default" (the Default* constants below), applied where the directory is
// built, so that check, serve and a reload agree on one reading.
type Directory struct {
	SQL  *DirectorySQL  `yaml:"sql"`
	LDAP *DirectoryLDAP `yaml:"ldap"`
	// Storage is a file where the last good list of domains is kept, so
	// that the service starts with it when the source is down.
	Storage string `yaml:"storage"`
	// MaxDrop is the share of domains a refresh may lose at once; a
	// refresh that loses more is refused (a truncated table must not take
	// customers offline). Default DefaultMaxDrop.
	MaxDrop *Percent `yaml:"max_drop"`
	// Cache bounds the per-mailbox lookups.
	Cache MailboxCache `yaml:"cache"`
}

// DirectorySQL reads domains and mailboxes with SQL queries.
type DirectorySQL struct {
	// Driver is postgres, mysql (MariaDB too) or sqlite.
	Driver string `yaml:"driver"`
	// DSN is the connection string in the driver's own form; DSNFile
	// names a file holding it, to keep the password out of this file.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// Domains returns one row per served domain: the domain, optionally
	// the id of the provider serving it, optionally the domain it is an
	// alias of. NULL or empty columns mean "not given".
	Domains string `yaml:"domains" text:"lines"`
	// Mailbox, optional, takes the address as its one parameter ($1 for
	// PostgreSQL, ? for MySQL and SQLite) and returns the login name,
	// optionally the incoming and the outgoing server host of that
	// mailbox.
	Mailbox string `yaml:"mailbox" text:"lines"`
	// Refresh is how often the domains are read again.
	Refresh time.Duration `yaml:"refresh"`
	// Notify is a PostgreSQL channel: a NOTIFY on it refreshes at once.
	Notify string `yaml:"notify"`
}

// DirectoryLDAP reads domains and mailboxes from an LDAP directory.
type DirectoryLDAP struct {
	URL              string `yaml:"url"` // ldap:// or ldaps://
	BindDN           string `yaml:"bind_dn"`
	BindPassword     string `yaml:"bind_password"`
	BindPasswordFile string `yaml:"bind_password_file"`
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool `yaml:"start_tls"`
	// CAFile holds extra PEM roots to trust for ldaps:// and StartTLS.
	CAFile  string        `yaml:"ca_file"`
	Domains LDAPDomains   `yaml:"domains"`
	Mailbox *LDAPMailbox  `yaml:"mailbox"`
	Refresh time.Duration `yaml:"refresh"`
}

// LDAPDomains is the search for served domains: every entry found under
// Base matching Filter serves the values of Attribute.
type LDAPDomains struct {
	Base      string `yaml:"base"`
	Filter    string `yaml:"filter"`
	Attribute string `yaml:"attribute"`
	// Aliases names an attribute whose values are alias domains of the
	// entry's domain (iRedMail: domainAliasName).
	Aliases string `yaml:"aliases"`
	// Provider names an attribute holding the id of the provider that
	// serves the entry's domain.
	Provider string `yaml:"provider"`
}

// LDAPMailbox is the search for one mailbox: "%s" in Filter is replaced
// by the address, escaped for LDAP filters.
type LDAPMailbox struct {
	Base   string `yaml:"base"`
	Filter string `yaml:"filter"`
	// Login names the attribute holding the login name.
	Login string `yaml:"login"`
	// Incoming and Outgoing name attributes holding the host of the
	// mailbox's incoming (IMAP/POP3) and outgoing (SMTP) servers, for
	// hosters that spread mailboxes over servers (iRedMail: mailHost).
	Incoming string `yaml:"incoming"`
	Outgoing string `yaml:"outgoing"`
}

// MailboxCache bounds the per-mailbox lookups, which happen while a client
// waits: answers are cached, and a lookup that takes too long or finds the
// source busy gives the domain's ordinary answer.
type MailboxCache struct {
	Size          int           `yaml:"size"`
	TTL           time.Duration `yaml:"ttl"`
	NegativeTTL   time.Duration `yaml:"negative_ttl"`
	Timeout       time.Duration `yaml:"timeout"`
	MaxConcurrent int           `yaml:"max_concurrent"`
}

// Defaults of the directory block.
const (
	DefaultDirectoryRefresh = 30 * time.Second
	DefaultMaxDrop          = 20 // percent
	DefaultCacheSize        = 100000
	DefaultCacheTTL         = 5 * time.Minute
	DefaultCacheNegativeTTL = time.Minute
	DefaultLookupTimeout    = time.Second
	DefaultMaxConcurrent    = 16
	DefaultLDAPDomainFilter = "(objectClass=*)"

	// MinDirectoryRefresh keeps a refresh from hammering the database.
	MinDirectoryRefresh = time.Second
	// MaxLookupTimeout keeps a per-mailbox lookup well inside the HTTP
	// write timeout.
	MaxLookupTimeout = 5 * time.Second
)

// Percent is a share written as "20%" or 20.
type Percent float64

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	f, err := strconv.ParseFloat(s, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return fmt.Errorf("line %d: directory.max_drop: %q is not a percentage between 0%% and 100%%", n.Line, n.Value)
	}
	*p = Percent(f)
	return nil
}

// SQL drivers by the names accepted in directory.sql.driver.
var sqlDrivers = map[string]string{
	"postgres": "postgres", "postgresql": "postgres", "pgx": "postgres",
	"mysql": "mysql", "mariadb": "mysql",
	"sqlite": "sqlite", "sqlite3": "sqlite",
}

// SQLDriver returns the driver family (postgres, mysql or sqlite) of a
// driver name, and false for an unknown name.
func SQLDriver(name string) (string, bool) {
	d, ok := sqlDrivers[strings.ToLower(strings.TrimSpace(name))]
	return d, ok
}

// LDAPMailboxFilter puts an address into a mailbox filter, escaped so
// that no address can change the filter's meaning.
func LDAPMailboxFilter(filter, address string) string {
	return strings.ReplaceAll(filter, "%s", ldap.EscapeFilter(address))
}

func (v *validator) directory(c *Config) {
	d := c.Directory
	if d == nil {
		return
	}
	switch {
	case d.SQL == nil && d.LDAP == nil:
		v.errorf("directory", "needs a source: sql or ldap")
	case d.SQL != nil && d.LDAP != nil:
		v.errorf("directory", "has both sql and ldap; use one source")
	}
	if d.SQL != nil {
		v.directorySQL("directory.sql", d.SQL)
	}
	if d.LDAP != nil {
		v.directoryLDAP("directory.ldap", d.LDAP)
	}
	if d.Storage != "" {
		d.Storage = v.abs(d.Storage)
		if st, err := os.Stat(filepath.Dir(d.Storage)); err != nil || !st.IsDir() {
			v.errorf("directory.storage", "the directory %s does not exist", filepath.Dir(d.Storage))
		} else if st, err := os.Stat(d.Storage); err == nil && st.IsDir() {
			v.errorf("directory.storage", "%s is a directory; name a file", d.Storage)
		}
	}
	cc := d.Cache
	if cc.Size < 0 {
		v.errorf("directory.cache.size", "must not be negative")
	}
	if cc.MaxConcurrent < 0 {
		v.errorf("directory.cache.max_concurrent", "must not be negative")
	}
	for _, f := range []struct {
		path string
		val  time.Duration
	}{{"directory.cache.ttl", cc.TTL}, {"directory.cache.negative_ttl", cc.NegativeTTL}, {"directory.cache.timeout", cc.Timeout}} {
		if f.val < 0 {
			v.errorf(f.path, "must not be negative")
		}
	}
	if cc.Timeout > MaxLookupTimeout {
		v.errorf("directory.cache.timeout", "%s is longer than %s: clients would wait too long", cc.Timeout, MaxLookupTimeout)
	}
}

// secret checks an inline value against a file naming the same secret:
// exactly one, and the file readable.
func (v *validator) secret(path, inline, fileKey string, file *string) {
	switch {
	case inline != "" && *file != "":
		v.errorf(path+"."+fileKey, "give either it or the inline value, not both")
	case *file != "":
		*file = v.abs(*file)
		if b, err := os.ReadFile(*file); err != nil {
			v.errorf(path+"."+fileKey, "cannot be read: %v", err)
		} else if strings.TrimSpace(string(b)) == "" {
			v.errorf(path+"."+fileKey, "%s is empty", *file)
		}
	}
}

func (v *validator) refresh(path string, d time.Duration) {
	if d != 0 && d < MinDirectoryRefresh {
		v.errorf(path, "%s is shorter than %s (write a unit: 30s, 5m)", d, MinDirectoryRefresh)
	}
}

func (v *validator) directorySQL(path string, s *DirectorySQL) {
	drv, ok := SQLDriver(s.Driver)
	switch {
	case s.Driver == "":
		v.errorf(path+".driver", "required (postgres, mysql or sqlite)")
	case !ok:
		v.errorf(path+".driver", "%q is not postgres, mysql or sqlite", s.Driver)
	}
	if s.DSN == "" && s.DSNFile == "" {
		v.errorf(path+".dsn", "required (or dsn_file)")
	}
	v.secret(path, s.DSN, "dsn_file", &s.DSNFile)
	if strings.TrimSpace(s.Domains) == "" {
		v.errorf(path+".domains", "required: a query returning one row per served domain")
	}
	if s.Mailbox != "" && ok {
		want := "?"
		if drv == "postgres" {
			want = "$1"
		}
		if !strings.Contains(s.Mailbox, want) && !(drv == "sqlite" && strings.Contains(s.Mailbox, "$1")) {
			v.errorf(path+".mailbox", "takes the address as a parameter: write %s where it goes", want)
		}
	}
	v.refresh(path+".refresh", s.Refresh)
	if s.Notify != "" {
		if ok && drv != "postgres" {
			v.errorf(path+".notify", "LISTEN/NOTIFY is a PostgreSQL feature; %s has none", s.Driver)
		}
		if len(s.Notify) > 63 || strings.ContainsFunc(s.Notify, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			v.errorf(path+".notify", "%q is not a PostgreSQL channel name", s.Notify)
		}
	}
}

func (v *validator) directoryLDAP(path string, l *DirectoryLDAP) {
	u, err := url.Parse(l.URL)
	switch {
	case l.URL == "":
		v.errorf(path+".url", "required (ldap://host or ldaps://host)")
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		v.errorf(path+".url", "%q is not an ldap:// or ldaps:// URL", l.URL)
	case l.StartTLS && u.Scheme == "ldaps":
		v.errorf(path+".start_tls", "ldaps:// is TLS already")
	}
	if l.BindDN != "" {
		if _, err := ldap.ParseDN(l.BindDN); err != nil {
			v.errorf(path+".bind_dn", "%q is not a DN: %v", l.BindDN, err)
		}
		if l.BindPassword == "" && l.BindPasswordFile == "" {
			v.errorf(path+".bind_password_file", "required with bind_dn (or bind_password)")
		}
	} else if l.BindPassword != "" || l.BindPasswordFile != "" {
		v.errorf(path+".bind_dn", "required with a bind password")
	}
	v.secret(path, l.BindPassword, "bind_password_file", &l.BindPasswordFile)
	if l.CAFile != "" {
		l.CAFile = v.abs(l.CAFile)
		if _, err := os.ReadFile(l.CAFile); err != nil {
			v.errorf(path+".ca_file", "cannot be read: %v", err)
		}
	}
	dp := path + ".domains"
	v.ldapDN(dp+".base", l.Domains.Base)
	if l.Domains.Filter != "" {
		if _, err := ldap.CompileFilter(l.Domains.Filter); err != nil {
			v.errorf(dp+".filter", "%q is not an LDAP filter: %v", l.Domains.Filter, err)
		}
	}
	v.ldapAttr(dp+".attribute", l.Domains.Attribute, true)
	v.ldapAttr(dp+".aliases", l.Domains.Aliases, false)
	v.ldapAttr(dp+".provider", l.Domains.Provider, false)
	if m := l.Mailbox; m != nil {
		mp := path + ".mailbox"
		v.ldapDN(mp+".base", m.Base)
		switch {
		case m.Filter == "":
			v.errorf(mp+".filter", "required, with %%s where the address goes, e.g. (mail=%%s)")
		case !strings.Contains(m.Filter, "%s"):
			v.errorf(mp+".filter", "%q has no %%s where the address goes", m.Filter)
		default:
			if _, err := ldap.CompileFilter(LDAPMailboxFilter(m.Filter, "alice@example.com")); err != nil {
				v.errorf(mp+".filter", "%q is not an LDAP filter: %v", m.Filter, err)
			}
		}
		v.ldapAttr(mp+".login", m.Login, true)
		v.ldapAttr(mp+".incoming", m.Incoming, false)
		v.ldapAttr(mp+".outgoing", m.Outgoing, false)
	}
	v.refresh(path+".refresh", l.Refresh)
}

func (v *validator) ldapDN(path, dn string) {
	if dn == "" {
		v.errorf(path, "required: the DN to search below")
		return
	}
	if _, err := ldap.ParseDN(dn); err != nil {
		v.errorf(path, "%q is not a DN: %v", dn, err)
	}
}

// ldapAttr checks an attribute description (RFC 4512: a name or an OID,
// with options after ';').
func (v *validator) ldapAttr(path, name string, required bool) {
	if name == "" {
		if required {
			v.errorf(path, "required: an attribute name")
		}
		return
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ';') {
			v.errorf(path, "%q is not an attribute name", name)
			return
		}
	}
}

// Fingerprint names a directory block in a few characters that change
// with any of its values: the source's kind and a hash of the block (which
// holds secrets, so it is not shown itself). Empty without a block.
func (d *Directory) Fingerprint() string {
	if d == nil {
		return ""
	}
	kind := "ldap"
	if d.SQL != nil {
		kind = d.SQL.Driver
	}
	b, _ := json.Marshal(d) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return kind + " " + hex.EncodeToString(sum[:6])
}
