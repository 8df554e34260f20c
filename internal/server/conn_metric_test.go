package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// The connections the service closes itself are counted by reason: a slow
// client, an idle keep-alive connection, a client over its connection cap.
func TestConnectionsClosedMetric(t *testing.T) {
	timeouts := server.Options{Timeouts: server.Timeouts{
		ReadHeader: 200 * time.Millisecond, Read: 200 * time.Millisecond, Write: time.Second, Idle: 300 * time.Millisecond}}
	srv := testutil.Start(t, testutil.Demo(t), timeouts)
	dial := func(srv *testutil.Running) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closed := func(c net.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatal("the server did not close the connection")
		}
		c.Close()
	}

	// A head that never ends.
	c := dial(srv)
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	closed(c)
	// An answer, then nothing.
	c = dial(srv)
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	closed(c)
	waitFor(t, "the slow and idle counts", func() bool {
		return closedCount(srv, "slow") == 1 && closedCount(srv, "idle") >= 1
	})

	// A second connection while the first is open, on a server that
	// allows one per client: closed at accept with a reset (which may
	// already fail the dial).
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "c.yaml"), "limits: {max_connections_per_client: 1}\n"+providerYAML)
	capped := testutil.Start(t, cfg, server.Options{})
	held := dial(capped)
	if c, err := net.Dial("tcp", capped.Addr().String()); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("a connection over the client's cap was not closed: %v", err)
		}
		c.Close()
	}
	held.Close()
	// The scrape itself is one connection of the same client: it may
	// come before the held one is given back.
	waitFor(t, "the client_cap count", func() bool { return closedCount(capped, "client_cap") >= 1 })
}

// closedCount is the service's count of connections it closed for reason,
// or -1 when /metrics could not be read.
func closedCount(srv *testutil.Running, reason string) float64 {
	r, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	m := regexp.MustCompile(`(?m)^mailautoconf_http_connections_closed_total\{reason="` + reason + `"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
