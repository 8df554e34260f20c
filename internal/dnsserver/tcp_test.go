package dnsserver_test

import (
	"errors"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// These tests hold DNS-over-TCP connections open from one loopback
// address (all of 127.0.0.0/8 reaches lo on Linux) and measure what
// another address gets meanwhile.

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) *dns.Conn {
	t.Helper()
	c, err := tryDial(t, src, addr)
	if err != nil {
		t.Fatalf("connecting from %s: %v", src, err)
	}
	return c
}

// tryDial is dialFrom for a connection the server may reset before the
// connection is complete on the client's side.
func tryDial(t *testing.T, src, addr string) (*dns.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &dns.Conn{Conn: c}, nil
}

// ask sends one query on c and waits up to wait for its answer.
func ask(c *dns.Conn, wait time.Duration) error {
	q := query("_imaps._tcp.example.com.", dns.TypeSRV)
	_ = c.SetDeadline(time.Now().Add(wait))
	if err := c.WriteMsg(q); err != nil {
		return err
	}
	r, err := c.ReadMsg()
	if err != nil {
		return err
	}
	if r.Id != q.Id || len(r.Answer) != 1 {
		return errors.New("wrong answer: " + r.String())
	}
	return nil
}

// closed waits up to wait for the server to close c, and says how long it
// took; ok is false when c stayed open (or sent something).
func closed(c *dns.Conn, wait time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(wait))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

// answerTimes measures n queries from src, each on a new connection, and
// returns the times from connecting to the answer, sorted.
func answerTimes(t *testing.T, src, addr string, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		start := time.Now()
		c := dialFrom(t, src, addr)
		if err := ask(c, 3*time.Second); err != nil {
			t.Fatalf("query from %s: %v after %v", src, err, time.Since(start))
		}
		out = append(out, time.Since(start))
		c.Close()
	}
	slices.Sort(out)
	return out
}

// checkPrompt: another address is answered within 100 ms (the median of
// its queries; each within a second, where before it waited for the idle
// connections to time out).
func checkPrompt(t *testing.T, times []time.Duration) {
	t.Helper()
	if med := times[len(times)/2]; med > 100*time.Millisecond || times[len(times)-1] > time.Second {
		t.Errorf("another address answered after %v (median %v), want a median within 100 ms", times, med)
	}
}

// One address may hold dns.tcp.max_connections_per_source connections;
// more are closed at once, and other addresses are answered as usual.
func TestTCPPerSourceLimit(t *testing.T) {
	conf := func(perSource string) string {
		return `
dns:
  tcp: {max_connections_per_source: ` + perSource + `}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`
	}
	srv := testutil.Start(t, parse(t, conf("8")), server.Options{DNSAddr: "127.0.0.1:0"})
	addr := srv.DNSAddr().String()
	var held []*dns.Conn
	for i := range 8 {
		c := dialFrom(t, "127.0.0.61", addr)
		if err := ask(c, 3*time.Second); err != nil {
			t.Fatalf("connection %d of 8: %v", i+1, err)
		}
		held = append(held, c)
	}
	// The ninth from the same address is closed as soon as accepted
	// (sometimes before the client saw its connection complete).
	extra, err := tryDial(t, "127.0.0.61", addr)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		t.Logf("a ninth connection from the address holding 8 was reset while connecting")
	case err != nil:
		t.Fatal(err)
	default:
		if d, ok := closed(extra, 2*time.Second); !ok {
			t.Errorf("a ninth connection from one address stayed open")
		} else {
			t.Logf("a ninth connection from the address holding 8 was closed after %v", d.Round(time.Microsecond))
		}
	}
	// Another address is answered at once.
	times := answerTimes(t, "127.0.0.62", addr, 5)
	t.Logf("while 127.0.0.61 holds 8 idle connections (its maximum), 127.0.0.62 is answered over TCP in %v", times)
	checkPrompt(t, times)
	// The held connections still work, and closing one makes room.
	if err := ask(held[3], time.Second); err != nil {
		t.Errorf("a held connection: %v", err)
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := tryDial(t, "127.0.0.61", addr)
		if err == nil && ask(c, time.Second) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room for a new connection after one of 8 closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The limit follows a reload.
	if err := srv.Reload(parse(t, conf("9"))); err != nil {
		t.Fatal(err)
	}
	if err := ask(dialFrom(t, "127.0.0.61", addr), 3*time.Second); err != nil {
		t.Errorf("ninth connection after raising the limit to 9: %v", err)
	}
}

