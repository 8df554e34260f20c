package server_test

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	tu "mailautoconf/internal/testutil"
)

// TestSigningACMERenewal: signing.acme_name is obtained without being
// listed anywhere else, profiles are signed with it (the chain to the CA
// inside), and after the certificate is renewed the same profile is signed
// with the new one: the cached signature of the old one is not served.
func TestSigningACMERenewal(t *testing.T) {
	httpPort, dnsPort := tu.FreePort(t), tu.FreePort(t)
	pebble := tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: httpPort, TLSPort: tu.FreePort(t), DNS: fmt.Sprintf("127.0.0.1:%d", dnsPort), Validity: 30 * time.Second,
	})
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
dns:
  service_addresses: [127.0.0.1]
  hosts: {mail.example.com: [127.0.0.1]}
tls:
  acme:
    directory: %s
    ca_roots: [%s]
    storage: %s
    orders_per_hour: 36000
    precheck_port: %d
    resolver: "127.0.0.1:%d"
signing: {acme_name: mail.example.com}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`, pebble.Directory, pebble.CAFile, filepath.Join(dir, "acme"), httpPort, dnsPort)
	cfg, err := config.Parse(filepath.Join(dir, "signing.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	logs := &tu.LogBuffer{}
	srv := tu.Start(t, cfg, server.Options{
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), DNSAddr: fmt.Sprintf("127.0.0.1:%d", dnsPort),
		ACMERenewCheck: time.Second, Logger: logs.Logger(),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s\npebble log:\n%s", logs, pebble.Log())
		}
	})
	truststore := x509.NewCertPool()
	if !truststore.AppendCertsFromPEM(pebble.Root(t)) {
		t.Fatal("pebble's root is not PEM")
	}

	// signer fetches the profile and returns its verified signer's
	// serial, "" while the profile is unsigned.
	signer := func() string {
		r := tu.Get(t, srv.URL+"/mobileconfig?emailaddress=alice@example.com", "")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("profile: %d\n%s", r.StatusCode, r.Body)
		}
		if len(r.Body) == 0 || r.Body[0] != 0x30 {
			return ""
		}
		p7, err := pkcs7.Parse(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := p7.VerifyWithChain(truststore); err != nil {
			t.Fatalf("the signed profile does not verify against the CA's root: %v", err)
		}
		s := p7.GetOnlySigner()
		if s.VerifyHostname("mail.example.com") != nil {
			t.Fatalf("signed by %v, not mail.example.com", s.DNSNames)
		}
		return s.SerialNumber.String()
	}
	var first string
	tu.WaitFor(t, 60*time.Second, func() string { return "profiles are not signed" }, func() bool {
		first = signer()
		return first != ""
	})
	tu.WaitFor(t, 60*time.Second, func() string { return "profiles are not signed with the renewed certificate" }, func() bool {
		s := signer()
		return s != "" && s != first
	})
}
