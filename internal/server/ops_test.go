package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

const providerYAML = `
providers:
  - id: mail.example.com
    domains: [example.com, example.net]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`

func writeConfig(t *testing.T, path, yaml string) *config.Config {
	t.Helper()
	testutil.WriteFile(t, path, []byte(yaml))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// metricValue scrapes one sample from /metrics.
func metricValue(t *testing.T, url, sample string) float64 {
	t.Helper()
	r := testutil.Get(t, url+"/metrics", "")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindSubmatch(r.Body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHTTPS: SNI picks the certificate for the name, an unknown name gets
// the first one, and replacing a certificate file takes effect without a
// restart.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	c1, k1 := ca.IssueFiles(t, dir, "autoconfig", time.Time{}, "autoconfig.example.com", "autoconfig.example.net")
	c2, k2 := ca.IssueFiles(t, dir, "autodiscover", time.Time{}, "autodiscover.example.com", "autodiscover.example.net")
	path := filepath.Join(dir, "config.yaml")
	cfg := writeConfig(t, path, fmt.Sprintf("tls:\n  certificates:\n    - {cert: %s, key: %s}\n    - {cert: %s, key: %s}\n", c1, k1, c2, k2)+providerYAML)
	srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", ConfigPath: path, PollInterval: 50 * time.Millisecond})
	addr := srv.HTTPSAddr().String()

	handshake := func(name string) (*tls.ConnectionState, []byte) {
		t.Helper()
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: name},
		}}
		req, _ := http.NewRequest("GET", "https://"+addr+"/mail/config-v1.1.xml?emailaddress=alice@example.com", nil)
		req.Host = name
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("HTTPS for %s: %v", name, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("HTTPS status %d: %s", resp.StatusCode, b)
		}
		return resp.TLS, b
	}
	for _, c := range []struct{ sni, cn string }{
		{"autoconfig.example.com", "autoconfig.example.com"},
		{"autoconfig.example.net", "autoconfig.example.com"},
		{"autodiscover.example.net", "autodiscover.example.com"},
	} {
		st, body := handshake(c.sni)
		if got := st.PeerCertificates[0].Subject.CommonName; got != c.cn {
			t.Errorf("SNI %s got certificate %s, want %s", c.sni, got, c.cn)
		}
		if st.Version < tls.VersionTLS12 {
			t.Errorf("TLS version %x", st.Version)
		}
		if !bytes.Contains(body, []byte("<hostname>imap.example.com</hostname>")) {
			t.Errorf("body: %s", body)
		}
	}
	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "autoconfig.example.com", MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("TLS 1.1 accepted")
	}

	// Renew the autoconfig certificate: new serial, picked up by polling.
	old, _ := handshake("autoconfig.example.com")
	before := metricValue(t, srv.URL, `mailautoconf_tls_certificate_not_after_timestamp_seconds{certificate="autoconfig.crt"}`)
	ca.IssueFiles(t, dir, "autoconfig", time.Now().Add(72*time.Hour), "autoconfig.example.com", "autoconfig.example.net")
	waitFor(t, "the renewed certificate", func() bool {
		st, _ := handshake("autoconfig.example.com")
		return st.PeerCertificates[0].SerialNumber.Cmp(old.PeerCertificates[0].SerialNumber) != 0
	})
	if after := metricValue(t, srv.URL, `mailautoconf_tls_certificate_not_after_timestamp_seconds{certificate="autoconfig.crt"}`); after <= before {
		t.Errorf("certificate expiry metric %v -> %v", before, after)
	}

	// A broken replacement keeps the working certificate.
	testutil.WriteFile(t, c1, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))
	time.Sleep(300 * time.Millisecond)
	handshake("autoconfig.example.com")
}

