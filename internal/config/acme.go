package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"mailautoconf/internal/address"
)

// ACME configures automatic certificates (tls.acme): the service obtains
// and renews a certificate for autoconfig.<domain> and autodiscover.<domain>
// of every served domain (aliases included) from an ACME CA such as Let's
// Encrypt, plus the names listed in Names.
//
// Certificates from files (tls.certificates) keep working beside it and win
// for the names they cover.
type ACME struct {
	// Email is the account's contact address (optional; Let's Encrypt no
	// longer sends expiry mail, other CAs may).
	Email string `yaml:"email"`
	// Directory is the CA's ACME directory URL.
	Directory string `yaml:"directory"`
	// CARoots are PEM files of extra roots trusted when talking to the ACME
	// server (a private CA, or a test CA such as Pebble).
	CARoots []string `yaml:"ca_roots"`
	// Storage is the directory holding the account, the keys and the
	// certificates. Replicas that share it share the certificates, and its
	// lock files make sure a name is ordered once.
	Storage string `yaml:"storage"`
	// OnDemand obtains a certificate at the first TLS handshake for a
	// served name that has none yet, instead of waiting for its turn in
	// the background queue. Names under "*.parent" domains are known only
	// at the handshake, so they are issued only this way.
	OnDemand *bool `yaml:"on_demand"`
	// Names are more host names to obtain certificates for, e.g. the
	// provider's own host for the settings page.
	Names []string `yaml:"names"`
	// OrdersPerHour paces new orders (background queue, on-demand and
	// renewals together).
	OrdersPerHour int `yaml:"orders_per_hour"`
	// Precheck makes sure, before an order, that the name reaches this
	// service over HTTP: a failed validation costs the CA's failed
	// validation limit, a pre-check costs nothing.
	Precheck *bool `yaml:"precheck"`
	// PrecheckPort is the port the pre-check connects to: the one the CA
	// uses for HTTP-01, always 80 for a public CA.
	PrecheckPort int `yaml:"precheck_port"`
	// Resolver is the DNS server (host:port) the pre-check asks; the
	// system's resolver when empty.
	Resolver string `yaml:"resolver"`
}

// Defaults of the ACME section.
const (
	// LetsEncrypt is Let's Encrypt's production directory.
	LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
	// LetsEncryptStaging is Let's Encrypt's staging directory: the same
	// protocol and much higher limits, certificates no client trusts.
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
	// DefaultACMEStorage is where the account, keys and certificates are
	// kept; systemd's StateDirectory=mailautoconf makes it writable.
	DefaultACMEStorage = "/var/lib/mailautoconf/acme"
	// DefaultOrdersPerHour is one new order a minute: 180 per three
	// hours, well inside Let's Encrypt's 300 new orders per account per
	// three hours, leaving room for a second tool on the same account.
	DefaultOrdersPerHour = 60
	// DefaultPrecheckPort is the port of the HTTP-01 challenge (RFC 8555).
	DefaultPrecheckPort = 80
)

// OnDemandEnabled reports whether certificates are obtained at the first
// handshake (the default).
func (a *ACME) OnDemandEnabled() bool { return a.OnDemand == nil || *a.OnDemand }

// PrecheckEnabled reports whether names are checked before an order (the
// default).
func (a *ACME) PrecheckEnabled() bool { return a.Precheck == nil || *a.Precheck }

// acme validates tls.acme and signing.acme_name, fills in the defaults and
// makes the paths absolute (relative to the configuration file).
func (v *validator) acme(c *Config) {
	if name := c.Signing.ACMEName; name != "" {
		switch {
		case c.TLS.ACME == nil:
			v.errorf("signing.acme_name", "needs tls.acme: the certificate for %s is obtained there", name)
		case c.Signing.Certificate != "" || c.Signing.Key != "" || c.Signing.Chain != "":
			v.errorf("signing.acme_name", "signs with a managed certificate; remove signing.certificate, key and chain, or acme_name")
		}
		if n, ok := v.hostName("signing.acme_name", name); ok {
			c.Signing.ACMEName = n
		}
	}
	a := c.TLS.ACME
	if a == nil {
		return
	}
	if a.Email != "" {
		if _, err := address.Parse(a.Email); err != nil || strings.ContainsAny(a.Email, ",;") {
			v.errorf("tls.acme.email", "%q is not a mail address", a.Email)
		}
	}
	if a.Directory == "" {
		a.Directory = LetsEncrypt
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.errorf("tls.acme.directory", "%q is not an absolute https URL (Let's Encrypt: %s, staging: %s)", a.Directory, LetsEncrypt, LetsEncryptStaging)
	}
	for i := range a.CARoots {
		p := fmt.Sprintf("tls.acme.ca_roots[%d]", i)
		a.CARoots[i] = v.abs(a.CARoots[i])
		if err := checkRoots(a.CARoots[i]); err != nil {
			v.errorf(p, "%v", err)
		}
	}
	if a.Storage == "" {
		a.Storage = DefaultACMEStorage
	}
	a.Storage = v.abs(a.Storage)
	if st, err := os.Stat(a.Storage); err == nil && !st.IsDir() {
		v.errorf("tls.acme.storage", "%s is not a directory", a.Storage)
	}
	seen := map[string]bool{}
	for i, n := range a.Names {
		p := fmt.Sprintf("tls.acme.names[%d]", i)
		norm, ok := v.hostName(p, n)
		if !ok {
			continue
		}
		if seen[norm] {
			v.errorf(p, "%s is listed twice", norm)
		}
		seen[norm] = true
		a.Names[i] = norm
	}
	switch {
	case a.OrdersPerHour == 0:
		a.OrdersPerHour = DefaultOrdersPerHour
	case a.OrdersPerHour < 0:
		v.errorf("tls.acme.orders_per_hour", "must be positive")
	}
	switch {
	case a.PrecheckPort == 0:
		a.PrecheckPort = DefaultPrecheckPort
	case a.PrecheckPort < 0 || a.PrecheckPort > 65535:
		v.errorf("tls.acme.precheck_port", "%d is not a port", a.PrecheckPort)
	}
	if a.Resolver != "" {
		if _, _, err := net.SplitHostPort(a.Resolver); err != nil {
			v.errorf("tls.acme.resolver", "%q is not a host:port address", a.Resolver)
		}
	}
}

// hostName normalises a host name for a certificate (lower case, A-labels,
// no trailing dot). Wildcards are refused: HTTP-01 and TLS-ALPN-01 cannot
// prove them, and names under "*.parent" domains are issued one by one.
func (v *validator) hostName(path, s string) (string, bool) {
	if strings.HasPrefix(strings.TrimSpace(s), "*.") {
		v.errorf(path, "%q: wildcard certificates need DNS-01, which is not supported; list the names", s)
		return "", false
	}
	n, err := address.ParseDomain(s)
	if err != nil || !address.IsHostname(n) || !strings.Contains(n, ".") {
		v.errorf(path, "%q is not a host name", s)
		return "", false
	}
	return n, true
}

// abs makes a path relative to the configuration file absolute.
func (v *validator) abs(p string) string {
	if p == "" || filepath.IsAbs(p) || v.file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(v.file), p)
}

// checkRoots makes sure a file holds at least one PEM certificate.
func checkRoots(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot be read: %w", err)
	}
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
