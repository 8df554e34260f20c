// Package dbtest starts real database and directory servers for tests:
// PostgreSQL, MariaDB and OpenLDAP (slapd), each in a temporary directory,
// listening on a free loopback port, stopped when the test ends.
//
// Servers that refuse to run as root (PostgreSQL, MariaDB) run as the
// unprivileged user "nobody" when the tests run as root. A missing binary
// skips the test with the Debian package to install, unless
// MAILAUTOCONF_REQUIRE_ALL=1 (CI sets it), where it fails the test.
//
// Creating a data directory (initdb, mariadb-install-db) costs more than
// starting the server, so it is done once per test process and copied for
// every server; Main removes those templates when the tests are done.
package dbtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailautoconf/internal/testutil"
)

// StartTimeout bounds how long a server may take to accept connections.
const StartTimeout = 60 * time.Second

// Main runs the tests of a package that uses dbtest and removes the data
// directory templates afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	templates.cleanup()
	return code
}

// missing ends the test for a server binary that is not installed, through
// testutil.Missing: skipped (and noted in the skip log) or, under
// MAILAUTOCONF_REQUIRE_ALL=1, failed.
func missing(t testing.TB, what, pkg string, err error) {
	t.Helper()
	testutil.Missing(t, fmt.Sprintf("%s not available: %v", what, err), "apt-get install "+pkg+"; .ci/deps installs it")
}

// findBinary looks for name on PATH and then in dirs.
func findBinary(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %s", name, strings.Join(dirs, ", "))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// account is who a server process runs as.
type account struct {
	cred *syscall.Credential // nil: as the test process
	uid  int
	gid  int
}

// unprivileged returns the account for servers that refuse root: "nobody"
// when the tests run as root, the current user otherwise.
func unprivileged() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return account{}, fmt.Errorf("running a server as non-root: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return account{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

// tempDir makes a directory the account can use. t.TempDir's directories
// sit below one that only the test's user may enter, so servers running as
// "nobody" get their own directory under the system's temporary directory.
func (a account) tempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, a.uid, a.gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// command prepares a server process: run as the account, in its own process
// group (so Kill reaches its children), killed if the test process dies.
func (a account) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if a.cred != nil {
		cmd.SysProcAttr.Credential = a.cred
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	return cmd
}

// run runs a one-off command (initdb and friends) and returns its output
// in the error.
func (a account) run(bin string, args ...string) error {
	cmd := a.command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return nil
}

// process is a running server.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

func start(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits or the start
// timeout passes.
func (p *process) waitReady(ready func(context.Context) error) error {
	deadline := time.Now().Add(StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", p.name, p.err, p.log.tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	return fmt.Errorf("%s not ready after %s: %v\n%s", p.name, StartTimeout, last, p.log.tail())
}

// stop asks the server to shut down with sig and waits; it kills the process
// group after the grace period.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill ends the whole process group at once, as a crash or a pulled cable
// would, and waits for the leader to be gone.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// syncBuffer is a bytes.Buffer safe for the process's writes while a test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// templateCache holds data directories made once per test process.
type templateCache struct {
	mu   sync.Mutex
	dirs map[string]*template
}

type template struct {
	once sync.Once
	dir  string
	err  error
}

// templates is the process's cache of initialised data directories: making
// one takes seconds, copying it a few milliseconds.
var templates = &templateCache{dirs: map[string]*template{}}

// get returns the template named key, made by build in a fresh directory
// owned by acct on first use.
func (c *templateCache) get(key string, acct account, build func(dir string) error) (string, error) {
	c.mu.Lock()
	tp, ok := c.dirs[key]
	if !ok {
		tp = &template{}
		c.dirs[key] = tp
	}
	c.mu.Unlock()
	tp.once.Do(func() {
		dir, err := os.MkdirTemp("", "mailautoconf-"+key+"-template-")
		if err != nil {
			tp.err = err
			return
		}
		if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
			tp.err = err
			return
		}
		tp.dir = dir
		tp.err = build(dir)
	})
	return tp.dir, tp.err
}

func (c *templateCache) cleanup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range c.dirs {
		if tp.dir != "" {
			os.RemoveAll(tp.dir)
		}
	}
	c.dirs = map[string]*template{}
}

// copyTree copies a data directory with owners and modes (cp -a).
func copyTree(src, dst string) error {
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying %s: %w: %s", src, err, out)
	}
	return nil
}
