package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// TestEndpointLabel: a request is counted under the endpoint of the route it
// was routed to (the route table's name), whatever case the Autodiscover
// path arrived in and whatever the method; a path no route serves counts as
// "other", however much it looks like one of ours.
func TestEndpointLabel(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	const addr = "?emailaddress=alice@example.com"
	pox := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	for _, tc := range []struct {
		method, path, body string
		status             int
		endpoint, outcome  string
	}{
		{"GET", "/mail/config-v1.1.xml" + addr, "", 200, "autoconfig", "ok"},
		{"HEAD", "/.well-known/autoconfig/mail/config-v1.1.xml" + addr, "", 200, "autoconfig", "ok"},
		{"POST", "/mail/config-v1.1.xml", "x", 405, "autoconfig", "bad-request"},
		{"POST", "/Autodiscover/Autodiscover.xml", pox, 200, "autodiscover-pox", "ok"},
		{"PUT", "/autodiscover/autodiscover.xml", "x", 405, "autodiscover-pox", "bad-request"},
		{"GET", "/AutoDiscover/AutoDiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1", "", 200, "autodiscover-json", "ok"},
		{"GET", "/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=AutodiscoverV1", "", 200, "autodiscover-json", "ok"},
		{"GET", "/mobileconfig" + addr, "", 200, "mobileconfig", "ok"},
		{"GET", "/email.mobileconfig" + addr, "", 200, "mobileconfig", "ok"},
		{"GET", "/.well-known/user-agent-configuration.json", "", 200, "pacc", "ok"},
		{"HEAD", "/.well-known/user-agent-configuration.json", "", 404, "pacc", "unknown-domain"},
		{"GET", "/", "", 200, "page", "ok"},
		{"GET", "/settings" + addr, "", 200, "page", "ok"},
		{"GET", "/settings/qr.png" + addr, "", 200, "page", "ok"},
		{"GET", "/settings/style.css", "", 200, "page", "ok"},
		{"GET", "/healthz", "", 200, "other", "ok"},
		{"HEAD", "/readyz", "", 405, "other", "bad-request"},
		// Nothing serves these.
		{"GET", "/static/style.css", "", 404, "other", "unknown-domain"},
		{"GET", "/qr", "", 404, "other", "unknown-domain"},
		{"GET", "/settings/other.png", "", 404, "other", "unknown-domain"},
		{"GET", "/autodiscover/other.xml", "", 404, "other", "unknown-domain"},
		{"GET", "/alice.mobileconfig", "", 404, "other", "unknown-domain"},
		{"GET", "/Mail/config-v1.1.xml" + addr, "", 404, "other", "unknown-domain"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			// A client family of its own: the scrapes of /metrics
			// are counted too, as "other" clients.
			sample := `mailautoconf_http_requests_total{client="thunderbird",endpoint="` + tc.endpoint + `",outcome="` + tc.outcome + `"}`
			before := metricValue(t, srv.URL, sample)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("User-Agent", "Mozilla/5.0 Thunderbird/128.5.0")
			if tc.endpoint == "pacc" && tc.status == 200 {
				// PACC takes the domain from the Host header only.
				req.Host = "ua-auto-config.example.com"
			}
			if r := testutil.Do(t, req); r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if v := metricValue(t, srv.URL, sample); v != before+1 {
				t.Errorf("%s: %v -> %v, want one more", sample, before, v)
			}
		})
	}
}
