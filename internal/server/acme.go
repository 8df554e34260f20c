package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"mailautoconf/internal/acme"
	"mailautoconf/internal/config"
	"mailautoconf/mobileconfig"
)

// challengePrefix is the path of the ACME HTTP-01 challenge (RFC 8555
// section 8.3) and of the manager's pre-check.
const challengePrefix = "/.well-known/acme-challenge/"

// startACME starts the certificate manager of tls.acme, if configured,
// behind the listeners just opened: their real addresses tell it that the
// challenges are answered here. It contacts no CA itself: the names are
// queued and ordered in the background, so nothing here waits for a
// certificate. The caller holds applyMu.
func (s *Server) startACME() error {
	cfg := s.started.TLS.ACME
	if cfg == nil {
		return nil
	}
	opts := acme.Options{HTTPAddr: s.Addr().String(), Logger: s.log, Registerer: s.metrics.Registry,
		RenewCheckInterval: s.opts.ACMERenewCheck}
	if a := s.HTTPSAddr(); a != nil {
		opts.HTTPSAddr = a.String()
	}
	m, err := acme.New(cfg, opts)
	if err != nil {
		return fmt.Errorf("tls.acme: %w", err)
	}
	s.acme.Store(m)
	s.updateACME(s.State())
	s.log.Info("certificate manager started", "directory", cfg.Directory, "storage", cfg.Storage,
		"on_demand", cfg.OnDemandEnabled(), "orders_per_hour", cfg.OrdersPerHour)
	return nil
}

// stopACME ends the certificate manager's background work: the queue,
// renewals and orders in flight (what they stored is found again by the
// next start). Certificates in memory keep serving the handshakes of the
// drain.
func (s *Server) stopACME() {
	if m := s.acme.Load(); m != nil {
		m.Close()
	}
}

// updateACME gives the manager the names of a state: called at start and
// after every reload, so that new domains are queued and dropped ones no
// longer get certificates.
func (s *Server) updateACME(st *State) {
	if m := s.acme.Load(); m != nil {
		m.Update(acmeNames(st, s.certs.covers))
	}
}

// acmeNames are the names a state wants certificates for: every name the
// catalog serves (autoconfig. and autodiscover. of each served domain and
// alias, and whatever else it lists), tls.acme.names and
// signing.acme_name, in that order, each once. Names below "*.parent"
// domains cannot be listed: the catalog answers for them one at a time, at
// the handshake. Names a certificate file covers are left to the file.
func acmeNames(st *State, covered func(string) bool) acme.Names {
	cfg := st.Catalog.Config
	var list []string
	seen := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			n = strings.ToLower(n)
			if n != "" && !seen[n] {
				seen[n] = true
				list = append(list, n)
			}
		}
	}
	add(st.Catalog.ServedNames()...)
	if cfg.TLS.ACME != nil {
		add(cfg.TLS.ACME.Names...)
	}
	add(cfg.Signing.ACMEName)
	return acme.Names{Listed: list, Served: st.Catalog.ServesHost, Covered: covered}
}

// ManagedNames are the names tls.acme obtains in advance for the
// configuration in force (none without tls.acme): what `check` reports.
// Names a certificate file covers are left out.
func (s *Server) ManagedNames() []string {
	st := s.State()
	if st.Catalog.Config.TLS.ACME == nil {
		return nil
	}
	var out []string
	for _, n := range acmeNames(st, s.certs.covers).Listed {
		if !s.certs.covers(n) {
			out = append(out, n)
		}
	}
	return out
}

// acmeChanged reports whether tls.acme differs between two configurations
// in anything but its names: the manager is started with the section of
// the start, the names follow every reload.
func acmeChanged(a, b *config.Config) bool {
	x, y := a.TLS.ACME, b.TLS.ACME
	if x == nil || y == nil {
		return x != y
	}
	xc, yc := *x, *y
	xc.Names, yc.Names = nil, nil
	return !reflect.DeepEqual(xc, yc)
}

// plainHandler is the plain HTTP listener's handler: the CA's HTTP-01
// requests and the manager's pre-check are answered before anything else
// (the per-client rate limit must not refuse a CA that validates from
// several places at once, and the Autodiscover redirect to HTTPS must not
// catch them), everything else goes the usual way. Each answer for a name
// that gets a certificate is logged, instead of an access line: one or two
// per order, and the first thing to look at when a validation fails.
func (s *Server) plainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, challengePrefix) {
			if m := s.acme.Load(); m != nil {
				// A trusted proxy that rewrote Host names the
				// CA's in X-Forwarded-Host (ServeHTTP does the
				// same for every other request).
				if px := s.State().proxies; px.fromProxy(r) {
					r.Host = px.host(r)
				}
				sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
				if m.HandleHTTPChallenge(sw, r) {
					// Requests for names that get no certificate
					// (scanners, floods: the path is not rate
					// limited) only at debug level.
					level := slog.LevelDebug
					if host, _, err := net.SplitHostPort(r.Host); (err == nil && m.Wanted(host)) || m.Wanted(r.Host) {
						level = slog.LevelInfo
					}
					s.log.Log(r.Context(), level, "ACME challenge", "challenge", "http-01", "host", r.Host, "path", r.URL.Path,
						"status", sw.status, "remote", r.RemoteAddr)
					return
				}
			}
		}
		s.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// tlsConfig is the HTTPS listener's configuration: TLS 1.2 and newer with
