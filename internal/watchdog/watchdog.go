// Package watchdog enforces an HTTP/1.1 server's timeouts (request head,
// request, answer, keep-alive idle) on its connections from one goroutine
// that looks at every connection a few times per second, instead of through
// net/http's per-request socket deadlines.
//
// Why: with ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout set,
// net/http sets a socket deadline five to six times per keep-alive request
// (head, request, answer, idle, and the background read's), each a read of
// the clock and a change to the runtime's timer heap. Measured under load on
// loopback that was 0.6–0.8 µs of CPU per request, about 5 % of what a
// small answer costs in all. With the server's timeouts at zero net/http only
// clears deadlines that are not set, which this package's connections turn
// into nothing; a phase change costs a store of a coarse clock instead.
//
// The protection is the same in kind: a client that sends its request head
// slowly, never finishes its body, stops reading the answer, or holds an
// idle keep-alive connection is cut off once its time is up, by a deadline
// in the past on its socket (the blocked read or write fails as with
// net/http's own timeouts, and net/http closes the connection without an
// answer). Times are kept to within two ticks (Tick), late rather than
// early.
//
// Only for HTTP/1.1: HTTP/2 multiplexes requests on one connection and
// keeps its own timers, so a TLS listener that offers h2 keeps net/http's
// timeouts.
package watchdog

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts are those of net/http.Server with the same names; zero turns one
// off. Head runs from a request's first byte (for a new connection, from
// accept: a TLS handshake included) until its head has been read; Read
// from the first byte until the body has been read (past it only reading
// fails, so that the handler can still answer that the request could not
// be read); Write from the end of the head until the answer has been
// written; Idle from an answer until the next request's first byte.
type Timeouts struct {
	Head, Read, Write, Idle time.Duration
}

// Watchdog watches the connections of one or more listeners.
type Watchdog struct {
	t    Timeouts
	tick time.Duration

	// clock is a coarse time (unix nanoseconds) advanced every tick: a
	// phase change reads it rather than the system clock.
	clock atomic.Int64

	mu    sync.Mutex
	conns map[*Conn]struct{}

	cut, idle atomic.Uint64
}

// New returns a watchdog for t. Its tick is a twentieth of the shortest
// timeout, between 5 ms and 250 ms.
func New(t Timeouts) *Watchdog {
	short := time.Duration(0)
	for _, d := range []time.Duration{t.Head, t.Read, t.Write, t.Idle} {
		if d > 0 && (short == 0 || d < short) {
			short = d
		}
	}
	w := &Watchdog{t: t, tick: min(max(short/20, 5*time.Millisecond), 250*time.Millisecond), conns: make(map[*Conn]struct{})}
	w.clock.Store(time.Now().UnixNano())
	return w
}

// Cut is the number of connections cut off for being slow: a request's
// head, its body or the reading of its answer took too long.
func (w *Watchdog) Cut() uint64 { return w.cut.Load() }

// Idle is the number of keep-alive connections closed for being idle.
func (w *Watchdog) Idle() uint64 { return w.idle.Load() }

// Open is the number of connections watched.
func (w *Watchdog) Open() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// Run looks at the connections every tick until ctx is done. A deadline
// set on a phase change may be up to a tick older than the real time (the
// coarse clock), so each is given one tick more: a timeout ends between
// one and two ticks late, never early.
func (w *Watchdog) Run(ctx context.Context) {
	// The clock may have stood still since New (a server opens its
	// listeners, then starts serving).
	w.clock.Store(time.Now().UnixNano())
	t := time.NewTicker(w.tick)
	defer t.Stop()
	var expired, readExpired []*Conn
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := now.UnixNano()
			w.clock.Store(n)
			expired, readExpired = expired[:0], readExpired[:0]
			w.mu.Lock()
			for c := range w.conns {
				if c.killed.Load() {
					// Again: net/http may have cleared the deadline
					// between the mark and the cut (see SetReadDeadline).
					expired = append(expired, c)
					continue
				}
				if c.readCut.Load() {
					readExpired = append(readExpired, c)
				}
				if d := c.deadline.Load(); d != 0 && d < n && c.deadline.CompareAndSwap(d, 0) {
					c.killed.Store(true)
					if c.phase.Load() == phaseIdle {
						w.idle.Add(1)
					} else {
						w.cut.Add(1)
					}
					expired = append(expired, c)
					continue
				}
				if d := c.readBy.Load(); d != 0 && d < n && !c.readCut.Load() && c.readBy.CompareAndSwap(d, 0) {
					c.readCut.Store(true)
					w.cut.Add(1)
					readExpired = append(readExpired, c)
				}
			}
			w.mu.Unlock()
			// A deadline in the past fails the blocked read or write at
			// once, as net/http's own timeouts do.
			for _, c := range expired {
				_ = c.Conn.SetDeadline(aLongTimeAgo)
			}
			for _, c := range readExpired {
				_ = c.Conn.SetReadDeadline(aLongTimeAgo)
			}
			clear(expired)
			clear(readExpired)
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)

