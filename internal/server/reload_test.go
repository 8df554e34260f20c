package server_test

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailautoconf/internal/server"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/testutil"
)

// hup sends SIGHUP to this process, as an operator or systemd's ExecReload
// does, and waits until the server counted one more successful reload.
func hup(t *testing.T, url string) {
	t.Helper()
	before := metricValue(t, url, `mailautoconf_config_reloads_total{result="success"}`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool {
		return metricValue(t, url, `mailautoconf_config_reloads_total{result="success"}`) == before+1
	})
}

// statuses sends n requests from this client and counts the answers by
// status.
func statuses(t *testing.T, url string, n int) map[int]int {
	t.Helper()
	out := map[int]int{}
	for range n {
		out[testutil.Get(t, url+"/mail/config-v1.1.xml?emailaddress=a@example.com", "").StatusCode]++
	}
	return out
}

// TestReloadRateLimit: a SIGHUP that changes limits.rate_per_second takes
// effect for the clients: 429s appear when the limit is switched on, and go
// again when it is switched off.
func TestReloadRateLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := writeConfig(t, path, "limits: {rate_per_second: -1}\n"+providerYAML)
	srv := testutil.Start(t, cfg, server.Options{ConfigPath: path, SignalOnly: true})
	if got := statuses(t, srv.URL, 20); got[http.StatusOK] != 20 {
		t.Fatalf("without a limit: %v", got)
	}

	testutil.WriteFile(t, path, []byte("limits: {rate_per_second: 0.5, burst: 3}\n"+providerYAML))
	hup(t, srv.URL)
	if got := statuses(t, srv.URL, 10); got[http.StatusOK] > 4 || got[http.StatusTooManyRequests] < 6 {
		t.Errorf("after the reload that set a limit: %v", got)
	}

	testutil.WriteFile(t, path, []byte("limits: {rate_per_second: -1}\n"+providerYAML))
	hup(t, srv.URL)
	if got := statuses(t, srv.URL, 20); got[http.StatusOK] != 20 {
		t.Errorf("after the reload that lifted the limit: %v", got)
	}
}

