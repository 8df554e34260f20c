package mobileconfig_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailautoconf/internal/config"
)

// testCert is a certificate and its key made for a test.
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certOpts shape a test certificate.
type certOpts struct {
	cn        string
	ca        bool
	notBefore time.Time
	notAfter  time.Time
	rsa       bool
	keyUsage  x509.KeyUsage
}

// newCert makes a certificate signed by parent (self-signed when nil).
func newCert(t testing.TB, o certOpts, parent *testCert) *testCert {
	t.Helper()
	var key crypto.Signer
	var err error
	if o.rsa {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.cn, Organization: []string{"mailautoconf test"}},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  o.ca,
		KeyUsage:              o.keyUsage,
	}
	if o.ca {
		tpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		// Like the TLS server certificates providers sign profiles with.
		tpl.DNSNames = []string{o.cn}
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if o.keyUsage == 0 {
			tpl.KeyUsage = x509.KeyUsageDigitalSignature
		}
	}
	issuer, signer := tpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: key}
}

// pki is a root CA, an intermediate and a signing certificate.
type pki struct {
	root, inter, leaf *testCert
}

func newPKI(t testing.TB, rsaLeaf bool) *pki {
	root := newCert(t, certOpts{cn: "Test Root CA", ca: true}, nil)
	inter := newCert(t, certOpts{cn: "Test Intermediate CA", ca: true}, root)
	leaf := newCert(t, certOpts{cn: "mail.example.com", rsa: rsaLeaf}, inter)
	return &pki{root, inter, leaf}
}

func certPEM(certs ...*testCert) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	}
	return out
}

func keyPEM(t testing.TB, c *testCert) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// signedFiles writes the PKI's files to dir: signer.pem (leaf only),
// signer.key, chain.pem (intermediate) and root.pem.
func (p *pki) write(t testing.TB, dir string) {
	t.Helper()
	writeFile(t, dir, "signer.pem", certPEM(p.leaf))
	writeFile(t, dir, "signer.key", keyPEM(t, p.leaf))
	writeFile(t, dir, "chain.pem", certPEM(p.inter))
	writeFile(t, dir, "root.pem", certPEM(p.root))
}

// signingConfig is the demo configuration plus a signing section, parsed
// as if it were dir/config.yaml, so relative paths resolve against dir.
func signingConfig(t testing.TB, dir, signing string) (*config.Config, error) {
	t.Helper()
	yaml := string(config.DemoYAML()) + "\nsigning:\n" + signing
	return config.Parse(filepath.Join(dir, "config.yaml"), []byte(yaml))
}

func mustSigningConfig(t testing.TB, dir, signing string) *config.Config {
	t.Helper()
	cfg, err := signingConfig(t, dir, signing)
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	return cfg
}

const relativeSigning = "  certificate: signer.pem\n  key: signer.key\n  chain: chain.pem\n"