func (w *Watchdog) after(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return w.clock.Load() + int64(d+w.tick)
}

// Listener wraps ln: every connection it accepts is watched until closed.
func (w *Watchdog) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, w: w} }

type listener struct {
	net.Listener
	w *Watchdog
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.w.Watch(c, nil), nil
}

// Watch returns c watched from now on, in the phase of a new connection
// (its first request's head is due within Head). release, if not nil, is
// called once when the connection is first closed: the caller's own
// bookkeeping, without one more wrapper around the connection.
func (w *Watchdog) Watch(c net.Conn, release func()) *Conn {
	wc := &Conn{Conn: c, w: w, release: release}
	// The real time, once per connection: the coarse clock may not run
	// yet when the first connections come.
	now := time.Now().UnixNano()
	wc.start.Store(now)
	if w.t.Head > 0 {
		wc.deadline.Store(now + int64(w.t.Head+w.tick))
	}
	w.mu.Lock()
	w.conns[wc] = struct{}{}
	w.mu.Unlock()
	return wc
}

// ConnState is the http.Server's ConnState hook: it moves a connection
// from phase to phase. The server must be given connections from Listener
// or Watch (directly, or inside a *tls.Conn).
func (w *Watchdog) ConnState(nc net.Conn, s http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*Conn)
	if !ok || c.w != w {
		return
	}
	switch s {
	case http.StateActive:
		// The head has been read (net/http reports Active only then).
		var r int64
		if w.t.Read > 0 {
			r = c.start.Load() + int64(w.t.Read+w.tick)
		}
		c.phase.Store(phaseActive)
		c.readBy.Store(r)
		c.deadline.Store(w.after(w.t.Write))
	case http.StateIdle:
		c.phase.Store(phaseIdle)
		c.readBy.Store(0)
		c.deadline.Store(w.after(w.t.Idle))
	case http.StateHijacked, http.StateClosed:
		c.phase.Store(phaseDone)
		c.readBy.Store(0)
		c.deadline.Store(0)
	}
}

func (w *Watchdog) forget(c *Conn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

const (
	phaseHead   = iota // reading a request's head (a new connection: also its TLS handshake)
	phaseActive        // the head is read: the body, the handler, the answer
	phaseIdle          // between an answer and the next request's first byte
	phaseDone
)

// Conn is a watched connection.
type Conn struct {
	net.Conn
	w       *Watchdog
	release func()

	phase    atomic.Int32
	start    atomic.Int64 // coarse time of the current request's first byte
	deadline atomic.Int64 // coarse unix nanoseconds; 0: none
	readBy   atomic.Int64 // the request's body, while active; 0: none
	killed   atomic.Bool  // cut off: deadlines set by others no longer apply
	readCut  atomic.Bool  // reading cut off: read deadlines no longer apply

	// rdSet, wdSet: a read / write deadline other than zero is set on
	// the socket (by net/http or the TLS layer), so that clearing one
	// that is not set can be skipped.
	rdSet, wdSet atomic.Bool

	closed atomic.Bool
}

// Read reads from the connection. The first bytes after an idle phase start
// the next request: its head is due within Head from now.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.phase.Load() == phaseIdle && c.phase.CompareAndSwap(phaseIdle, phaseHead) {
		c.start.Store(c.w.clock.Load())
		c.deadline.Store(c.w.after(c.w.t.Head))
	}
	return n, err
}

// SetDeadline, SetReadDeadline and SetWriteDeadline pass a deadline on,
// except one that clears a deadline that is not set (net/http clears them
// several times per request even with its timeouts off) and any once the
// watchdog has cut the connection off, which must stay cut off.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.killed.Load() || c.readCut.Load() || t.IsZero() && !c.rdSet.Load() {
		return nil
	}
	c.rdSet.Store(!t.IsZero())
	return c.Conn.SetReadDeadline(t)
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.killed.Load() || t.IsZero() && !c.wdSet.Load() {
		return nil
	}
	c.wdSet.Store(!t.IsZero())
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the connection and stops watching it.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.w.forget(c)
		if c.release != nil {
			c.release()
		}
	}
	return err
}