// TestReloadOps: limits.max_connections, log.addresses and
// metrics.per_domain follow a reload; listen addresses stay and the log says
// so.
func TestReloadOps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	file := func(max, more string) string {
		// The per-client cap as high as the listener's: this test is
		// about the listener's, and the held connection, closed below,
		// may still be counted for a moment when the next request comes.
		return "limits: {rate_per_second: -1, max_connections: " + max + ", max_connections_per_client: " + max + "}\n" + more + providerYAML
	}
	cfg := writeConfig(t, path, file("1", ""))
	logs := &testutil.LogBuffer{}
	srv := testutil.Start(t, cfg, server.Options{
		ConfigPath: path, SignalOnly: true, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		// The held connection below sends nothing: it must not be cut
		// off while the test waits.
		Timeouts: server.Timeouts{ReadHeader: time.Minute, Read: time.Minute},
	})

	// One connection held open fills max_connections: 1, so a second
	// one waits to be accepted.
	hold, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	waiting := make(chan int, 1)
	go func() {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		r, err := c.Get(srv.URL + "/healthz")
		if err != nil {
			waiting <- 0
			return
		}
		r.Body.Close()
		waiting <- r.StatusCode
	}()
	select {
	case code := <-waiting:
		t.Fatalf("a second connection was served (%d) with max_connections: 1 and one open", code)
	case <-time.After(300 * time.Millisecond):
	}
	testutil.WriteFile(t, path, []byte(file("10", "")))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-waiting:
		if code != http.StatusOK {
			t.Errorf("the waiting request got %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("max_connections raised by the reload, but the waiting connection was not accepted")
	}
	hold.Close()

	get := func() {
		t.Helper()
		if r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress=secret.local@example.com", ""); r.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	const perDomain = `mailautoconf_http_domain_requests_total{domain="example.com"}`
	get()
	if strings.Contains(logs.String(), "secret.local") {
		t.Errorf("address logged without log.addresses:\n%s", logs)
	}
	if v := metricValue(t, srv.URL, perDomain); v != 0 {
		t.Errorf("per-domain counter without metrics.per_domain: %v", v)
	}

	testutil.WriteFile(t, path, []byte(file("10", "listen: {http: '127.0.0.1:1'}\nlog: {addresses: true}\nmetrics: {per_domain: true}\n")))
	hup(t, srv.URL)
	get()
	if !strings.Contains(logs.String(), "address=secret.local@example.com") {
		t.Errorf("log.addresses turned on by the reload, but the address is not logged:\n%s", logs)
	}
	if v := metricValue(t, srv.URL, perDomain); v != 1 {
		t.Errorf("metrics.per_domain turned on by the reload: counter %v, want 1", v)
	}
	if !strings.Contains(logs.String(), `msg="read at start only: restart the service to use the new values" keys=listen.http`) {
		t.Errorf("the changed listen address is not logged:\n%s", logs)
	}

	testutil.WriteFile(t, path, []byte(file("10", "")))
	hup(t, srv.URL)
	get()
	if v := metricValue(t, srv.URL, perDomain); v != 0 {
		t.Errorf("metrics.per_domain turned off by the reload: counter still %v", v)
	}
	if n := strings.Count(logs.String(), "secret.local"); n != 1 {
		t.Errorf("log.addresses turned off by the reload, but the address is logged %d times:\n%s", n, logs)
	}
}

// TestExtraDomains: domains of another source are served with the
// configuration in force, survive a reload of the file, and a bad row is
// left out with a logged reason.
func TestExtraDomains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := writeConfig(t, path, providerYAML)
	logs := &testutil.LogBuffer{}
	srv := testutil.Start(t, cfg, server.Options{ConfigPath: path, SignalOnly: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	status := func(addr string) int {
		return testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?emailaddress="+addr, "").StatusCode
	}
	if status("a@from-db.test") != http.StatusNotFound {
		t.Fatal("served before it was added")
	}
	reloads := `mailautoconf_config_reloads_total{result="success"}`
	before := metricValue(t, srv.URL, reloads)
	err := srv.SetExtraDomains([]settings.Domain{
		{Name: "from-db.test", Provider: "mail.example.com"},
		{Name: "alias-db.test", Provider: "mail.example.com", AliasOf: "example.com"},
		{Name: "example.com", Provider: "mail.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a@from-db.test", "a@alias-db.test", "a@example.com"} {
		if got := status(a); got != http.StatusOK {
			t.Errorf("%s: %d", a, got)
		}
	}
	if !strings.Contains(logs.String(), `msg="domain not served" domain=example.com provider=mail.example.com reason="domain example.com is already served by provider mail.example.com"`) {
		t.Errorf("the bad row is not logged:\n%s", logs)
	}
	if v := metricValue(t, srv.URL, "mailautoconf_config_domains"); v != 4 {
		t.Errorf("domains gauge %v, want 4", v)
	}
	if v := metricValue(t, srv.URL, "mailautoconf_config_domains_not_served"); v != 1 {
		t.Errorf("domains not served %v, want 1 (the row naming example.com)", v)
	}
	// The same rows again (a directory refresh that found them
	// unchanged): the row left out is not logged a second time.
	err = srv.SetExtraDomains([]settings.Domain{
		{Name: "from-db.test", Provider: "mail.example.com"},
		{Name: "alias-db.test", Provider: "mail.example.com", AliasOf: "example.com"},
		{Name: "example.com", Provider: "mail.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), `msg="domain not served" domain=example.com`); n != 1 {
		t.Errorf("the row left out is logged %d times after two identical refreshes, want once:\n%s", n, logs)
	}
	// Other sources' domains are not a reload of the configuration.
	if v := metricValue(t, srv.URL, reloads); v != before {
		t.Errorf("%s = %v after new extra domains, want %v as before", reloads, v, before)
	}
	testutil.WriteFile(t, path, []byte(strings.Replace(providerYAML, "example.net]", "example.net, example.org]", 1)))
	hup(t, srv.URL)
	for _, a := range []string{"a@from-db.test", "a@example.org"} {
		if got := status(a); got != http.StatusOK {
			t.Errorf("after the reload, %s: %d", a, got)
		}
	}
}
