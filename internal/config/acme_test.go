package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const acmeProviders = `providers:
  - id: mail.example.com
    domains: [example.com]
    servers: [{type: imap, host: imap.example.com}, {type: smtp, host: smtp.example.com}]
`

// TestACMEDefaults: an empty tls.acme block is Let's Encrypt production,
// the default storage, on-demand issuance, the pre-check on port 80 and one
// order a minute.
func TestACMEDefaults(t *testing.T) {
	c, err := Parse("acme.yaml", []byte("listen: {https: ':443'}\ntls:\n  acme: {}\n"+acmeProviders))
	if err != nil {
		t.Fatal(err)
	}
	a := c.TLS.ACME
	if a == nil {
		t.Fatal("tls.acme not parsed")
	}
	if a.Directory != LetsEncrypt || a.Storage != DefaultACMEStorage || !a.OnDemandEnabled() || !a.PrecheckEnabled() ||
		a.PrecheckPort != 80 || a.OrdersPerHour != DefaultOrdersPerHour || a.Resolver != "" {
		t.Errorf("defaults: %+v", a)
	}
	c, err = Parse("none.yaml", []byte(acmeProviders))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ACME != nil {
		t.Errorf("tls.acme set without the block: %+v", c.TLS.ACME)
	}
}

// TestACMEValues: every key is read, names are normalised like domains and
// relative paths are taken relative to the configuration file.
func TestACMEValues(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, selfSigned(t), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.yaml")
	yaml := `tls:
  acme:
    email: hostmaster@example.net
    directory: https://127.0.0.1:14000/dir
    ca_roots: [root.pem]
    storage: acme
    on_demand: false
    names: [Mail.Example.NET., bücher.example]
    orders_per_hour: 3600
    precheck: false
    precheck_port: 5002
    resolver: 127.0.0.1:5353
signing:
  acme_name: MAIL.example.net
` + acmeProviders
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a := c.TLS.ACME
	want := ACME{Email: "hostmaster@example.net", Directory: "https://127.0.0.1:14000/dir", CARoots: []string{root},
		Storage: filepath.Join(dir, "acme"), Names: []string{"mail.example.net", "xn--bcher-kva.example"},
		OrdersPerHour: 3600, PrecheckPort: 5002, Resolver: "127.0.0.1:5353"}
	if a.Email != want.Email || a.Directory != want.Directory || strings.Join(a.CARoots, ",") != strings.Join(want.CARoots, ",") ||
		a.Storage != want.Storage || strings.Join(a.Names, ",") != strings.Join(want.Names, ",") ||
		a.OrdersPerHour != want.OrdersPerHour || a.PrecheckPort != want.PrecheckPort || a.Resolver != want.Resolver ||
		a.OnDemandEnabled() || a.PrecheckEnabled() {
		t.Errorf("got  %+v\nwant %+v", *a, want)
	}
	if c.Signing.ACMEName != "mail.example.net" || c.Signing.Enabled() {
		t.Errorf("signing: %+v (Enabled %v): acme_name is not a file signer", c.Signing, c.Signing.Enabled())
	}
}

// TestACMEErrors: each mistake in the block is reported at its line.
func TestACMEErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"http directory", "tls:\n  acme:\n    directory: http://acme.example/dir\n",
			`bad.yaml:3: tls.acme.directory: "http://acme.example/dir" is not an absolute https URL`},
		{"bad email", "tls:\n  acme:\n    email: 'not an address'\n", `bad.yaml:3: tls.acme.email: "not an address" is not a mail address`},
		{"two emails", "tls:\n  acme:\n    email: 'a@example.net,b@example.net'\n", `tls.acme.email: "a@example.net,b@example.net" is not a mail address`},
		{"missing root", "tls:\n  acme:\n    ca_roots: [" + filepath.Join(dir, "nope.pem") + "]\n", `bad.yaml:3: tls.acme.ca_roots[0]: cannot be read`},
		{"root not PEM", "tls:\n  acme:\n    ca_roots: [" + notPEM + "]\n", `tls.acme.ca_roots[0]: ` + notPEM + ` holds no PEM certificate`},
		{"storage is a file", "tls:\n  acme:\n    storage: " + file + "\n", `tls.acme.storage: ` + file + ` is not a directory`},
		{"wildcard name", "tls:\n  acme:\n    names: ['*.example.net']\n", `bad.yaml:3: tls.acme.names[0]: "*.example.net": wildcard certificates need DNS-01`},
		{"bad name", "tls:\n  acme:\n    names: [mail.example.net, 'a b']\n", `tls.acme.names[1]: "a b" is not a host name`},
		{"single label", "tls:\n  acme:\n    names: [localhost]\n", `tls.acme.names[0]: "localhost" is not a host name`},
		{"duplicate name", "tls:\n  acme:\n    names: [mail.example.net, MAIL.example.net]\n", `tls.acme.names[1]: mail.example.net is listed twice`},
		{"negative rate", "tls:\n  acme:\n    orders_per_hour: -1\n", `bad.yaml:3: tls.acme.orders_per_hour: must be positive`},
		{"bad port", "tls:\n  acme:\n    precheck_port: 70000\n", `tls.acme.precheck_port: 70000 is not a port`},
		{"bad resolver", "tls:\n  acme:\n    resolver: 127.0.0.1\n", `tls.acme.resolver: "127.0.0.1" is not a host:port address`},
		{"unknown key", "tls:\n  acme:\n    mail: a@example.net\n", `bad.yaml:3:`},
		{"acme_name without acme", "signing:\n  acme_name: mail.example.net\n", `bad.yaml:2: signing.acme_name: needs tls.acme`},
		{"acme_name and files", "tls:\n  acme: {}\nsigning:\n  acme_name: mail.example.net\n  certificate: " + notPEM + "\n  key: " + notPEM + "\n",
			`signing.acme_name: signs with a managed certificate; remove signing.certificate, key and chain, or acme_name`},
		{"acme_name wildcard", "tls:\n  acme: {}\nsigning:\n  acme_name: '*.example.net'\n", `signing.acme_name: "*.example.net": wildcard`},
		{"https without certificates", "listen: {https: ':443'}\n", `listen.https: HTTPS needs tls.acme or at least one entry in tls.certificates`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.yaml+acmeProviders))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.yaml)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n%s\ndoes not contain\n%s", err, c.want)
			}
		})
	}
}

// selfSigned makes a self-signed certificate in PEM form (any will do for
// ca_roots).
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
