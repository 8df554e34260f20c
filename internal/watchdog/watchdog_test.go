package watchdog_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailautoconf/internal/watchdog"
)

// counting counts the future deadlines set on the socket below the watched
// connection: each a timer for the runtime. (A deadline in the past is
// how net/http stops its background read after every request; it arms
// nothing.)
type counting struct {
	net.Conn
	set *atomic.Int64 // deadlines in the future
}

func (c *counting) SetDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.set.Add(1)
	}
	return c.Conn.SetDeadline(t)
}

func (c *counting) SetReadDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.set.Add(1)
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *counting) SetWriteDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.set.Add(1)
	}
	return c.Conn.SetWriteDeadline(t)
}

type countingListener struct {
	net.Listener
	set *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &counting{Conn: c, set: l.set}, nil
}

type server struct {
	addr     string
	w        *watchdog.Watchdog
	deadline atomic.Int64 // future deadlines set on sockets
}

// start serves h on loopback with net/http's timeouts off and the
// watchdog's t on, as the service's plain listener does.
func start(t *testing.T, to watchdog.Timeouts, h http.Handler) *server {
	t.Helper()
	return startAfter(t, to, h, 0)
}

// startAfter is start with a pause between the watchdog's creation and its
// start, as when a server opens its listeners some time before serving.
func startAfter(t *testing.T, to watchdog.Timeouts, h http.Handler, pause time.Duration) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), w: watchdog.New(to)}
	time.Sleep(pause)
	srv := &http.Server{Handler: h, ConnState: s.w.ConnState}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.w.Run(ctx) }()
	go func() { defer wg.Done(); _ = srv.Serve(s.w.Listener(countingListener{ln, &s.deadline})) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	return s
}

// hello reads the body and answers "hello", or "unread" when the body
// could not be read (as the Autodiscover handler answers with an error
// document).
var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		_, _ = io.WriteString(w, "unread")
		return
	}
	_, _ = io.WriteString(w, "hello")
})

// closedWithin waits for the server to end the connection (EOF or reset)
// and returns how long that took; it fails the test after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	var got strings.Builder
	_, err := io.Copy(&got, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
	return time.Since(start), got.String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTimeouts(t *testing.T) {
	// Write is well past Read: a body that never comes still gets its answer.
	to := watchdog.Timeouts{Head: 200 * time.Millisecond, Read: 300 * time.Millisecond, Write: 700 * time.Millisecond, Idle: 300 * time.Millisecond}
	big := strings.Repeat("x", 64<<20)
	s := start(t, to, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = io.WriteString(w, big)
			return
		}
		hello(w, r)
	}))
	for _, tc := range []struct {
		name     string
		send     func(c net.Conn)
		min, max time.Duration
		answer   string // what the client gets before the end
	}{
		{"nothing sent", func(net.Conn) {}, to.Head, to.Head + time.Second, ""},
		{"head never finished", func(c net.Conn) {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		}, to.Head, to.Head + time.Second, ""},
		{"head dribbled", func(c net.Conn) {
			for range 20 {
				if _, err := io.WriteString(c, "X-Slow: a\r\n"[:1]); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}, to.Head, to.Head + time.Second, ""},
		{"body never sent", func(c net.Conn) {
			_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
		}, to.Read, to.Read + time.Second, "unread"},
		{"answer never read", func(c net.Conn) {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			time.Sleep(to.Write + time.Second)
		}, to.Write, to.Write + 3*time.Second, ""},
		{"idle after an answer", func(c net.Conn) {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("idle: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}, to.Idle, to.Idle + time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.addr)
			// An idle connection's end is counted apart from the
			// slow ones.
			counter := s.w.Cut
			if strings.HasPrefix(tc.name, "idle") {
				counter = s.w.Idle
			}
			cut := counter()
			start := time.Now()
			tc.send(c)
			if tc.name == "answer never read" {
				// The server has been writing all along; it must
				// have given up within its write timeout.
				if counter() == cut {
					t.Fatalf("the server still writes after %v", time.Since(start))
				}
				return
			}
			wait, got := closedWithin(t, c, tc.max)
			took := time.Since(start) + wait
			if tc.answer == "" && got != "" || !strings.HasSuffix(got, tc.answer) {
				t.Errorf("got %q before the end, want %q", got, tc.answer)
			}
			if took < tc.min-10*time.Millisecond {
				t.Errorf("cut off after %v, before its %v", took, tc.min)
			}
			if counter() == cut {
				t.Errorf("the watchdog did not count the cut")
			}
		})
	}
	// All connections closed: none is watched any more.
	deadline := time.Now().Add(2 * time.Second)
	for s.w.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.w.Open(); n != 0 {
		t.Errorf("%d connections still watched", n)
	}
}

// TestKeepAlive: a client that keeps asking on one connection is never cut
// off, however long it stays, and its requests set no socket deadline.
func TestKeepAlive(t *testing.T) {
	// Each pause is far inside the idle timeout even on a busy machine;
	// the connection lives five times as long as any timeout.
	to := watchdog.Timeouts{Head: 300 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond}
	s := start(t, to, hello)
	c := dial(t, s.addr)
	br := bufio.NewReader(c)
	end := time.Now().Add(1500 * time.Millisecond)
	n := 0
	for time.Now().Before(end) {
		method := "GET"
		body := ""
		if n%2 == 1 {
			method, body = "POST", "a=b"
		}
		fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", method, len(body), body)
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d after %v: %v", n, time.Since(end.Add(-1500*time.Millisecond)), err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(b) != "hello" {
			t.Fatalf("request %d: %q", n, b)
		}
		n++
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.deadline.Load(); got != 0 {
		t.Errorf("%d socket deadlines (timers) set over %d requests, want none", got, n)
	}
	if s.w.Cut() != 0 || s.w.Idle() != 0 {
		t.Errorf("the watchdog cut a connection in use")
	}
}

// TestLateStart: a watchdog started long after it was made (its coarse
// clock stood still meanwhile) cuts nothing before its time.
func TestLateStart(t *testing.T) {
	to := watchdog.Timeouts{Head: 300 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond}
	s := startAfter(t, to, hello, time.Second)
	c := dial(t, s.addr)
	br := bufio.NewReader(c)
	for i := range 3 {
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		r.Body.Close()
	}
	if s.w.Cut() != 0 || s.w.Idle() != 0 {
		t.Errorf("cut a connection before its time")
	}
}

// TestNoTimeouts: zero timeouts cut nothing.
func TestNoTimeouts(t *testing.T) {
	s := start(t, watchdog.Timeouts{}, hello)
	c := dial(t, s.addr)
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if s.w.Cut() != 0 {
		t.Errorf("cut with no timeouts")
	}
}