// TestReload: SIGHUP and a file change reload the configuration; a broken
// file is rejected, counted, and the old configuration keeps serving.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := writeConfig(t, path, providerYAML)
	logs := &testutil.LogBuffer{}
	var reloaded atomic.Int32
	srv := testutil.Start(t, cfg, server.Options{
		ConfigPath: path, SignalOnly: true, // only SIGHUP below
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Reloaded: func() { reloaded.Add(1) },
	})
	get := func(addr string) int {
		return testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress="+addr, "").StatusCode
	}
	if get("a@example.org") != 404 {
		t.Fatal("example.org served before the reload")
	}
	testutil.WriteFile(t, path, []byte(strings.Replace(providerYAML, "example.net]", "example.net, example.org]", 1)))
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "SIGHUP reload", func() bool { return get("a@example.org") == 200 })
	if v := metricValue(t, srv.URL, `mailautoconf_config_reloads_total{result="success"}`); v < 1 {
		t.Errorf("success reloads = %v", v)
	}
	if n := reloaded.Load(); n != 1 {
		t.Errorf("Reloaded called %d times after one reload", n)
	}

	testutil.WriteFile(t, path, []byte(strings.Replace(providerYAML, "{type: imap, host: imap.example.com}", "{type: imap, host: imap.example.com, port: 99999}", 1)))
	failures := metricValue(t, srv.URL, `mailautoconf_config_reloads_total{result="failure"}`)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the failed reload to be counted", func() bool {
		return metricValue(t, srv.URL, `mailautoconf_config_reloads_total{result="failure"}`) == failures+1
	})
	if get("a@example.org") != 200 || get("a@example.com") != 200 {
		t.Error("the previous configuration stopped serving after a broken reload")
	}
	if v := metricValue(t, srv.URL, "mailautoconf_config_last_reload_successful"); v != 0 {
		t.Errorf("last_reload_successful = %v after a failure", v)
	}
	if !strings.Contains(logs.String(), "99999 is not a port") {
		t.Errorf("the rejected file's error is not logged:\n%s", logs.String())
	}
	if n := reloaded.Load(); n != 1 {
		t.Errorf("Reloaded called after a rejected configuration (%d calls)", n)
	}
}

// TestReloadOnFileChange: a changed file is picked up without a signal.
func TestReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	cfg := writeConfig(t, path, providerYAML)
	srv := testutil.Start(t, cfg, server.Options{ConfigPath: path, PollInterval: 50 * time.Millisecond})
	testutil.WriteFile(t, path, []byte(strings.Replace(providerYAML, "example.net]", "example.net, example.org]", 1)))
	waitFor(t, "file-change reload", func() bool {
		return testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.org", "").StatusCode == 200
	})
}

// TestReloadUnderLoad: requests running while the configuration is swapped
// many times all succeed and each sees one whole configuration.
func TestReloadUnderLoad(t *testing.T) {
	a := testutil.Demo(t)
	b := testutil.Demo(t)
	b.Providers[0].DisplayName = "Other Name"
	// Limits are part of what a reload applies: no limit for either.
	a.Limits.RatePerSecond, b.Limits.RatePerSecond = -1, -1
	srv := testutil.Start(t, a, server.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=x@example.com", "")
				if r.StatusCode != 200 {
					t.Errorf("status %d during reload", r.StatusCode)
					return
				}
			}
		}()
	}
	for i := range 200 {
		cfg := a
		if i%2 == 1 {
			cfg = b
		}
		if err := srv.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestMetricsAndHealth: counters move with real requests, labels stay bounded.
func TestMetricsAndHealth(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{MetricsAddr: "127.0.0.1:0"})
	for _, p := range []string{"/healthz", "/readyz"} {
		waitFor(t, p, func() bool { return testutil.Get(t, srv.URL+p, "").StatusCode == 200 })
	}
	tb := `mailautoconf_http_requests_total{client="thunderbird",endpoint="autoconfig",outcome="ok"}`
	unknown := `mailautoconf_http_requests_total{client="other",endpoint="autoconfig",outcome="unknown-domain"}`
	bad := `mailautoconf_http_requests_total{client="other",endpoint="autoconfig",outcome="bad-request"}`
	b0, u0, x0 := metricValue(t, srv.URL, tb), metricValue(t, srv.URL, unknown), metricValue(t, srv.URL, bad)
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/mail/config-v1.1.xml?emailaddress=alice@example.com", nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0")
		testutil.Do(t, req)
	}
	testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=bob@unknown.org", "")
	testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=bob", "")
	if v := metricValue(t, srv.URL, tb); v != b0+3 {
		t.Errorf("thunderbird ok: %v -> %v", b0, v)
	}
	if v := metricValue(t, srv.URL, unknown); v != u0+1 {
		t.Errorf("unknown-domain: %v -> %v", u0, v)
	}
	if v := metricValue(t, srv.URL, bad); v != x0+1 {
		t.Errorf("bad-request: %v -> %v", x0, v)
	}
	r := testutil.Get(t, srv.URL+"/metrics", "")
	for _, want := range []string{"mailautoconf_http_request_duration_seconds_bucket", "mailautoconf_build_info{", "mailautoconf_config_domains 2", "go_goroutines"} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if bytes.Contains(r.Body, []byte("alice")) || bytes.Contains(r.Body, []byte("unknown.org")) {
		t.Error("/metrics has a per-address or per-domain label")
	}
	// The separate metrics listener serves the same registry.
	m := testutil.Get(t, "http://"+srv.MetricsAddr().String()+"/metrics", "")
	if m.StatusCode != 200 || !bytes.Contains(m.Body, []byte("mailautoconf_http_requests_total")) {
		t.Errorf("metrics listener: %d", m.StatusCode)
	}
}

