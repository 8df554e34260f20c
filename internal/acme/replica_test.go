package acme_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/acme"
	"mailautoconf/internal/config"
)

// TestMain lets the test binary play a second process of the service
// sharing the storage (see TestTwoProcessesOneStorage).
func TestMain(m *testing.M) {
	if os.Getenv("MAILAUTOCONF_ACME_REPLICA") == "1" {
		os.Exit(replica())
	}
	os.Exit(m.Run())
}

// replica runs a manager with its own listeners on the storage and CA
// given in the environment, waits until every name has a certificate and
// prints "name serial" per name.
func replica() int {
	port, _ := strconv.Atoi(os.Getenv("PRECHECK_PORT"))
	perHour, _ := strconv.Atoi(os.Getenv("ORDERS_PER_HOUR"))
	cfg := &config.ACME{
		Directory: os.Getenv("DIRECTORY"), CARoots: []string{os.Getenv("CA_FILE")}, Storage: os.Getenv("STORAGE"),
		OrdersPerHour: perHour, PrecheckPort: port, Resolver: os.Getenv("RESOLVER"),
	}
	// The other process goes through the names in the opposite order, so
	// that the two meet in the middle: each orders some names and waits on
	// the other's lock for others.
	names := strings.Split(os.Getenv("NAMES"), ",")
	slices.Reverse(names)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m, err := acme.New(cfg, acme.Options{HTTPAddr: plain.Addr().String(), RetryMin: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer m.Close()
	go http.Serve(plain, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { //nolint:errcheck // ends with the process
		if !m.HandleHTTPChallenge(w, r) {
			http.NotFound(w, r)
		}
	}))
	fmt.Println("ready")
	// Start when the parent says so, at the same moment as its own manager.
	bufio.NewReader(os.Stdin).ReadString('\n') //nolint:errcheck // EOF starts too
	m.Update(acme.Names{Listed: names})
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range names {
		for {
			if c, ok := m.Certificate(n); ok {
				fmt.Println(n, c.Leaf.SerialNumber)
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, n, "not issued:", m.Status(n).LastErr)
				return 1
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return 0
}

// TestTwoProcessesOneStorage: two processes sharing the storage, started
// together, order each name once (the storage's lock files serialise them
// and the second finds the first one's certificate), and both serve the
// same certificate. The CA validates against the first process's
// listeners, which also answer the second one's challenges (they are in
// the shared storage).
func TestTwoProcessesOneStorage(t *testing.T) {
	e := newEnv(t, 0)
	cfg := e.acmeConfig()
	m := e.manager(t, cfg, nil)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MAILAUTOCONF_ACME_REPLICA=1",
		"DIRECTORY="+cfg.Directory, "CA_FILE="+cfg.CARoots[0], "STORAGE="+cfg.Storage,
		"PRECHECK_PORT="+strconv.Itoa(cfg.PrecheckPort), "ORDERS_PER_HOUR="+strconv.Itoa(cfg.OrdersPerHour),
		"RESOLVER="+cfg.Resolver, "NAMES="+strings.Join(listed, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck // may have ended
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("replica did not start: %s", stderr.String())
	}
	fmt.Fprintln(stdin)
	m.Update(namesFor(e.cat))

	theirs := map[string]string{}
	for out.Scan() {
		f := strings.Fields(out.Text())
		if len(f) == 2 {
			theirs[f[0]] = f[1]
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("replica: %v\n%s", err, stderr.String())
	}
	waitIssued(t, m, listed...)
	for _, n := range listed {
		c, ok := m.Certificate(n)
		if !ok {
			t.Fatalf("%s: no certificate here", n)
		}
		if mine := c.Leaf.SerialNumber.String(); theirs[n] != mine {
			t.Errorf("%s: the processes serve different certificates (%s here, %s there)", n, mine, theirs[n])
		}
	}
	placed := strings.Count(stderr.String(), "ordering certificate")
	t.Logf("the second process ordered %d names and found %d in the storage", placed, len(listed)-placed)
	if n := e.pebble.Orders(); n != len(listed) {
		t.Errorf("two processes on one storage: %d orders for %d names", n, len(listed))
	}
}
