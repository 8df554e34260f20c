// Package limit keeps one client from taking what all clients share:
// connections per client at accept time, and the key under which the HTTP
// rate limits count a client.
//
// A client is an IPv4 address or an IPv6 network of a configurable prefix
// (a /64 by default). One IPv6 host usually holds a whole /64 (SLAAC
// privacy addresses change every day, and anyone with a /64 routed to them
// can pick a new source address for every request), so counting per IPv6
// address would give such a client 2^64 budgets. An IPv4 address is one
// client, or one NAT with many people behind it: it is never widened.
package limit

import (
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix is the IPv6 prefix length one client is assumed to
// hold: a /64 is the smallest network an ISP assigns to a subscriber's
// LAN, and every device on it can use any of its addresses.
const DefaultIPv6Prefix = 64

// Key is the client an address belongs to: an IPv4 address (IPv4-mapped
// IPv6 addresses included) as it is, an IPv6 address with everything past
// its first v6Prefix bits cleared. A v6Prefix outside 1..128 counts the
// whole address.
func Key(a netip.Addr, v6Prefix int) netip.Addr {
	a = a.Unmap()
	if !a.Is6() || v6Prefix <= 0 || v6Prefix >= 128 {
		return a.WithZone("")
	}
	p, err := a.WithZone("").Prefix(v6Prefix)
	if err != nil {
		return a
	}
	return p.Addr()
}

// KeyString is Key as text, the form the rate limiters' tables use. An
// IPv4 address in its usual form ("192.0.2.1", as net/http writes it in
// Request.RemoteAddr) is returned as it is, without parsing or allocating:
// that is nearly every request.
func KeyString(host string, v6Prefix int) string {
	if strings.IndexByte(host, ':') < 0 && host != "" {
		return host
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return Key(a, v6Prefix).String()
}