// TestRateLimit: a client over its budget gets 429 with Retry-After; other
// clients and health probes are not affected; X-Forwarded-For from an
// untrusted peer does not dodge the limit.
func TestRateLimit(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.Limits.RatePerSecond = 1
	cfg.Limits.Burst = 3
	srv := testutil.Start(t, cfg, server.Options{})
	codes := map[int]int{}
	var retry string
	for i := range 10 {
		req, _ := http.NewRequest("GET", srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.com", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
		r := testutil.Do(t, req)
		codes[r.StatusCode]++
		if r.StatusCode == 429 {
			retry = r.Header.Get("Retry-After")
		}
	}
	if codes[200] > 4 || codes[429] < 6 {
		t.Errorf("status counts %v", codes)
	}
	if retry == "" {
		t.Error("429 without Retry-After")
	}
	if r := testutil.Get(t, srv.URL+"/healthz", ""); r.StatusCode != 200 {
		t.Errorf("healthz rate limited: %d", r.StatusCode)
	}
	if v := metricValue(t, srv.URL, `mailautoconf_http_requests_total{client="other",endpoint="autoconfig",outcome="rate-limited"}`); v < 6 {
		t.Errorf("rate-limited metric %v", v)
	}
}

// TestTrustedProxy: X-Forwarded-* count only from configured proxies.
func TestTrustedProxy(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	cfg.Limits.RatePerSecond = 1
	cfg.Limits.Burst = 2
	srv := testutil.Start(t, cfg, server.Options{})
	// Behind the trusted proxy every client has its own budget.
	for i := range 6 {
		req, _ := http.NewRequest("GET", srv.URL+"/mail/config-v1.1.xml?emailaddress=a@example.com", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.7, 192.0.2.%d", i))
		if r := testutil.Do(t, req); r.StatusCode != 200 {
			t.Fatalf("client %d behind the proxy: %d", i, r.StatusCode)
		}
	}
	// X-Forwarded-Host names the domain asked for.
	req, _ := http.NewRequest("GET", srv.URL+"/mail/config-v1.1.xml", nil)
	req.Header.Set("X-Forwarded-Host", "autoconfig.example.net")
	req.Header.Set("X-Forwarded-For", "192.0.2.200")
	if r := testutil.Do(t, req); r.StatusCode != 200 || !bytes.Contains(r.Body, []byte("<domain>example.net</domain>")) {
		t.Errorf("X-Forwarded-Host from a trusted proxy: %d %s", r.StatusCode, r.Body)
	}

	// Without trusted proxies, the same header is ignored.
	srv2 := testutil.Start(t, testutil.Demo(t), server.Options{})
	req, _ = http.NewRequest("GET", srv2.URL+"/mail/config-v1.1.xml", nil)
	req.Host = "autoconfig.unknown.org"
	req.Header.Set("X-Forwarded-Host", "autoconfig.example.net")
	if r := testutil.Do(t, req); r.StatusCode != 404 {
		t.Errorf("X-Forwarded-Host from an untrusted peer was believed: %d", r.StatusCode)
	}
}

// TestPOXRedirect: plain-HTTP Autodiscover POX is redirected to HTTPS only
// when HTTPS is served, only for our domains, and not when a trusted proxy
// says the client already used HTTPS.
func TestPOXRedirect(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	c, k := ca.IssueFiles(t, dir, "ad", time.Time{}, "autodiscover.example.com")
	cfg := writeConfig(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf("trusted_proxies: [10.0.0.1]\ntls:\n  certificates: [{cert: %s, key: %s}]\n", c, k)+providerYAML)
	srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0"})
	_, port, _ := net.SplitHostPort(srv.HTTPSAddr().String())
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		r := testutil.Get(t, srv.URL+path, "autodiscover.example.com")
		if r.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d, want 302", path, r.StatusCode)
		}
		if loc := r.Header.Get("Location"); loc != "https://autodiscover.example.com:"+port+"/autodiscover/autodiscover.xml" {
			t.Errorf("Location %q", loc)
		}
	}
	// Unknown host: no redirect anywhere.
	if r := testutil.Get(t, srv.URL+"/autodiscover/autodiscover.xml", "autodiscover.evil.test"); r.StatusCode == http.StatusFound {
		t.Errorf("redirected an unknown host to %s", r.Header.Get("Location"))
	}
	// Autoconfig over plain HTTP is never redirected (Thunderbird falls back to it).
	if r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml", "autoconfig.example.com"); r.StatusCode != 200 {
		t.Errorf("autoconfig over HTTP: %d", r.StatusCode)
	}
	// No HTTPS listener: no redirect.
	plain := testutil.Start(t, testutil.Demo(t), server.Options{})
	if r := testutil.Get(t, plain.URL+"/autodiscover/autodiscover.xml", "autodiscover.example.com"); r.StatusCode == http.StatusFound {
		t.Errorf("redirect to HTTPS without an HTTPS listener: %s", r.Header.Get("Location"))
	}
}

