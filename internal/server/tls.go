package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/metrics"
)

// loadedCert is a certificate with the files it came from, so that a change
// of either file can be noticed.
type loadedCert struct {
	pair    config.CertPair
	cert    *tls.Certificate
	modTime [2]time.Time
	size    [2]int64
}

// loadCerts loads and checks every pair: the key must match the
// certificate, and an expired certificate is refused, since serving it
// would only make every client fail.
func loadCerts(pairs []config.CertPair) ([]*loadedCert, error) {
	out := make([]*loadedCert, 0, len(pairs))
	for _, p := range pairs {
		lc, err := loadCert(p)
		if err != nil {
			return nil, err
		}
		out = append(out, lc)
	}
	return out, nil
}

func loadCert(p config.CertPair) (*loadedCert, error) {
	lc := &loadedCert{pair: p}
	for i, f := range []string{p.Cert, p.Key} {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		lc.modTime[i], lc.size[i] = st.ModTime(), st.Size()
	}
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", p.Cert, p.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", p.Cert, err)
		}
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate %s expired on %s", p.Cert, cert.Leaf.NotAfter.Format(time.DateOnly))
	}
	lc.cert = &cert
	return lc, nil
}

// changed reports whether a file of the pair differs from when it was
// loaded.
func (c *loadedCert) changed() bool {
	for i, f := range []string{c.pair.Cert, c.pair.Key} {
		st, err := os.Stat(f)
		if err != nil {
			return false // being replaced; look again next time
		}
		if !st.ModTime().Equal(c.modTime[i]) || st.Size() != c.size[i] {
			return true
		}
	}
	return false
}

// certStore holds the certificates in force and picks one per handshake by
// SNI. It is swapped as a whole when files change.
type certStore struct {
	mu    sync.RWMutex
	certs []*loadedCert
}

func (s *certStore) set(certs []*loadedCert, m *metrics.Metrics) {
	s.mu.Lock()
	s.certs = certs
	s.mu.Unlock()
	m.CertNotAfter.Reset()
	for _, c := range certs {
		m.CertNotAfter.WithLabelValues(filepath.Base(c.pair.Cert)).Set(float64(c.cert.Leaf.NotAfter.Unix()))
	}
}

func (s *certStore) snapshot() []*loadedCert {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.certs
}

// refresh reloads pairs whose files changed. A pair that fails to load
// (half-written file, wrong key) keeps its old certificate; the error is
// returned for the log.
func (s *certStore) refresh(m *metrics.Metrics) (bool, error) {
	old := s.snapshot()
	next := make([]*loadedCert, len(old))
	changed := false
	var errs []error
	for i, c := range old {
		next[i] = c
		if !c.changed() {
			continue
		}
		n, err := loadCert(c.pair)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[i] = n
		changed = true
	}
	if changed {
		s.set(next, m)
	}
	return changed, errors.Join(errs...)
}

// getCertificate chooses the certificate for the client's SNI name: the
// first one valid for it, otherwise the first one (clients without SNI, or
// names without a certificate, still get a handshake and a clear name
// mismatch instead of a TLS alert).
func (s *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.match(hello.ServerName); c != nil {
		return c, nil
	}
	if c := s.first(); c != nil {
		return c, nil
	}
	return nil, errors.New("no TLS certificate configured")
}

// match returns the first certificate valid for name, nil for none.
func (s *certStore) match(name string) *tls.Certificate {
	if name == "" {
		return nil
	}
	for _, c := range s.snapshot() {
		if c.cert.Leaf.VerifyHostname(name) == nil {
			return c.cert
		}
	}
	return nil
}

// covers reports whether a certificate file covers name: such a name gets
// no managed certificate.
func (s *certStore) covers(name string) bool { return s.match(name) != nil }

// first is the first certificate, nil without any.
func (s *certStore) first() *tls.Certificate {
	if certs := s.snapshot(); len(certs) > 0 {
		return certs[0].cert
	}
	return nil
}
