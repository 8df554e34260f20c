package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"mailautoconf/internal/config"
)

// ldapPageSizes are the page sizes the domains search tries, largest
// first. OpenLDAP's default size limit is 500 entries per search; paging
// (RFC 2696) reads any number of domains as long as the account's total
// limit allows it. A server that caps the page size (OpenLDAP's size.pr)
// answers a larger request with "admin limit exceeded" before the first
// entry, and the next smaller size is tried.
var ldapPageSizes = []uint32{500, 250, 100, 50, 10}

// ldapDialTimeout bounds connecting, StartTLS and binding.
const ldapDialTimeout = 10 * time.Second

// ldapSource searches an LDAP directory over one shared connection (LDAP
// multiplexes requests on a connection), re-opened when it breaks.
type ldapSource struct {
	c        *config.DirectoryLDAP
	password string
	tls      *tls.Config
	timeout  time.Duration // per request, for mailbox lookups
	// lock guards conn; a channel so that a lookup waiting for a
	// connection being opened can give up when its context ends.
	lock chan struct{}
	conn *ldap.Conn
}

func openLDAP(c *config.DirectoryLDAP, password string, timeout time.Duration) (*ldapSource, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("directory.ldap.url: %w", err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory.ldap.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory.ldap.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return &ldapSource{c: c, password: password, tls: tc, timeout: timeout, lock: make(chan struct{}, 1)}, nil
}

func (s *ldapSource) Kind() string     { return "ldap" }
func (s *ldapSource) HasMailbox() bool { return s.c.Mailbox != nil }

func (s *ldapSource) Close() error {
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	if s.conn != nil {
		err := s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// connection returns the open connection, dialling and binding first when
// there is none or it broke.
func (s *ldapSource) connection(ctx context.Context) (*ldap.Conn, error) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.lock }()
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	conn, err := ldap.DialURL(s.c.URL,
		ldap.DialWithDialer(&net.Dialer{Timeout: ldapDialTimeout}),
		ldap.DialWithTLSConfig(s.tls))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.c.URL, err)
	}
	// Bounds the requests that take no context (StartTLS, Bind).
	conn.SetTimeout(ldapDialTimeout)
	if s.c.StartTLS {
		if err := conn.StartTLS(s.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", s.c.URL, err)
		}
	}
	if s.c.BindDN != "" {
		if err := conn.Bind(s.c.BindDN, s.password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("binding to %s as %s: %w", s.c.URL, s.c.BindDN, err)
		}
	}
	s.conn = conn
	return conn, nil
}

// broken drops the connection after a network error, so that the next
// request opens a new one.
func (s *ldapSource) broken(conn *ldap.Conn, err error) {
	if err == nil || !(ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || conn.IsClosing()) {
		return
	}
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	if s.conn == conn {
		s.conn.Close()
		s.conn = nil
	}
}

// pagedSearch runs a search in pages, with the largest page size the
// server accepts.
func (s *ldapSource) pagedSearch(ctx context.Context, req *ldap.SearchRequest, each func(*ldap.Entry)) error {
	var err error
	for _, size := range ldapPageSizes {
		r := *req
		r.Controls = append(slices.Clone(req.Controls), ldap.NewControlPaging(size))
		got := false
		err = s.search(ctx, &r, func(e *ldap.Entry) {
			got = true
			each(e)
		})
		if got || !ldap.IsErrorWithCode(err, ldap.LDAPResultAdminLimitExceeded) {
			return err
		}
	}
	return err
}

// search runs one search (all its pages, when req has a paging control)
// and calls each for every entry. Without an error, the search completed:
// a connection that broke half-way is an error, never a short result.
func (s *ldapSource) search(ctx context.Context, req *ldap.SearchRequest, each func(*ldap.Entry)) error {
	conn, err := s.connection(ctx)
	if err != nil {
		return err
	}
	paging, _ := ldap.FindControl(req.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
	for {
		r := conn.SearchAsync(ctx, req, 64)
		for r.Next() {
			if e := r.Entry(); e != nil {
				each(e)
			}
		}
		err := r.Err()
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // a cancelled search ends without an error
		}
		if err == nil && conn.IsClosing() {
			err = ldap.NewError(ldap.ErrorNetwork, errors.New("connection closed"))
		}
		if err != nil {
			s.broken(conn, err)
			return err
		}
		if paging == nil {
			return nil
		}
		c, ok := ldap.FindControl(r.Controls(), ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(c.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(c.Cookie)
	}
}

// Domains searches the domain entries: each entry serves the values of the
// domain attribute, and the values of the alias attribute as its aliases.
func (s *ldapSource) Domains(ctx context.Context) ([]Row, error) {
	d := s.c.Domains
	filter := d.Filter
	if filter == "" {
		filter = config.DefaultLDAPDomainFilter
	}
	attrs := []string{d.Attribute}
	for _, a := range []string{d.Aliases, d.Provider} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	req := ldap.NewSearchRequest(d.Base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	var rows []Row
	err := s.pagedSearch(ctx, req, func(e *ldap.Entry) {
		domains := e.GetEqualFoldAttributeValues(d.Attribute)
		if len(domains) == 0 {
			return
		}
		provider := ""
		if d.Provider != "" {
			provider = e.GetEqualFoldAttributeValue(d.Provider)
		}
		for _, v := range domains {
			rows = append(rows, Row{Domain: v, Provider: provider})
		}
		if d.Aliases != "" {
			for _, a := range e.GetEqualFoldAttributeValues(d.Aliases) {
				rows = append(rows, Row{Domain: a, Provider: provider, AliasOf: domains[0]})
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("searching %s for %s: %w", d.Base, filter, err)
	}
	return rows, nil
}

// Mailbox searches the entry of one address; the first entry found counts.
func (s *ldapSource) Mailbox(ctx context.Context, addr string) (Mailbox, bool, error) {
	m := s.c.Mailbox
	if m == nil {
		return Mailbox{}, false, nil
	}
	attrs := []string{m.Login}
	for _, a := range []string{m.Incoming, m.Outgoing} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	filter := config.LDAPMailboxFilter(m.Filter, addr)
	req := ldap.NewSearchRequest(m.Base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(s.timeout/time.Second)+1, false, filter, attrs, nil)
	var mb Mailbox
	found := false
	err := s.search(ctx, req, func(e *ldap.Entry) {
		if found {
			return
		}
		login := e.GetEqualFoldAttributeValue(m.Login)
		if login == "" {
			return
		}
		found = true
		mb.Login = login
		if m.Incoming != "" {
			mb.Incoming = e.GetEqualFoldAttributeValue(m.Incoming)
		}
		if m.Outgoing != "" {
			mb.Outgoing = e.GetEqualFoldAttributeValue(m.Outgoing)
		}
	})
	if err != nil && !(found && ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)) {
		return Mailbox{}, false, fmt.Errorf("searching %s: %w", strings.ReplaceAll(m.Filter, "%s", "<address>"), err)
	}
	return mb, found, nil
}
