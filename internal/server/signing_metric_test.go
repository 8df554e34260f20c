package server_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// The expiry of the profile-signing certificate is exported, and nothing is
// while profiles are not signed.
func TestSigningCertificateExpiryMetric(t *testing.T) {
	const name = "mailautoconf_signing_certificate_not_after_timestamp_seconds"
	dir := t.TempDir()
	notAfter := time.Now().Add(200 * time.Hour).Truncate(time.Second)
	ca := testutil.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "signer", notAfter, "mail.example.com")
	signed := writeConfig(t, filepath.Join(dir, "signed.yaml"), fmt.Sprintf("signing: {certificate: %s, key: %s}\n", cert, key)+providerYAML)
	srv := testutil.Start(t, signed, server.Options{})
	if v := metricValue(t, srv.URL, name); v != float64(notAfter.Unix()) {
		t.Errorf("%s = %v, want %d (%s)", name, v, notAfter.Unix(), notAfter)
	}

	unsigned := writeConfig(t, filepath.Join(dir, "unsigned.yaml"), providerYAML)
	srv = testutil.Start(t, unsigned, server.Options{})
	page := testutil.Get(t, srv.URL+"/metrics", "")
	if regexp.MustCompile(`(?m)^` + name + ` `).Match(page.Body) {
		t.Errorf("%s exported without signing:\n%s", name, page.Body)
	}
}
