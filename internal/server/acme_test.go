package server_test

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
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

// TestChallengeBehindProxy: a challenge request forwarded by a trusted
// proxy that rewrote Host is taken for the name in X-Forwarded-Host; from
// anyone else that header is ignored. The log tells which name the
// service took (no CA is needed: the token is unknown either way).
func TestChallengeBehindProxy(t *testing.T) {
	dir := t.TempDir()
	ca := tu.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	tu.WriteFile(t, caFile, ca.PEM)
	yaml := fmt.Sprintf(`
tls:
  acme: {directory: "https://127.0.0.1:%d/dir", ca_roots: [%s], storage: %s, precheck: false}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`, tu.FreePort(t), caFile, filepath.Join(dir, "acme"))
	for _, tc := range []struct {
		name    string
		trusted string
		want    bool
	}{
		{"trusted proxy", "trusted_proxies: [127.0.0.1]\n", true},
		{"untrusted client", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse(filepath.Join(dir, "proxy.yaml"), []byte(tc.trusted+yaml))
			if err != nil {
				t.Fatal(err)
			}
			logs := &tu.LogBuffer{}
			srv := tu.Start(t, cfg, server.Options{Logger: logs.Logger()})
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/acme-challenge/some-token", nil)
			req.Host = "backend.internal"
			req.Header.Set("X-Forwarded-Host", "autoconfig.example.com")
			if r := tu.Do(t, req); r.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown token: %d", r.StatusCode)
			}
			got := strings.Contains(logs.String(), `msg="ACME challenge" challenge=http-01 host=autoconfig.example.com`)
			if got != tc.want {
				t.Errorf("challenge taken for autoconfig.example.com: %v, want %v\n%s", got, tc.want, logs)
			}
		})
	}
}
