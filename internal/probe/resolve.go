package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolver asks one DNS server, the way a stub resolver does (recursion
// desired), over UDP with a retry over TCP when the answer is truncated.
type resolver struct {
	server  string
	timeout time.Duration
}

func newResolver(server string, timeout time.Duration) (*resolver, error) {
	if server == "" {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cc.Servers) == 0 {
			return nil, fmt.Errorf("no DNS resolver in /etc/resolv.conf (give one with --resolver): %v", err)
		}
		server = net.JoinHostPort(cc.Servers[0], cc.Port)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		if _, perr := netip.ParseAddr(server); perr != nil && strings.Contains(server, ":") {
			return nil, fmt.Errorf("resolver %q is not host or host:port", server)
		}
		server = net.JoinHostPort(server, "53")
	}
	return &resolver{server: server, timeout: timeout}, nil
}

// errNoRecord is a name or type without records (NXDOMAIN or NODATA).
var errNoRecord = errors.New("no record")

// query asks for name/qtype and returns the answer records of that type.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.server)
	}
	if err != nil {
		return nil, fmt.Errorf("asking %s for %s %s: %w", r.server, name, dns.TypeToString[qtype], err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s %s: %w (NXDOMAIN)", name, dns.TypeToString[qtype], errNoRecord)
	default:
		return nil, &rcodeError{name: name, qtype: qtype, rcode: in.Rcode}
	}
	var out []dns.RR
	for _, rr := range in.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], errNoRecord)
	}
	return out, nil
}

// rcodeError is an answer other than NOERROR/NXDOMAIN (SERVFAIL, REFUSED).
type rcodeError struct {
	name  string
	qtype uint16
	rcode int
}

func (e *rcodeError) Error() string {
	return fmt.Sprintf("%s %s: the resolver answered %s", e.name, dns.TypeToString[e.qtype], dns.RcodeToString[e.rcode])
}

// lookupHost returns the IPv4 then the IPv6 addresses of host. An
// authoritative-only server given as --resolver refuses names outside its
// zones (the mail hosts often are): those are looked up with the system
// resolver instead.
func (r *resolver) lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	var addrs []netip.Addr
	var errs []error
	refused := 0
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, t)
		var rc *rcodeError
		if errors.As(err, &rc) && rc.rcode == dns.RcodeRefused {
			refused++
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					addrs = append(addrs, a)
				}
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if refused == 2 {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		return ips, nil
	}
	return nil, fmt.Errorf("resolving %s: %w", host, joined(errs))
}

// dialer connects to host:port through the resolver, after applying the
// connect-to overrides.
type dialer struct {
	res       *resolver
	connectTo map[string]string
	timeout   time.Duration
}

// checkConnectTo validates one override.
func checkConnectTo(from, to string) error {
	if _, port, err := net.SplitHostPort(from); err != nil || port == "" {
		return fmt.Errorf("connect-to %q: want HOST:PORT or :PORT", from)
	}
	if _, _, err := net.SplitHostPort(to); err != nil {
		return fmt.Errorf("connect-to %q=%q: want HOST:PORT as the target", from, to)
	}
	return nil
}

// target applies the overrides: an exact "host:port" first, then ":port".
func (d *dialer) target(addr string) string {
	if to, ok := d.connectTo[strings.ToLower(addr)]; ok {
		return to
	}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		if to, ok := d.connectTo[":"+port]; ok {
			return to
		}
	}
	return addr
}

// DialContext dials addr ("host:port"), trying each address of the host in
// turn.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(d.target(addr))
	if err != nil {
		return nil, err
	}
	ips, err := d.res.lookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: d.timeout}
	var errs []error
	for _, ip := range ips {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connecting to %s: %w", addr, joined(errs))
}

// portOf parses a port number.
func portOf(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil && n > 0 && n < 65536
}

// joinedErrors is errors.Join on one line: messages end up in table cells.
type joinedErrors []error

func (j joinedErrors) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joinedErrors) Unwrap() []error { return j }

func joined(errs []error) error {
	switch len(errs) {
	case 0:
		return errNoRecord
	case 1:
		return errs[0]
	}
	return joinedErrors(errs)
}
