package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckACME: `check` validates the tls.acme block like every other
// section, every mistake with file, line and field. HTTPS with tls.acme
// alone (no certificate file) and profiles signed with a managed
// certificate are a valid configuration.
func TestCheckACME(t *testing.T) {
	dir := t.TempDir()
	providers := "providers:\n  - id: mail.example.org\n    domains: [example.org]\n    servers:\n      - {type: imap, host: imap.example.org}\n      - {type: smtp, host: smtp.example.org}\n"
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listen: {https: \"127.0.0.1:8443\"}\ntls:\n  acme:\n    email: hostmaster@example.org\n    storage: acme\nsigning: {acme_name: mail.example.org}\n"+providers), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("tls:\n  acme:\n    directory: http://acme.example/dir\n    names: ['*.example.org']\n    orders_per_hour: -5\nsigning:\n  acme_name: 'not a name'\n"+providers), 0o644)

	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", good}, &out, &errb); code != 0 {
		t.Fatalf("check good: exit %d: %s", code, errb.String())
	}
	if want := good + ": tls.acme: 4 name(s) obtained in advance from https://acme-v02.api.letsencrypt.org/directory; storage " + filepath.Join(dir, "acme") + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("check said\n%s\nwant\n%s", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme")); err == nil {
		t.Error("check created the ACME storage: it must not start the certificate manager")
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != 1 {
		t.Fatalf("check bad: exit %d", code)
	}
	for _, want := range []string{
		bad + `:3: tls.acme.directory: "http://acme.example/dir" is not an absolute https URL`,
		bad + `:4: tls.acme.names[0]: "*.example.org": wildcard certificates need DNS-01`,
		bad + `:5: tls.acme.orders_per_hour: must be positive`,
		bad + `:7: signing.acme_name: "not a name" is not a host name`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check bad said\n%s\nwant\n%s", errb.String(), want)
		}
	}
}
