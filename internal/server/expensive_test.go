package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// fetchFrom sends one GET from a loopback source address on a new
// connection and returns the status, the body and whether the server
// closes the connection after the answer.
func fetchFrom(t *testing.T, src, addr, target string, header ...string) (int, []byte, bool) {
	t.Helper()
	c, err := dialFrom(src, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: autoconfig.example.com\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", target, src, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, resp.Close
}

// TestExpensiveBudget: answers that cost milliseconds (a profile signed
// anew, a QR code drawn anew, a /metrics scrape) are paid from a budget of
// their own, far below the request rate limit; answers from the caches (a
// profile or QR code made before) are not; each client has its own budget.
func TestExpensiveBudget(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "signer", time.Time{}, "mail.example.com")
	cfg := writeConfig(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`
signing: {certificate: %s, key: %s}
limits: {rate_per_second: 1000, burst: 1000, expensive_per_second: 0.01, expensive_burst: 3}
`, cert, key)+providerYAML)
	srv := testutil.Start(t, cfg, server.Options{})
	addr := srv.Addr().String()
	codes := func(src string, targets ...string) []int {
		t.Helper()
		var out []int
		for _, target := range targets {
			code, _, closed := fetchFrom(t, src, addr, target)
			if code == http.StatusTooManyRequests && !closed {
				t.Errorf("%s: a 429 without Connection: close", target)
			}
			out = append(out, code)
		}
		return out
	}
	want := func(what string, got []int, want ...int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: statuses %v, want %v", what, got, want)
		}
	}
	profile := func(user string) string { return "/mobileconfig?emailaddress=" + user + "@example.com" }
	qr := func(user string) string { return "/settings/qr.png?emailaddress=" + user + "@example.com" }

	want("signed profiles for new addresses", codes("127.0.0.2", profile("a"), profile("b"), profile("c"), profile("d")), 200, 200, 200, 429)
	want("a profile signed before, from the cache", codes("127.0.0.2", profile("a"), profile("b")), 200, 200)
	want("ordinary answers are not paid from the budget", codes("127.0.0.2", "/mail/config-v1.1.xml?emailaddress=x@example.com", "/?emailaddress=x@example.com"), 200, 200)
	want("another client's budget", codes("127.0.0.3", profile("e")), 200)

	want("QR codes for new addresses", codes("127.0.0.4", qr("a"), qr("b"), qr("c"), qr("d")), 200, 200, 200, 429)
	_, first, _ := fetchFrom(t, "127.0.0.4", addr, qr("a"))
	if !bytes.HasPrefix(first, []byte("\x89PNG")) {
		t.Errorf("a QR code drawn before is not served from the cache: %q", first[:min(len(first), 40)])
	}
	_, again, _ := fetchFrom(t, "127.0.0.5", addr, qr("a"))
	if !bytes.Equal(first, again) {
		t.Error("the cached QR code differs from the one drawn")
	}

	want("/metrics scrapes", codes("127.0.0.6", "/metrics", "/metrics", "/metrics", "/metrics"), 200, 200, 200, 429)
	if v := metricValue(t, srv.URL, `mailautoconf_http_requests_total{client="other",endpoint="mobileconfig",outcome="rate-limited"}`); v != 1 {
		t.Errorf("rate-limited profiles counted %v, want 1", v)
	}
}

// TestMetricsNetworks: /metrics on the main listeners answers the networks
// of metrics.allowed_networks only (loopback by default), judged by the
// client's address, not by a trusted proxy's; the separate metrics
// listener answers everyone who reaches it.
func TestMetricsNetworks(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.TrustedProxies = []string{"127.0.0.9"}
	cfg.Metrics.AllowedNetworks = []string{"127.0.0.5", "127.0.0.9"}
	srv := testutil.Start(t, cfg, server.Options{MetricsAddr: "127.0.0.1:0"})
	addr := srv.Addr().String()
	for _, c := range []struct {
		src    string
		header []string
		want   int
	}{
		{"127.0.0.5", nil, 200},
		{"127.0.0.6", nil, 404},
		{"127.0.0.1", nil, 404},
		{"127.0.0.9", []string{"X-Forwarded-For: 192.0.2.1"}, 404},
		{"127.0.0.9", []string{"X-Forwarded-For: 127.0.0.5"}, 200},
		{"127.0.0.6", []string{"X-Forwarded-For: 127.0.0.5"}, 404},
	} {
		code, body, _ := fetchFrom(t, c.src, addr, "/metrics", c.header...)
		if code != c.want {
			t.Errorf("/metrics from %s %v: %d, want %d", c.src, c.header, code, c.want)
		}
		if code != 200 && bytes.Contains(body, []byte("mailautoconf_")) {
			t.Errorf("/metrics from %s %v: refused, but the body holds metrics", c.src, c.header)
		}
	}
	if code, body, _ := fetchFrom(t, "127.0.0.6", srv.MetricsAddr().String(), "/metrics"); code != 200 || !bytes.Contains(body, []byte("mailautoconf_build_info")) {
		t.Errorf("metrics listener from 127.0.0.6: %d", code)
	}

	// By default: loopback only.
	def := testutil.Start(t, testutil.Demo(t), server.Options{})
	for src, want := range map[string]int{"127.0.0.1": 200, "127.0.0.77": 200} {
		if code, _, _ := fetchFrom(t, src, def.Addr().String(), "/metrics"); code != want {
			t.Errorf("default: /metrics from %s: %d, want %d", src, code, want)
		}
	}
	trusted := testutil.Demo(t)
	trusted.TrustedProxies = []string{"127.0.0.0/8"}
	px := testutil.Start(t, trusted, server.Options{})
	if code, _, _ := fetchFrom(t, "127.0.0.1", px.Addr().String(), "/metrics", "X-Forwarded-For: 203.0.113.7"); code != 404 {
		t.Errorf("default: /metrics through a loopback proxy for an internet client: %d, want 404", code)
	}
}
