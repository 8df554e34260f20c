package limit

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for _, c := range []struct {
		in     string
		prefix int
		want   string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"192.0.2.7", 0, "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::"},
		{"2001:db8:1:2:aaaa::1", 56, "2001:db8:1::"},
		{"2001:db8:1:2:aaaa::1", 48, "2001:db8:1::"},
		{"2001:db8:1:2:aaaa::1", 128, "2001:db8:1:2:aaaa::1"},
		{"2001:db8:1:2:aaaa::1", 0, "2001:db8:1:2:aaaa::1"},
		{"fe80::1%eth0", 64, "fe80::"},
		{"::1", 64, "::"},
	} {
		if got := Key(netip.MustParseAddr(c.in), c.prefix).String(); got != c.want {
			t.Errorf("Key(%s, %d) = %s, want %s", c.in, c.prefix, got, c.want)
		}
		host := netip.MustParseAddr(c.in).String()
		if got := KeyString(host, c.prefix); got != c.want {
			t.Errorf("KeyString(%s, %d) = %s, want %s", host, c.prefix, got, c.want)
		}
	}
	if got := KeyString("not an address", 64); got != "not an address" {
		t.Errorf("KeyString of junk = %q", got)
	}
}

// TestListener: over real loopback sockets, one source address gets at
// most max connections, the next is reset at once, another address is not
// affected, a closed connection frees its slot, and exempt peers are not
// counted.
func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	exempt := netip.MustParseAddr("127.0.0.4")
	ln := NewListener(raw, 3, func(a netip.Addr) (netip.Addr, bool) {
		return Key(a, 64), a != exempt
	})
	defer ln.Close()
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	tryDial := func(src string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	dial := func(src string) net.Conn {
		t.Helper()
		c, err := tryDial(src)
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		return c
	}
	next := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: not accepted", what)
		}
		return nil
	}
	// closedByServer reports whether the server closed c (EOF or reset)
	// rather than keeping it open.
	closedByServer := func(c net.Conn, wait time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}

	var held []net.Conn
	for range 3 {
		dial("127.0.0.2")
		held = append(held, next("127.0.0.2 within its cap"))
	}
	// The reset may arrive before connect returns.
	if over, err := tryDial("127.0.0.2"); err == nil && !closedByServer(over, 5*time.Second) {
		t.Error("a fourth connection from 127.0.0.2 stayed open")
	}
	if ln.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", ln.Refused())
	}
	if n := ln.Open(netip.MustParseAddr("127.0.0.2")); n != 3 {
		t.Errorf("Open(127.0.0.2) = %d, want 3", n)
	}
	// Another address is accepted at once.
	other := dial("127.0.0.3")
	next("127.0.0.3 while 127.0.0.2 is at its cap")
	if closedByServer(other, 200*time.Millisecond) {
		t.Error("127.0.0.3 was closed")
	}
	// Closing one of 127.0.0.2's connections (twice: counted once) frees
	// one slot.
	held[0].Close()
	held[0].Close()
	if n := ln.Open(netip.MustParseAddr("127.0.0.2")); n != 2 {
		t.Errorf("Open(127.0.0.2) after a close = %d, want 2", n)
	}
	dial("127.0.0.2")
	next("127.0.0.2 after a slot was freed")
	// An exempt peer is never counted.
	for range 5 {
		dial("127.0.0.4")
		next("exempt 127.0.0.4")
	}
	if ln.Refused() != 1 {
		t.Errorf("Refused() = %d after exempt connections, want 1", ln.Refused())
	}
	// Off: no cap.
	ln.SetMax(0)
	for range 3 {
		dial("127.0.0.2")
		next("127.0.0.2 with the cap off")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout() && err != io.EOF
}