// TestSlowClient: a client that never finishes its header is cut off.
func TestSlowClient(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{Timeouts: server.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 300 * time.Millisecond}})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.com\r\nX-Slow: ")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n')
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("slow client held the connection for %v", elapsed)
	}
	if err == nil {
		// Go answers 408 or closes; either way the connection ends.
		if _, err := io.ReadAll(conn); err != nil {
			t.Logf("after answer: %v", err)
		}
	}
	// The server still answers others.
	if r := testutil.Get(t, srv.URL+"/healthz", ""); r.StatusCode != 200 {
		t.Errorf("healthz after slow client: %d", r.StatusCode)
	}
}

// TestAccessLog: one line per request, with domain and client family, never
// the local part or the Authorization header.
// TestAccessLog checks the access line with the standard JSON handler and
// with the service's own (fastlog, as the binary uses it).
func TestAccessLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(io.Writer) slog.Handler
	}{
		{"slog", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
		{"fastlog", func(w io.Writer) slog.Handler { return fastlog.New(w, true, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testutil.LogBuffer{}
			srv := testutil.Start(t, testutil.Demo(t), server.Options{Logger: slog.New(tc.handler(logs))})
			req, _ := http.NewRequest("GET", srv.URL+"/mail/config-v1.1.xml?emailaddress=secretuser@example.net", nil)
			req.Header.Set("Authorization", "Basic c2VjcmV0dXNlcjpodW50ZXIy")
			req.Header.Set("User-Agent", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)")
			testutil.Do(t, req)
			srv.FlushLog()
			out := logs.String()
			line := regexp.MustCompile(`\{"time":"[^"]+","level":"INFO","msg":"request","method":"GET","path":"/mail/config-v1.1.xml","status":200,"duration":\d+,"client":"outlook","remote":"127.0.0.1","domain":"example.net"\}\n`)
			if !line.MatchString(out) {
				t.Errorf("no access line of the expected form:\n%s", out)
			}
			for _, secret := range []string{"secretuser", "c2VjcmV0dXNlcjpodW50ZXIy", "hunter2"} {
				if strings.Contains(out, secret) {
					t.Errorf("log contains %q:\n%s", secret, out)
				}
			}
		})
	}
}

// TestAutodiscoverOutcomes: Autodiscover answers errors with HTTP 200 and an
// error document, so the outcome for the metrics and the domain for the
// access line come from the handler, not from the status.
func TestAutodiscoverOutcomes(t *testing.T) {
	logs := &testutil.LogBuffer{}
	srv := testutil.Start(t, testutil.Demo(t), server.Options{Logger: slog.New(fastlog.New(logs, false, nil))})
	pox := func(addr string) {
		body := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` +
			addr + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
		req, _ := http.NewRequest("POST", srv.URL+"/autodiscover/autodiscover.xml", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml")
		if r := testutil.Do(t, req); r.StatusCode != http.StatusOK {
			t.Fatalf("POX for %s: status %d", addr, r.StatusCode)
		}
	}
	pox("alice@example.com")
	pox("bob@unknown.example")
	pox("not an address")
	if r := testutil.Get(t, srv.URL+"/autodiscover/autodiscover.json/v1.0/carol@example.net?Protocol=AutodiscoverV1", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("JSON: status %d", r.StatusCode)
	}
	for sample, want := range map[string]float64{
		`mailautoconf_http_requests_total{client="other",endpoint="autodiscover-pox",outcome="ok"}`:             1,
		`mailautoconf_http_requests_total{client="other",endpoint="autodiscover-pox",outcome="unknown-domain"}`: 1,
		`mailautoconf_http_requests_total{client="other",endpoint="autodiscover-pox",outcome="bad-request"}`:    1,
		`mailautoconf_http_requests_total{client="other",endpoint="autodiscover-json",outcome="ok"}`:            1,
	} {
		if v := metricValue(t, srv.URL, sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
	out := logs.String()
	for _, want := range []string{
		"path=/autodiscover/autodiscover.xml status=200 ",
		"client=other remote=127.0.0.1 domain=example.com\n",
		"path=/autodiscover/autodiscover.json/v1.0/*@example.net status=200 ", // log.addresses off
		"domain=example.net\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %q:\n%s", want, out)
		}
	}
}
