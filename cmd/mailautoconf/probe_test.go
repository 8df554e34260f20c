package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/probe"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// TestProbeCommand runs `mailautoconf probe` against the real service
// (HTTP, HTTPS with a private CA given with --ca, DNS with --resolver) and
// checks the exit status and both output forms.
func TestProbeCommand(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "web", time.Time{}, "autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com", "example.com")
	caFile := filepath.Join(dir, "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	demo, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "internal", "config", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, []byte(fmt.Sprintf("tls:\n  certificates:\n    - {cert: %s, key: %s}\n", cert, key)+string(demo)))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0"})
	common := []string{
		"--resolver", srv.DNSAddr().String(),
		"--connect-to", ":80=" + srv.Addr().String(),
		"--connect-to", ":443=" + srv.HTTPSAddr().String(),
		"--timeout", "5s",
	}

	for _, c := range []struct {
		name     string
		args     []string
		wantCode int
		stdout   []string // substrings of stdout
		stderr   string   // substring of stderr
	}{
		{"text", append([]string{"probe", "alice@example.com", "--ca", caFile}, common...), 0,
			[]string{"CLIENT", "Thunderbird   incoming   imap      imap.example.com  993   tls", "Every client gets a working TLS configuration."}, ""},
		// Options before the address work as well.
		{"options first", append(append([]string{"probe", "--ca", caFile}, common...), "alice@example.com"), 0,
			[]string{"SRV clients   outgoing   smtp      smtp.example.com  465   tls",
				"PACC clients  outgoing   smtp      smtp.example.com  465   tls"}, ""},
		// Without the private CA every https answer fails verification.
		{"untrusted", append([]string{"probe", "alice@example.com"}, common...), 1,
			[]string{"ERROR    certificate", "problem(s)"}, ""},
		{"unknown domain", append([]string{"probe", "alice@unknown.test", "--ca", caFile}, common...), 1,
			[]string{"no-config"}, ""},
		{"bad address", append([]string{"probe", "alice@@example.com"}, common...), 2, nil, "invalid email address"},
		{"no address", []string{"probe", "--json"}, 2, nil, "exactly one e-mail address"},
		{"two addresses", []string{"probe", "a@example.com", "b@example.com"}, 2, nil, "exactly one e-mail address"},
		{"bad connect-to", []string{"probe", "a@example.com", "--connect-to", "443"}, 2, nil, "want HOST:PORT=HOST:PORT"},
		{"missing CA file", []string{"probe", "a@example.com", "--ca", filepath.Join(dir, "nope.pem")}, 2, nil, "reading CA file"},
		{"CA file without certificates", []string{"probe", "a@example.com", "--ca", path}, 2, nil, "no PEM certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(c.args, &out, &errOut)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.wantCode, out.String(), errOut.String())
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			if !strings.Contains(errOut.String(), c.stderr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), c.stderr)
			}
			// Not a terminal: no colour codes.
			if strings.Contains(out.String(), "\x1b[") {
				t.Errorf("escape codes in output to a pipe:\n%q", out.String())
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"probe", "--json", "Alice@Example.COM", "--ca", caFile}, common...), &out, &errOut)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut.String(), out.String())
		}
		var rep probe.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if !rep.OK || rep.Address != "Alice@example.com" || len(rep.Clients) != 5 || len(rep.Checks) == 0 {
			t.Errorf("report %+v", rep)
		}
		for _, v := range rep.Clients {
			if v.Incoming == nil || v.Incoming.Port != 993 || v.Outgoing == nil || v.Outgoing.Port != 465 {
				t.Errorf("%s: %+v %+v", v.Client, v.Incoming, v.Outgoing)
			}
		}
	})
}
