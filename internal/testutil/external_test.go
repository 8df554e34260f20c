package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helperEnv makes the test binary run the helper tests below, which stand
// for the suite's tests in a checkout without ../shared.
const helperEnv = "MAILAUTOCONF_TESTUTIL_HELPER"

func TestHelperValidate(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestMissingExternals")
	}
	t.Log("first check ran")
	if out := Validate(t, "autoconfig.py", []byte("<clientConfig/>"), "config.xml"); out != "" {
		t.Errorf("validator output %q without validators", out)
	}
	t.Log("second check ran")
	Validate(t, "autoconfig.py", []byte("<clientConfig/>"), "config.xml", "--android")
	t.Log("third check ran")
}

func TestHelperTool(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestMissingExternals")
	}
	Tool(t, "mailautoconf-no-such-tool", "no-such-package")
	t.Error("Tool returned for a missing program")
}

func TestHelperFails(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestMissingExternals")
	}
	t.Error("a real failure")
	Validate(t, "autoconfig.py", []byte("<clientConfig/>"), "config.xml")
}

// runHelpers runs the helper tests in a checkout with no shared/ beside
// it (a go.mod in an empty directory), with the given extra environment.
func runHelpers(t *testing.T, run string, env ...string) (out string, code int, log string) {
	t.Helper()
	checkout := filepath.Join(t.TempDir(), "lone", "x")
	if err := os.MkdirAll(checkout, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "skips")
	cmd := exec.Command(os.Args[0], "-test.run=^("+run+")$", "-test.v", "-test.count=1")
	cmd.Dir = checkout
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != RequireAllEnv && k != ConformanceEnv && k != SkipLogEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helperEnv+"=1", SkipLogEnv+"="+logFile)
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	l, _ := os.ReadFile(logFile)
	return string(b), code, string(l)
}

// In a clone on its own, a test that needs the validators or a tool runs
// everything else and is skipped, with the reason, and the skip is noted
// for the one summary line of `make test`. With MAILAUTOCONF_REQUIRE_ALL=1
// the same test fails.
func TestMissingExternals(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("helper process")
	}
	out, code, log := runHelpers(t, "TestHelperValidate|TestHelperTool")
	for _, s := range []string{
		"first check ran", "second check ran", "third check ran",
		"--- SKIP: TestHelperValidate", "--- SKIP: TestHelperTool",
		"conformance validators not found at ", filepath.Join("lone", "shared", "conformance"),
		"set " + ConformanceEnv,
		"mailautoconf-no-such-tool not found (apt-get install no-such-package",
		RequireAllEnv + "=1 makes this a failure",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d, want 0:\n%s", code, out)
	}
	if n := strings.Count(out, "skipped: conformance validators"); n != 1 {
		t.Errorf("the skip is said %d times, want once:\n%s", n, out)
	}
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 2 || !strings.Contains(log, "conformance validators not found at ") ||
		!strings.Contains(log, " TestHelperValidate\n") || !strings.Contains(log, "mailautoconf-no-such-tool not found") ||
		!strings.Contains(log, " TestHelperTool\n") {
		t.Errorf("skip log:\n%s", log)
	}

	// The summary `make test` prints: one line naming both reasons.
	if bash, err := exec.LookPath("bash"); err == nil {
		f := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(f, []byte(log), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, filepath.Join(RepoRoot(t), ".ci", "skips"), f)
		sum, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf(".ci/skips: %v\n%s", err, sum)
		}
		s := strings.TrimSpace(string(sum))
		if strings.Count(s, "\n") != 0 || !strings.HasPrefix(s, "SKIPPED 2 tests") ||
			!strings.Contains(s, ": conformance validators not found at ") ||
			!strings.Contains(s, "MAILAUTOCONF_CONFORMANCE) [1 test]; mailautoconf-no-such-tool not found") ||
			!strings.Contains(s, RequireAllEnv+"=1") {
			t.Errorf(".ci/skips summary:\n%s", sum)
		}
	}

	// A test that fails is reported as failed, not hidden by the skip.
	out, code, _ = runHelpers(t, "TestHelperFails")
	if code == 0 || !strings.Contains(out, "--- FAIL: TestHelperFails") || !strings.Contains(out, "a real failure") {
		t.Errorf("failing test: exit %d\n%s", code, out)
	}

	// CI: the same tests fail.
	out, code, log = runHelpers(t, "TestHelperValidate|TestHelperTool", RequireAllEnv+"=1")
	for _, s := range []string{"--- FAIL: TestHelperValidate", "--- FAIL: TestHelperTool", "so this is a failure, not a skip"} {
		if !strings.Contains(out, s) {
			t.Errorf("with %s=1, output lacks %q:\n%s", RequireAllEnv, s, out)
		}
	}
	if code == 0 || strings.Contains(out, "--- SKIP") || log != "" {
		t.Errorf("with %s=1: exit %d, skip log %q\n%s", RequireAllEnv, code, log, out)
	}
}
