package server

import (
	"net"
	"sync"

	"mailautoconf/internal/watchdog"
)

// connLimit caps the connections a listener has open at once
// (limits.max_connections). Over the cap, Accept waits until a connection
// closes, leaving new ones in the kernel's backlog, as
// golang.org/x/net/netutil.LimitListener does; unlike that one, the cap
// can change while the listener runs, so that a reload applies it.
type connLimit struct {
	mu     sync.Mutex
	cond   *sync.Cond
	max    int // at least 1
	open   int
	closed bool
}

func newConnLimit(n int) *connLimit {
	l := &connLimit{max: max(n, 1)}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// setMax changes the cap. Connections over a lowered cap stay open; no new
// one is accepted until they are fewer.
func (l *connLimit) setMax(n int) {
	l.mu.Lock()
	l.max = max(n, 1)
	l.mu.Unlock()
	l.cond.Broadcast()
}

// acquire waits for room for one more connection; false when the listener
// was closed meanwhile.
func (l *connLimit) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.open >= l.max && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return false
	}
	l.open++
	return true
}

func (l *connLimit) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	l.cond.Signal()
}

func (l *connLimit) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
}

// listener wraps ln so that it accepts within the cap. With a watchdog,
// the connections it accepts are watched (and give their place back
// through it: one wrapper around each connection rather than two).
func (l *connLimit) listener(ln net.Listener, wd *watchdog.Watchdog) net.Listener {
	return &limitListener{Listener: ln, limit: l, wd: wd}
}

type limitListener struct {
	net.Listener
	limit *connLimit
	wd    *watchdog.Watchdog
}

func (ll *limitListener) Accept() (net.Conn, error) {
	if !ll.limit.acquire() {
		// Closed: the socket's own error, as net/http expects.
		return ll.Listener.Accept()
	}
	c, err := ll.Listener.Accept()
	if err != nil {
		ll.limit.release()
		return nil, err
	}
	if ll.wd != nil {
		return ll.wd.Watch(c, ll.limit.release), nil
	}
	return &limitConn{Conn: c, limit: ll.limit}, nil
}

func (ll *limitListener) Close() error {
	ll.limit.close()
	return ll.Listener.Close()
}

// limitConn gives its place back once, on the first Close.
type limitConn struct {
	net.Conn
	limit *connLimit
	once  sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.limit.release)
	return err
}