// 1,024 connections from one address, each sending a query and then
// nothing, used to take every connection the server allowed, so that TCP
// answers stopped for everybody for the ten seconds of the idle timeout.
// Now the address gets its share (16 by default) and the others are
// closed at once.
func TestTCPIdleFloodFromOneAddress(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	q, _ := query("_imaps._tcp.example.com.", dns.TypeSRV).Pack()
	msg := append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
	start := time.Now()
	conns := make([]net.Conn, 0, 1024)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.71")}, Timeout: 3 * time.Second}
	for i := range 1024 {
		c, err := d.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			continue // reset by the server before the connection was complete
		}
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		defer c.Close()
		_, _ = c.Write(msg) // fails on connections already reset
		conns = append(conns, c)
	}
	opened := time.Since(start)
	// How many of them the server kept: those that got their answer.
	kept := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [2]byte
		if _, err := c.Read(b[:]); err == nil {
			kept++
		}
	}
	times := answerTimes(t, "127.0.0.72", addr, 5)
	t.Logf("1,024 connections from 127.0.0.71 opened in %v, each with a query: %d kept (answered), %d closed at once; "+
		"meanwhile 127.0.0.72 is answered over TCP in %v", opened.Round(time.Millisecond), kept, 1024-kept, times)
	if kept != 16 {
		t.Errorf("%d connections of one address kept, want the default of 16", kept)
	}
	checkPrompt(t, times)
}

// Idle connections are closed after dns.tcp.idle_timeout, also those that
// never send a query; a connection that keeps asking stays open.
func TestTCPIdleTimeout(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.DNS.TCP.IdleTimeout = 300 * time.Millisecond
	addr := startDNS(t, cfg)
	tests := []struct {
		name  string
		query bool
	}{{"after a query", true}, {"without any query", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.81", addr)
			start := time.Now()
			if tt.query {
				if err := ask(c, 3*time.Second); err != nil {
					t.Fatal(err)
				}
				start = time.Now()
			}
			_, ok := closed(c, 5*time.Second)
			d := time.Since(start) // from the answer (or connecting)
			t.Logf("idle_timeout 300ms, %s: closed after %v", tt.name, d.Round(time.Millisecond))
			if !ok || d < 250*time.Millisecond || d > 2*time.Second {
				t.Errorf("closed %v after %v, want after about 300 ms", ok, d)
			}
		})
	}
	t.Run("busy", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.81", addr)
		for i := range 10 {
			if err := ask(c, 3*time.Second); err != nil {
				t.Fatalf("query %d, 150 ms apart: %v", i+1, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
}

// When the connections in all reach dns.tcp.max_connections, a new client
// waits in the listen queue (as with NSD's tcp-count) and is answered as
// soon as one closes.
func TestTCPMaxConnections(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.DNS.TCP.MaxConnections = 8
	cfg.DNS.TCP.MaxConnectionsPerSource = 4
	addr := startDNS(t, cfg)
	var held []*dns.Conn
	for _, src := range []string{"127.0.0.91", "127.0.0.92"} {
		for range 4 {
			c := dialFrom(t, src, addr)
			if err := ask(c, 3*time.Second); err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
	}
	waiting := dialFrom(t, "127.0.0.93", addr)
	var ne net.Error
	if err := ask(waiting, 300*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("beyond max_connections: %v, want to wait", err)
	}
	held[0].Close()
	start := time.Now()
	_ = waiting.SetDeadline(start.Add(3 * time.Second))
	r, err := waiting.ReadMsg() // the answer to the query sent above
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("after a connection closed: %v %v", r, err)
	}
	t.Logf("a client waiting for one of 8 connections was answered %v after one closed", time.Since(start).Round(time.Microsecond))
}
