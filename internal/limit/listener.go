package limit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Listener caps the connections one client holds open at once. It sits
// below the listener's own cap (netutil.LimitListener): without it, one
// address that opens as many idle keep-alive connections as the listener
// allows locks every other client out until the idle timeout. A connection
// over its client's cap is closed as soon as it is accepted, before a byte
// is read or a TLS handshake is spent on it, with a reset (no TIME_WAIT
// left behind for a client that is opening connections in a loop).
//
// The cap is counted on the TCP peer, the only address a client cannot
// choose. Peers for which the key function reports false are not counted:
// the service's trusted proxies, whose connections carry every client
// behind them.
type Listener struct {
	net.Listener
	key     func(netip.Addr) (netip.Addr, bool)
	max     atomic.Int64
	refused atomic.Uint64

	mu   sync.Mutex
	open map[netip.Addr]int
}

// NewListener wraps ln. key maps a peer address to the client it counts
// for (see Key), or reports false for a peer that is not limited. A max of
// zero or less turns the cap off.
func NewListener(ln net.Listener, max int, key func(netip.Addr) (netip.Addr, bool)) *Listener {
	l := &Listener{Listener: ln, key: key, open: make(map[netip.Addr]int)}
	l.SetMax(max)
	return l
}

// SetMax changes the cap for connections accepted from now on; connections
// already open stay open.
func (l *Listener) SetMax(max int) { l.max.Store(int64(max)) }

// Refused is the number of connections closed because their client was
// over its cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open is the number of counted connections the client of peer has open.
func (l *Listener) Open(peer netip.Addr) int {
	k, ok := l.key(peer)
	if !ok {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[k]
}

// Accept returns the next connection whose client is within its cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		max := l.max.Load()
		if max <= 0 {
			return c, nil
		}
		peer := peerAddr(c)
		if !peer.IsValid() {
			return c, nil
		}
		k, counted := l.key(peer)
		if !counted {
			return c, nil
		}
		l.mu.Lock()
		n := l.open[k]
		if int64(n) >= max {
			l.mu.Unlock()
			l.refused.Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			continue
		}
		l.open[k] = n + 1
		l.mu.Unlock()
		return &conn{Conn: c, l: l, key: k}, nil
	}
}

func (l *Listener) release(k netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[k]; n > 1 {
		l.open[k] = n - 1
	} else {
		delete(l.open, k)
	}
}

// peerAddr is the connection's remote IP address.
func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// conn gives its client's slot back when it is closed, once.
type conn struct {
	net.Conn
	l        *Listener
	key      netip.Addr
	released atomic.Bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.released.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return err
}
