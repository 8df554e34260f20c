package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailautoconf/internal/testutil"
)

// TestSoakSmoke is a five-second soak of the real binary: every endpoint and
// DNS under load from 32 clients, a configuration change with SIGHUP every
// second, then SIGTERM under load with uploads in flight. It checks the
// same promises as the full run (bench/soak/run), except that RSS may grow
// more while the heap is still settling in so short a run.
func TestSoakSmoke(t *testing.T) {
	rep, err := Run(Options{
		Binary:       serverBinary(t),
		Duration:     5 * time.Second,
		Conns:        32,
		HUP:          time.Second,
		WarmUp:       2 * time.Second,
		MaxRSSGrowth: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String())
	if f := rep.Failures(); len(f) > 0 {
		t.Fatalf("soak failed: %s", strings.Join(f, "; "))
	}
	// Beyond the pass/fail summary: the run really exercised what it
	// claims to.
	for _, k := range rep.Kinds {
		if k.n.Load() == 0 {
			t.Errorf("no %s requests were sent", k.name)
		}
	}
	if rep.HUPs < 3 || rep.ReloadsOK < rep.HUPs {
		t.Errorf("%d SIGHUPs, %d reloads", rep.HUPs, rep.ReloadsOK)
	}
	if s := rep.Shutdown; s.InFlight == 0 || s.Answered == 0 {
		t.Errorf("SIGTERM found nothing in flight: %+v", s)
	}
}

// TestFailuresDetected makes sure a report with broken promises does not
// pass: the soak is only worth running if it can fail.
func TestFailuresDetected(t *testing.T) {
	good := Report{
		Options:  Options{MaxRSSGrowth: 0.1, Drain: 10 * time.Second},
		Requests: 10, HUPs: 2, ReloadsOK: 2,
		RSSWarm: 100 << 20, RSSEnd: 105 << 20,
		GoroutinesIdle: 10, GoroutinesAfter: 11,
		Shutdown: ShutdownReport{InFlight: 8, InFlightDone: 8, Took: time.Second, RefusedDuringDrain: true, RefusedAfter: true},
	}
	if f := good.Failures(); len(f) > 0 {
		t.Fatalf("a good report fails: %v", f)
	}
	for name, breakIt := range map[string]func(r *Report){
		"unexpected answer":        func(r *Report) { r.Unexpected = 1 },
		"transport error":          func(r *Report) { r.Errors = 1 },
		"failed reload":            func(r *Report) { r.ReloadsFailed = 1 },
		"lost SIGHUP":              func(r *Report) { r.ReloadsOK = 1 },
		"RSS growth":               func(r *Report) { r.RSSEnd = 111 << 20 },
		"goroutine leak":           func(r *Report) { r.GoroutinesAfter = 20 },
		"server log error":         func(r *Report) { r.ServerErrors = []string{"x"} },
		"in-flight lost":           func(r *Report) { r.Shutdown.InFlightDone = 7 },
		"cut answer":               func(r *Report) { r.Shutdown.Broken = 1 },
		"exit status":              func(r *Report) { r.Shutdown.ExitCode = 1 },
		"slow drain":               func(r *Report) { r.Shutdown.Took = 11 * time.Second },
		"port still accepting":     func(r *Report) { r.Shutdown.RefusedAfter = false },
		"accepting while draining": func(r *Report) { r.Shutdown.RefusedDuringDrain = false },
		"exit before in-flight":    func(r *Report) { r.Shutdown.Took = 100 * time.Millisecond },
	} {
		r := good
		breakIt(&r)
		if len(r.Failures()) == 0 {
			t.Errorf("%s: the report passes", name)
		}
	}
}

// TestShutdownUnderLoad: SIGTERM to the real binary while 64 clients keep
// sending and eight uploads are half sent. The uploads must complete after
// SIGTERM, new connections must be refused while the server drains, no
// client may get a cut or wrong answer, and the process must exit 0 within
// the drain timeout, but not before the uploads finished.
func TestShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	srv, err := start(serverBinary(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill)
	r := shutdownUnderLoad(srv, Options{Conns: 64, Drain: 10 * time.Second}, t.Logf)
	t.Logf("%+v", r)
	if r.InFlight != 8 || r.InFlightDone != r.InFlight {
		t.Errorf("%d of %d in-flight uploads completed: %v", r.InFlightDone, r.InFlight, r.Samples)
	}
	if r.Broken > 0 {
		t.Errorf("%d cut or wrong answers after SIGTERM: %v", r.Broken, r.Samples)
	}
	if r.Answered == 0 {
		t.Errorf("no request was in flight at SIGTERM")
	}
	if !r.RefusedDuringDrain || !r.RefusedAfter {
		t.Errorf("new connections refused while draining: %v, after exit: %v", r.RefusedDuringDrain, r.RefusedAfter)
	}
	if r.ExitCode != 0 || r.Took > 10*time.Second || r.Took < releaseDelay {
		t.Errorf("exit %d after %v; want 0 after the uploads (%v) and within the drain timeout", r.ExitCode, r.Took, releaseDelay)
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// serverBinary builds the real binary once for the package's tests.
func serverBinary(t *testing.T) string {
	t.Helper()
	root := testutil.RepoRoot(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailautoconf-soak-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "mailautoconf")
		build := exec.Command("go", "build", "-o", builtBin, "./cmd/mailautoconf")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the binary: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
