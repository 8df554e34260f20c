// Package testutil starts the real service on loopback for end-to-end tests
// and runs the independent conformance validators on what it serves.
package testutil

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	if cfg.Limits.RatePerSecond == config.DefaultRatePerSecond {
		// Tests send many requests from one address; a test of the rate
		// limit configures its own.
		cfg.Limits.RatePerSecond = -1
	}
	if cfg.Limits.ExpensivePerSecond == config.DefaultExpensivePerSecond {
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
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// ConformanceDir is ../shared/conformance next to the repository (or
// $MAILAUTOCONF_CONFORMANCE). A missing directory fails the test: the
// validators are part of the test suite, not an optional extra.
func ConformanceDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MAILAUTOCONF_CONFORMANCE")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "conformance")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Fatalf("conformance validators not found in %s (set MAILAUTOCONF_CONFORMANCE): %v", dir, err)
	}
	return dir
}

// Validate writes data to a temporary file named name and runs the validator
// script (e.g. "autoconfig.py") on it with args; the test fails when the
// validator does. It returns the validator's output.
func Validate(t testing.TB, script string, data []byte, name string, args ...string) string {
	t.Helper()
	dir := ConformanceDir(t)
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	full := filepath.Join(dir, script)
	if strings.HasSuffix(script, ".py") {
		cmd = exec.Command("python3", append(append([]string{full}, args...), f)...)
	} else {
		cmd = exec.Command("bash", append(append([]string{full}, args...), f)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s rejects the server's output: %v\n%s\n--- document ---\n%s", script, strings.Join(args, " "), err, out, data)
	}
	return string(out)
}
