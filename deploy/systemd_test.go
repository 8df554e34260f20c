package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailautoconf/internal/testutil"
)

const (
	unitFile      = "mailautoconf.service"
	installedPath = "/usr/local/bin/mailautoconf"
)

// unitDirectives reads the [Service] section of a unit as directive ->
// values (a directive may repeat).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case section == "Service":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			out[k] = append(out[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// installedUnit writes a copy of the unit whose commands point at the
// freshly built binary, since systemd-analyze verify insists that they
// exist and are executable.
func installedUnit(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), installedPath) {
		t.Fatalf("%s does not run %s", unitFile, installedPath)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, unitFile)
	unit := strings.ReplaceAll(string(data), installedPath, binary(t))
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// systemdAnalyze runs systemd-analyze (a skip without it, a failure with
// MAILAUTOCONF_REQUIRE_ALL=1).
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testutil.Tool(t, "systemd-analyze", "systemd"), args...).CombinedOutput()
	return string(out), err
}

func TestSystemdUnitVerifies(t *testing.T) {
	unit := installedUnit(t)
	out, err := systemdAnalyze(t, "verify", "--man=no", unit)
	// verify exits 0 on unknown or misspelled directives and only warns:
	// any output at all is a mistake in the unit.
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

// A misspelled directive must make the verify check fail; otherwise the
// test above would pass on any unit.
func TestSystemdVerifyCatchesMistakes(t *testing.T) {
	unit := installedUnit(t)
	for _, c := range []struct{ name, from, to string }{
		{"misspelled directive", "ProtectSystem=strict", "ProtectSystm=strict"},
		{"missing binary", "ExecStart=" + binary(t), "ExecStart=" + binary(t) + "-missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(unit)
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(t.TempDir(), unitFile)
			if err := os.WriteFile(bad, []byte(strings.Replace(string(data), c.from, c.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := systemdAnalyze(t, "verify", "--man=no", bad)
			if err == nil && strings.TrimSpace(out) == "" {
				t.Fatal("systemd-analyze verify accepted a broken unit silently")
			}
		})
	}
}

// systemd's own rating of the sandbox: "OK" is an exposure of 2.0 or less
// on its 0 (locked down) to 10 (unprotected) scale.
func TestSystemdUnitExposure(t *testing.T) {
	unit := installedUnit(t)
	out, err := systemdAnalyze(t, "security", "--offline=yes", "--threshold=20", "--no-pager", unit)
	if err != nil {
		t.Fatalf("systemd-analyze security rates %s above 2.0: %v\n%s", unitFile, err, out)
	}
}

func TestSystemdUnitHardening(t *testing.T) {
	d := unitDirectives(t, unitFile)
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"User", []string{"mailautoconf"}},
		{"AmbientCapabilities", []string{"CAP_NET_BIND_SERVICE"}},
		{"CapabilityBoundingSet", []string{"CAP_NET_BIND_SERVICE"}},
		{"NoNewPrivileges", []string{"yes"}},
		{"ProtectSystem", []string{"strict"}},
		{"ProtectHome", []string{"yes"}},
		{"PrivateTmp", []string{"yes"}},
		{"PrivateDevices", []string{"yes"}},
		{"ProtectKernelTunables", []string{"yes"}},
		{"ProtectKernelModules", []string{"yes"}},
		{"ProtectKernelLogs", []string{"yes"}},
		{"ProtectControlGroups", []string{"yes"}},
		{"RestrictAddressFamilies", []string{"AF_INET AF_INET6 AF_UNIX"}},
		{"MemoryDenyWriteExecute", []string{"yes"}},
		{"LockPersonality", []string{"yes"}},
		{"ReadOnlyPaths", []string{"/etc/mailautoconf"}},
		{"Restart", []string{"on-failure"}},
		{"ExecReload", []string{"/bin/kill -HUP $MAINPID"}},
	} {
		if got := d[c.key]; !slices.Equal(got, c.want) {
			t.Errorf("%s=%q, want %q", c.key, got, c.want)
		}
	}
	if f := d["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", f)
	}

	// ExecStartPre checks exactly the file that ExecStart serves, and that
	// file lies under ReadOnlyPaths.
	start := strings.Fields(strings.Join(d["ExecStart"], " "))
	pre := strings.Fields(strings.Join(d["ExecStartPre"], " "))
	if len(start) < 2 || start[0] != installedPath || start[1] != "serve" {
		t.Fatalf("ExecStart=%q, want %s serve …", start, installedPath)
	}
	if len(pre) < 2 || pre[0] != installedPath || pre[1] != "check" {
		t.Fatalf("ExecStartPre=%q, want %s check …", pre, installedPath)
	}
	cfg := flagValue(start, "--config")
	if cfg == "" || flagValue(pre, "--config") != cfg {
		t.Errorf("ExecStartPre checks %q, ExecStart serves %q", flagValue(pre, "--config"), cfg)
	}
	if filepath.Dir(cfg) != d["ReadOnlyPaths"][0] {
		t.Errorf("configuration %s is not under ReadOnlyPaths=%s", cfg, d["ReadOnlyPaths"][0])
	}
}

// The unit's check command, run by the real binary on the example
// configuration that deploy/README.md tells operators to start from.
func TestSystemdExecStartPreAcceptsExample(t *testing.T) {
	d := unitDirectives(t, unitFile)
	pre := strings.Fields(d["ExecStartPre"][0])
	bin := binary(t)
	args := slices.Clone(pre[1:])
	for i := range args {
		if i > 0 && args[i-1] == "--config" {
			args[i] = "config.example.yaml"
		}
	}
	out, err := run(t, bin, args...)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	// And it refuses a broken file, so a bad edit keeps the service from
	// (re)starting instead of serving nonsense.
	bad := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(bad, []byte("providers:\n  - id: not a host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range args {
		if i > 0 && args[i-1] == "--config" {
			args[i] = bad
		}
	}
	if out, err := run(t, bin, args...); err == nil {
		t.Fatalf("check accepted a broken configuration:\n%s", out)
	} else if !strings.Contains(out, "config.yaml:") {
		t.Errorf("check's message does not name file and line:\n%s", out)
	}
}

// flagValue returns the value after name in args ("--config FILE").
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
