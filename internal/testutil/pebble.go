package testutil

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Need skips the test with a clear message when a component it runs is
// missing (err says why), unless MAILAUTOCONF_REQUIRE_ALL=1 (CI), where a
// missing component fails the test instead of hiding it.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("MAILAUTOCONF_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is missing and MAILAUTOCONF_REQUIRE_ALL=1: %v", what, err)
	}
	t.Skipf("%s is missing (%v); `bash .ci/deps` installs it", what, err)
}

// PebbleBinary finds Pebble, Let's Encrypt's test ACME server: $MAILAUTOCONF_PEBBLE,
// then $(go env GOPATH)/bin/pebble (where .ci/deps builds it), then PATH.
func PebbleBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILAUTOCONF_PEBBLE"); p != "" {
		return p
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(gopath, "bin", "pebble")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	p, err := exec.LookPath("pebble")
	Need(t, "pebble (go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3)", err)
	return p
}

// PebbleOptions say where Pebble validates.
type PebbleOptions struct {
	// HTTPPort and TLSPort are the ports Pebble connects to for HTTP-01
	// and TLS-ALPN-01: the service's listeners.
	HTTPPort, TLSPort int
	// DNS is the DNS server (host:port, TCP) Pebble resolves names with:
	// the service's own DNS listener.
	DNS string
	// Validity of the certificates Pebble issues; default 90 days.
	Validity time.Duration
	// Blocked names are refused by policy ("rejectedIdentifier").
	Blocked []string
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile is the PEM file of the CA behind Pebble's own HTTPS
	// certificate: tls.acme.ca_roots.
	CAFile string
	mgmt   string
	client *http.Client
	log    *LogBuffer
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartPebble runs Pebble on free loopback ports until the test ends.
// Validation is real (no PEBBLE_VA_ALWAYS_VALID), without Pebble's random
// sleeps, nonce rejections or authorization reuse, so that every order
// validates and a run takes seconds.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bin := PebbleBinary(t)
	dir := t.TempDir()
	ca := NewCA(t)
	certFile, keyFile := ca.IssueFiles(t, dir, "pebble", time.Time{}, "localhost", "127.0.0.1")
	caFile := filepath.Join(dir, "pebble-ca.pem")
	WriteFile(t, caFile, ca.PEM)
	validity := o.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	api, mgmt := FreePort(t), FreePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(api),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                o.HTTPPort,
		"tlsPort":                 o.TLSPort,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"domainBlocklist":         o.Blocked,
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": int(validity.Seconds()),
		}},
	}}
	data, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	WriteFile(t, confFile, data)

	args := []string{"-config", confFile}
	if o.DNS != "" {
		args = append(args, "-dnsserver", o.DNS)
	}
	p := &Pebble{
		Directory: "https://127.0.0.1:" + strconv.Itoa(api) + "/dir",
		CAFile:    caFile,
		mgmt:      "https://127.0.0.1:" + strconv.Itoa(mgmt),
		client:    &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}},
		log:       &LogBuffer{},
		done:      make(chan struct{}),
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }() //nolint:errcheck // killed at cleanup
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.done:
			t.Fatalf("pebble exited:\n%s", p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer at %s: %v\n%s", p.Directory, err, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// Stop ends Pebble (it keeps everything in memory: a new one knows no
// account, order or certificate).
func (p *Pebble) Stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill() //nolint:errcheck // already gone is fine
		<-p.done
	}
}

// Root is the root certificate (PEM) of the certificates Pebble issues,
// from its management interface. It is made anew at every start.
func (p *Pebble) Root(t testing.TB) []byte {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %s\n%s", resp.Status, b)
	}
	return b
}

// Orders counts the orders Pebble has accepted so far.
func (p *Pebble) Orders() int {
	return strings.Count(p.log.String(), "Added order")
}

// Log is Pebble's output so far.
func (p *Pebble) Log() string { return p.log.String() }

// WaitFor polls cond every 50 ms until it holds or timeout passes, and
// fails the test with what(…) then.
func WaitFor(t testing.TB, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("after %s: %s", timeout, what())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// for programs that take a port number rather than a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// String implements fmt.Stringer for failure messages.
func (p *Pebble) String() string { return fmt.Sprintf("pebble at %s", p.Directory) }
