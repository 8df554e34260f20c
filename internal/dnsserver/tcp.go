package dnsserver

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
)

// DNS-over-TCP defaults (dns.tcp). NSD allows 100 connections (tcp-count)
// and closes them after 120 s (tcp-timeout), Knot after 10 s of silence;
// RFC 7766 asks clients for one connection per server and servers for idle
// timeouts of seconds. 16 per address leave room for a resolver farm
// behind one address, and let no single address take more than 1/64 of the
// connections.
const (
	DefaultTCPMaxConnections = 1024
	DefaultTCPPerSource      = 16
	DefaultTCPIdleTimeout    = 10 * time.Second
)

// TCPLimits is dns.tcp with the defaults filled in.
type TCPLimits struct {
	// MaxConnections open at once; more wait in the listen queue.
	MaxConnections int
	// PerSource is the most connections one address (IPv6: one /64)
	// may hold; more are closed as soon as they are accepted.
	PerSource int
	// IdleTimeout closes a connection without a query for this long.
	IdleTimeout time.Duration
}

func newTCPLimits(t config.DNSTCP) TCPLimits {
	l := TCPLimits{DefaultTCPMaxConnections, DefaultTCPPerSource, DefaultTCPIdleTimeout}
	if t.MaxConnections > 0 {
		l.MaxConnections = t.MaxConnections
	}
	if t.MaxConnectionsPerSource > 0 {
		l.PerSource = t.MaxConnectionsPerSource
	}
	l.PerSource = min(l.PerSource, l.MaxConnections)
	if t.IdleTimeout > 0 {
		l.IdleTimeout = t.IdleTimeout
	}
	return l
}

// TCPLimits returns the DNS-over-TCP limits of this configuration.
func (z *Zones) TCPLimits() TCPLimits { return z.tcpLimits }

// TCPGuard applies the limits of the configuration in force to a DNS TCP
// listener: the number of open connections, per client address and in
// all, and the idle timeout. Without it, one address holding idle
// connections up to the listener's limit kept every other client waiting
// until they timed out. The limits are read from the zones at each
// connection and each read, so a reload changes them too.
type TCPGuard struct {
	current func() *Zones
	log     *slog.Logger

	mu       sync.Mutex
	open     int
	bySource map[netip.Prefix]int
	// freed wakes an Accept waiting for a free connection.
	freed chan struct{}
}

// NewTCPGuard returns a guard reading its limits from current.
func NewTCPGuard(current func() *Zones, log *slog.Logger) *TCPGuard {
	if log == nil {
		log = slog.Default()
	}
	return &TCPGuard{current: current, log: log, bySource: map[netip.Prefix]int{}, freed: make(chan struct{}, 1)}
}

func (g *TCPGuard) limits() TCPLimits { return g.current().tcpLimits }

// Listener wraps a TCP listener with the connection limits.
func (g *TCPGuard) Listener(ln net.Listener) net.Listener {
	return &guardedListener{Listener: ln, g: g, done: make(chan struct{})}
}

// IdleTimeout is the idle timeout in force, for dns.Server.IdleTimeout.
func (g *TCPGuard) IdleTimeout() time.Duration { return g.limits().IdleTimeout }

// DecorateReader makes every TCP read wait at most the idle timeout in
// force, also for the first query (which the server otherwise waits for
// with its read timeout), so that a connection that never asks anything is
// closed as soon as an idle one; for dns.Server.DecorateReader.
func (g *TCPGuard) DecorateReader(r dns.Reader) dns.Reader { return idleReader{r, g} }

type idleReader struct {
	dns.Reader
	g *TCPGuard
}

func (r idleReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	return r.Reader.ReadTCP(conn, min(timeout, r.g.limits().IdleTimeout))
}

// sourceKey is what the per-source limit counts: the address, IPv6 by /64
// (one host usually has a whole /64 to choose addresses from).
func sourceKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admit counts a new connection, or closes it when its source already
// holds its share.
func (g *TCPGuard) admit(c net.Conn) net.Conn {
	key := sourceKey(c.RemoteAddr())
	per := g.limits().PerSource
	g.mu.Lock()
	if g.bySource[key] >= per {
		g.mu.Unlock()
		// A reset, not a FIN: no TIME_WAIT is kept for a connection
		// refused this way, however many an address opens.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		g.log.Debug("DNS over TCP: too many connections from one address", "source", key.String(), "limit", per)
		return nil
	}
	g.bySource[key]++
	g.open++
	g.mu.Unlock()
	return &guardedConn{Conn: c, g: g, key: key}
}

func (g *TCPGuard) release(key netip.Prefix) {
	g.mu.Lock()
	g.open--
	if g.bySource[key]--; g.bySource[key] <= 0 {
		delete(g.bySource, key)
	}
	g.mu.Unlock()
	select {
	case g.freed <- struct{}{}:
	default:
	}
}

type guardedListener struct {
	net.Listener
	g         *TCPGuard
	done      chan struct{}
	closeOnce sync.Once
}

// Accept waits while the connections are at their maximum, as NSD does
// when tcp-count is reached: new clients wait in the kernel's listen queue
// until an idle connection times out, rather than being turned away.
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		if err := l.waitSlot(); err != nil {
			return nil, err
		}
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
	}
}

func (l *guardedListener) waitSlot() error {
	for {
		limit := l.g.limits().MaxConnections
		l.g.mu.Lock()
		full := l.g.open >= limit
		l.g.mu.Unlock()
		if !full {
			return nil
		}
		// The limit may also grow with a reload: look again now and
		// then.
		t := time.NewTimer(time.Second)
		select {
		case <-l.g.freed:
		case <-t.C:
		case <-l.done:
			t.Stop()
			return net.ErrClosed
		}
		t.Stop()
	}
}

func (l *guardedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type guardedConn struct {
	net.Conn
	g    *TCPGuard
	key  netip.Prefix
	once sync.Once
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.g.release(c.key) })
	return c.Conn.Close()
}
