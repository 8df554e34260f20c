package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Environment variables that decide what a test does when something it
// needs from outside the repository is missing.
const (
	// RequireAllEnv set to 1 makes a missing validator or tool a test
	// failure instead of a skip. CI sets it (.ci/run): there everything
	// is installed, and a test that silently skips checks nothing.
	RequireAllEnv = "MAILAUTOCONF_REQUIRE_ALL"
	// SkipLogEnv names a file to which every such skip appends a line
	// (reason, tab, package directory and test name), so that `make test`
	// can end with one line saying what was skipped and why (go test
	// shows a passing package's output only with -v).
	SkipLogEnv = "MAILAUTOCONF_SKIPLOG"
)

// RequireAll reports whether a missing external tool fails the test.
func RequireAll() bool { return os.Getenv(RequireAllEnv) == "1" }

// Missing ends the test because something outside the repository that it
// needs is not there: what names it, fix says how to get it. The test is
// skipped (and the skip noted in $MAILAUTOCONF_SKIPLOG), or it fails when
// MAILAUTOCONF_REQUIRE_ALL=1.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("%s (%s); %s=1, so this is a failure, not a skip", what, fix, RequireAllEnv)
	}
	noteSkip(t, what+" ("+fix+")")
	t.Skipf("skipped: %s (%s); %s=1 makes this a failure", what, fix, RequireAllEnv)
}

// missingAtEnd is Missing for a check in the middle of a test (a
// validator run on one answer): the rest of the test still runs, and the
// test is marked skipped when it ends, unless it failed. With
// MAILAUTOCONF_REQUIRE_ALL=1 it fails at once.
func missingAtEnd(t testing.TB, what, fix string) {
	t.Helper()
	if RequireAll() {
		Missing(t, what, fix)
	}
	t.Logf("not checked: %s (%s)", what, fix)
	t.Cleanup(func() {
		// A test that failed says so; one already skipped (an earlier
		// call) says it once.
		if !t.Failed() && !t.Skipped() {
			Missing(t, what, fix)
		}
	})
}

// noteSkip appends one line to the skip log, if there is one.
func noteSkip(t testing.TB, reason string) {
	path := os.Getenv(SkipLogEnv)
	if path == "" {
		return
	}
	dir, _ := os.Getwd()
	if root, err := repoRoot(); err == nil {
		if rel, err := filepath.Rel(root, dir); err == nil {
			dir = rel
		}
	}
	// One write of a short line to a file opened with O_APPEND: the test
	// binaries of several packages append to the same log at once.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Logf("skip log %s: %v", path, err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s\t%s %s\n", reason, dir, t.Name()); err != nil {
		t.Logf("skip log %s: %v", path, err)
	}
}

// Tool returns the path of an external program, or is Missing. pkg is the
// Debian package that provides it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, ok := lookTool(name)
	if !ok {
		what, fix := toolMissing(name, pkg)
		Missing(t, what, fix)
	}
	return p
}

// lookTool searches $PATH and then /usr/sbin and /sbin (Debian installs
// nsd there, outside an ordinary user's $PATH).
func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func toolMissing(name, pkg string) (what, fix string) {
	return name + " not found", "apt-get install " + pkg + "; .ci/deps installs it"
}

// PythonModule makes sure a Python module can be imported, or is Missing.
// pkg is the Debian package.
func PythonModule(t testing.TB, module, pkg string) {
	t.Helper()
	if !havePythonModule(module) {
		what, fix := pythonMissing(module, pkg)
		Missing(t, what, fix)
	}
}

// havePythonModule tries python3 on $PATH and Debian's /usr/bin/python3,
// where python3-* packages install (the validators try both).
func havePythonModule(module string) bool {
	py, ok := lookTool("python3")
	if !ok {
		return false
	}
	for _, p := range []string{py, "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import "+module).Run() == nil {
			return true
		}
	}
	return false
}

func pythonMissing(module, pkg string) (what, fix string) {
	return "Python module " + module + " not found", "apt-get install " + pkg + "; .ci/deps installs it"
}
