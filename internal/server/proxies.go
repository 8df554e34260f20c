package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"mailautoconf/internal/config"
)

// proxies decides whose X-Forwarded-* headers to believe. Behind a
// TLS-terminating proxy or ingress, the client's address, the scheme and the
// host come from those headers; from anyone else they are ignored, or any
// client could claim another's address (dodging the rate limit) or make the
// service believe a plain connection was HTTPS.
type proxies struct {
	trusted []netip.Prefix
}

func newProxies(list []string) (*proxies, error) {
	p := &proxies{}
	for _, s := range list {
		pr, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		p.trusted = append(p.trusted, pr)
	}
	return p, nil
}

func (p *proxies) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.trusted {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// fromProxy reports whether the request came straight from a trusted proxy.
func (p *proxies) fromProxy(r *http.Request) bool {
	return len(p.trusted) > 0 && p.isTrusted(remoteAddr(r))
}

// clientIP is the client's address: the peer, or, when the peer is a
// trusted proxy, the right-most X-Forwarded-For entry that is not itself a
// trusted proxy (entries further left are whatever the client wrote).
func (p *proxies) clientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !p.fromProxy(r) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if !p.isTrusted(a) {
			return a.Unmap()
		}
	}
	return peer
}

// clientIPString is clientIP as text, for the access log. Without trusted
// proxies and for an IPv4 peer it is the host part of RemoteAddr as the
// kernel wrote it, already canonical: no parsing and no allocation on a
// path every request takes.
func (p *proxies) clientIPString(r *http.Request) string {
	if len(p.trusted) == 0 {
		if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 && strings.IndexByte(r.RemoteAddr[:i], ':') < 0 {
			return r.RemoteAddr[:i]
		}
	}
	return p.clientIP(r).String()
}

// scheme is "https" when the connection is TLS, or when a trusted proxy says
// the client used HTTPS.
func (p *proxies) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p.fromProxy(r) {
		if proto := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); proto == "https" || proto == "http" {
			return proto
		}
	}
	return "http"
}

// host is the Host the client asked for: X-Forwarded-Host from a trusted
// proxy, the Host header otherwise.
func (p *proxies) host(r *http.Request) string {
	if p.fromProxy(r) {
		if h := strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Host"), ",")[0]); h != "" {
			return h
		}
	}
	return r.Host
}