// Go's default (modern, AEAD-only for 1.2 ECDHE) cipher suites, HTTP/2, and
// with tls.acme the TLS-ALPN-01 protocol, which the CA's validation
// handshake offers alone (without it in NextProtos Go refuses that
// handshake before a certificate is chosen).
func (s *Server) tlsConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if s.started.TLS.ACME != nil {
		c.NextProtos = append(c.NextProtos, acme.TLSALPNProto)
	}
	return c
}

// getCertificate chooses the certificate of a handshake: a file of
// tls.certificates that covers the client's name wins; otherwise the
// managed certificate (loaded from storage, or ordered now when the name is
// served and on_demand is on; the TLS-ALPN-01 answer while the CA
// validates); otherwise the first file, so that a client asking for another
// name gets a handshake and a clear name mismatch rather than an alert.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := s.acme.Load()
	if m == nil || hello.ServerName == "" {
		// Without SNI (health checks, clients dialling an address)
		// there is no name to manage: the first file, if any.
		return s.certs.getCertificate(hello)
	}
	if c := s.certs.match(hello.ServerName); c != nil && !isChallenge(hello) {
		return c, nil
	}
	cert, err := m.GetCertificate(hello)
	if err == nil {
		if isChallenge(hello) && hello.Conn != nil {
			s.log.Info("ACME challenge", "challenge", "tls-alpn-01", "host", hello.ServerName, "remote", hello.Conn.RemoteAddr().String())
		}
		return cert, nil
	}
	if c := s.certs.first(); c != nil && !isChallenge(hello) {
		return c, nil
	}
	return nil, err
}

// isChallenge reports a TLS-ALPN-01 validation handshake: it offers only
// acme-tls/1 and must get the challenge certificate, never a file's.
func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.TLSALPNProto
}

// acmeSigner gives the Apple profile renderer the managed certificate of
// signing.acme_name: a signer made once per certificate, a new one after a
// renewal, none while the certificate is not obtained yet.
type acmeSigner struct {
	srv  *Server
	name string

	mu       sync.Mutex
	leaf     []byte // the DER of the certificate behind signer
	notAfter time.Time
	signer   *mobileconfig.Signer
	failed   []byte // the DER of a certificate that cannot sign (logged once)
}

func (a *acmeSigner) get() *mobileconfig.Signer {
	m := a.srv.acme.Load()
	if m == nil {
		return nil
	}
	cert, ok := m.Certificate(a.name)
	if !ok || len(cert.Certificate) == 0 {
		return nil
	}
	der := cert.Certificate[0]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.signer != nil && bytes.Equal(a.leaf, der) {
		return a.signer
	}
	if !bytes.Equal(a.failed, der) {
		sg, err := mobileconfig.NewSigner(*cert)
		if err == nil {
			a.leaf, a.signer, a.notAfter = der, sg, time.Time{}
			if cert.Leaf != nil {
				a.notAfter = cert.Leaf.NotAfter
			}
			a.srv.log.Info("profiles signed with managed certificate", "name", a.name, "not_after", a.notAfter)
			return sg
		}
		a.failed = der
		a.srv.log.Error("managed certificate cannot sign profiles", "name", a.name, "err", err)
	}
	// The certificate cannot sign: the previous one while it is valid.
	if a.signer != nil && time.Now().Before(a.notAfter) {
		return a.signer
	}
	return nil
}

// signWithACME makes a state's profile renderer sign with the managed
// certificate of signing.acme_name, when the configuration names one. The
// signer survives reloads: it is remade only when the certificate changes.
func (s *Server) signWithACME(st *State) error {
	name := st.Catalog.Config.Signing.ACMEName
	if name == "" {
		return nil
	}
	if st.Catalog.Config.TLS.ACME == nil {
		return errors.New("signing.acme_name needs tls.acme")
	}
	if s.signer == nil || s.signer.name != name {
		s.signer = &acmeSigner{srv: s, name: name}
	}
	return st.Mobileconfig.SignWith(s.signer.get)
}
