// Package testutil starts the real service on loopback for end-to-end tests
// and runs the independent conformance validators on what it serves.
package testutil

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
)

// Running is a server started for one test.
type Running struct {
	*server.Server
	URL string // http://127.0.0.1:PORT
}

// Demo loads the built-in demo configuration.
func Demo(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatalf("demo configuration: %v", err)
	}
	return cfg
}

// Start starts the real server for cfg on a free loopback port and stops it
// when the test ends. opts.HTTPAddr defaults to 127.0.0.1:0.
func Start(t testing.TB, cfg *config.Config, opts server.Options) *Running {
	t.Helper()
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.DNSAddr == "" && cfg.Listen.DNS != "" {
		// The demo's DNS port is fixed; tests run in parallel.
		opts.DNSAddr = "127.0.0.1:0"
	}
	if cfg.Limits.RatePerSecond == 0 {
		// Tests send many requests from one address; a test of the rate
		// limit configures its own. (0 means the default limit.)
		cfg.Limits.RatePerSecond = -1
	}
	if cfg.Limits.ExpensivePerSecond == 0 {
		// Likewise for the expensive-answer budget (0: the default).
		cfg.Limits.ExpensivePerSecond = -1
	}
	srv, err := server.New(cfg, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop")
		}
	})
	return &Running{Server: srv, URL: "http://" + srv.Addr().String()}
}

// Response is a fetched HTTP response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// Do sends a request and reads the whole answer.
func Do(t testing.TB, req *http.Request) Response {
	t.Helper()
	c := &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", req.URL, err)
	}
	return Response{Response: resp, Body: b}
}

// Get fetches url, with an optional Host header.
func Get(t testing.TB, url, host string) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	return Do(t, req)
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// ConformanceEnv names the directory of the conformance validators when
// they are not in ../shared/conformance beside the checkout.
const ConformanceEnv = "MAILAUTOCONF_CONFORMANCE"

// ConformanceDir is ../shared/conformance next to the repository (or
// $MAILAUTOCONF_CONFORMANCE). The validators are not part of the
// repository: in a clone on its own the tests that need them skip
// (Missing), unless MAILAUTOCONF_REQUIRE_ALL=1.
func ConformanceDir(t testing.TB) string {
	t.Helper()
	dir, ok := conformanceDir(t)
	if !ok {
		what, fix := conformanceMissing(dir)
		Missing(t, what, fix)
	}
	return dir
}

// conformanceDir finds the validators. A directory named in the variable
// that does not hold them is a mistake, and fails the test.
func conformanceDir(t testing.TB) (dir string, ok bool) {
	t.Helper()
	dir = os.Getenv(ConformanceEnv)
	explicit := dir != ""
	if !explicit {
		dir = filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "conformance")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		if explicit {
			t.Fatalf("%s=%s holds no conformance validators: %v", ConformanceEnv, dir, err)
		}
		return dir, false
	}
	return dir, true
}

func conformanceMissing(dir string) (what, fix string) {
	return "conformance validators not found at " + dir,
		"put the shared/ directory beside the checkout or set " + ConformanceEnv
}

// Validate writes data to a temporary file named name and runs the validator
// script (e.g. "autoconfig.py") on it with args; the test fails when the
// validator does. It returns the validator's output.
//
// Without the validators, or a tool they need, Validate returns "" and the
// rest of the test runs: the test is marked skipped when it ends (or fails,
// with MAILAUTOCONF_REQUIRE_ALL=1). A caller that reads the output checks
// for "" first.
func Validate(t testing.TB, script string, data []byte, name string, args ...string) string {
	t.Helper()
	dir, ok := conformanceDir(t)
	if !ok {
		what, fix := conformanceMissing(dir)
		missingAtEnd(t, what, fix)
		return ""
	}
	interp, pkg := "bash", "bash"
	if strings.HasSuffix(script, ".py") {
		interp, pkg = "python3", "python3"
	}
	path, ok := lookTool(interp)
	if !ok {
		what, fix := toolMissing(interp, pkg)
		missingAtEnd(t, what, fix)
		return ""
	}
	// What the validators need beyond their interpreter: openssl to
	// verify a signed profile (DER, a SEQUENCE: 0x30), exchangelib for
	// the second opinion on Autodiscover.
	if script == "mobileconfig.py" && len(data) > 0 && data[0] == 0x30 {
		if _, ok := lookTool("openssl"); !ok {
			what, fix := toolMissing("openssl", "openssl")
			missingAtEnd(t, what, fix)
			return ""
		}
	}
	if slices.Contains(args, "--exchangelib") && !havePythonModule("exchangelib") {
		what, fix := pythonMissing("exchangelib", "python3-exchangelib")
		missingAtEnd(t, what, fix)
		return ""
	}
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, append(append([]string{filepath.Join(dir, script)}, args...), f)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s rejects the server's output: %v\n%s\n--- document ---\n%s", script, strings.Join(args, " "), err, out, data)
	}
	return string(out)
}
