package server_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// TestPerDomainWildcard: with metrics.per_domain, requests for names under
// a wildcard domain are counted under the configured entry ("*.parent"):
// however many subdomains clients invent, the number of series stays the
// number of configured domains.
func TestPerDomainWildcard(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, filepath.Join(dir, "c.yaml"), `
metrics: {per_domain: true}
providers:
  - id: mail.example.com
    domains: [example.com, "*.kunden.example.com"]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	srv := testutil.Start(t, cfg, server.Options{})
	series := regexp.MustCompile(`(?m)^mailautoconf_http_domain_requests_total\{domain="([^"]*)"\} (\S+)$`)
	scrape := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, m := range series.FindAllSubmatch(testutil.Get(t, srv.URL+"/metrics", "").Body, -1) {
			out[string(m[1])] = string(m[2])
		}
		return out
	}
	const n = 300
	for i := range n {
		// Names as a scanner would make them up, no two alike.
		sub := fmt.Sprintf("r%x-%d", uint32(i)*2654435761, i)
		switch i % 3 {
		case 0:
			testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@"+sub+".kunden.example.com", "")
		case 1:
			testutil.Get(t, srv.URL+"/mail/config-v1.1.xml", "autoconfig."+sub+".kunden.example.com")
		case 2:
			testutil.Get(t, srv.URL+"/autodiscover/autodiscover.json/v1.0/a@"+sub+".x.kunden.example.com?Protocol=AutodiscoverV1", "")
		}
		if i == 10 {
			if got := scrape(); len(got) != 1 {
				t.Fatalf("after 11 subdomains: series %v", got)
			}
		}
	}
	testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.com", "")
	testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@unknown.test", "")
	got := scrape()
	want := map[string]string{"*.kunden.example.com": fmt.Sprint(n), "example.com": "1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("per-domain series %v, want %v", got, want)
	}
	if body := testutil.Get(t, srv.URL+"/metrics", "").Body; bytes.Contains(body, []byte("r0-0")) {
		t.Error("an invented subdomain appears in /metrics")
	}
}
