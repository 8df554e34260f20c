package dnsserver

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

func intp(n int) *int { return &n }

// The settings the server applies for a dns.rate_limit section: the
// configuration holds only what the file says, the defaults are filled in
// here.
func TestRRLSettings(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	tests := []struct {
		name string
		rl   config.RateLimit
		want rrlSettings
	}{
		{"absent: NSD's defaults", config.RateLimit{},
			rrlSettings{on: true, interval: ms(5), window: ms(1000), slip: 2, v4: 24, v6: 56}},
		{"off", config.RateLimit{ResponsesPerSecond: intp(0), Slip: intp(3)}, rrlSettings{}},
		{"rate: burst of one second", config.RateLimit{ResponsesPerSecond: intp(50)},
			rrlSettings{on: true, interval: ms(20), window: ms(1000), slip: 2, v4: 24, v6: 56}},
		{"everything", config.RateLimit{ResponsesPerSecond: intp(10), Burst: 3, Slip: intp(0), IPv4Prefix: 32, IPv6Prefix: 64,
			Exempt: []string{"192.0.2.7", "2001:db8::/48"}},
			rrlSettings{on: true, interval: ms(100), window: ms(300), slip: 0, v4: 32, v6: 64,
				exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/48")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newRRLSettings(tt.rl)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The bucket arithmetic, on a clock the test sets: a quiet bucket allows
// its burst at once, then one response per interval; every slip-th
// limited response is a slip, counted across allowed ones, so that a
// source just above the limit gets truncated answers and not only drops.
func TestRRLBucket(t *testing.T) {
	s := newRRLSettings(config.RateLimit{ResponsesPerSecond: intp(10), Burst: 3})
	l := newLimiter()
	src := netip.MustParseAddr("192.0.2.1")
	c := class{kind: classAnswer, qtype: dns.TypeSRV, name: []byte("_imaps._tcp.example.com.")}
	const ms = int64(time.Millisecond)
	now := int64(1)
	seq := func(n int, step int64) string {
		out := ""
		for range n {
			out += map[verdict]string{allow: "a", slip: "s", drop: "d"}[l.check(&s, src, c, now)]
			now += step
		}
		return out
	}
	// The burst, then nothing until an interval (100 ms) has passed.
	if got := seq(7, 0); got != "aaadsds" {
		t.Errorf("burst of 3 then limited: %s", got)
	}
	now += 100 * ms
	// 15 responses per second against 10: every third is over, and
	// the slip count goes on across the allowed ones (before, it was
	// reset by every allowed response, so none was ever truncated).
	got := seq(30, 1000*ms/15)
	slips, drops := 0, 0
	for _, v := range got {
		switch v {
		case 's':
			slips++
		case 'd':
			drops++
		}
	}
	if slips == 0 || slips < drops-1 || slips > drops+1 {
		t.Errorf("just above the limit: %s: %d slips, %d drops, want about half each", got, slips, drops)
	}
	// After a quiet second the bucket is full again.
	now += 1000 * ms
	if got := seq(4, 0); got[:3] != "aaa" {
		t.Errorf("after a pause: %s", got)
	}
}

// Buckets are per source network and response class.
func TestRRLKeys(t *testing.T) {
	s := newRRLSettings(config.RateLimit{ResponsesPerSecond: intp(1), Burst: 1, Slip: intp(0),
		Exempt: []string{"198.51.100.0/24", "2001:db8:ffff::1"}})
	name := func(n string) []byte { return []byte(n) }
	srv := class{kind: classAnswer, qtype: dns.TypeSRV, name: name("_imaps._tcp.example.com.")}
	tests := []struct {
		name          string
		first, second string // source addresses
		c1, c2        class
		limited       bool // whether the second response shares the first's bucket
	}{
		{"same address, same answer", "192.0.2.1", "192.0.2.1", srv, srv, true},
		{"same /24", "192.0.2.1", "192.0.2.200", srv, srv, true},
		{"IPv4-mapped IPv6 is IPv4", "192.0.2.1", "::ffff:192.0.2.9", srv, srv, true},
		{"other /24", "192.0.2.1", "192.0.3.1", srv, srv, false},
		{"same /56", "2001:db8:1:100::1", "2001:db8:1:1ff:ffff::2", srv, srv, true},
		{"other /56", "2001:db8:1:100::1", "2001:db8:1:200::1", srv, srv, false},
		{"other name", "192.0.2.1", "192.0.2.1", srv, class{kind: classAnswer, qtype: dns.TypeSRV, name: name("_imap._tcp.example.com.")}, false},
		{"other type", "192.0.2.1", "192.0.2.1", srv, class{kind: classAnswer, qtype: dns.TypeA, name: srv.name}, false},
		{"NXDOMAIN per zone", "192.0.2.1", "192.0.2.1",
			class{kind: classNXDomain, name: name("example.com.")}, class{kind: classNXDomain, name: name("example.com.")}, true},
		{"NXDOMAIN of another zone", "192.0.2.1", "192.0.2.1",
			class{kind: classNXDomain, name: name("example.com.")}, class{kind: classNXDomain, name: name("example.net.")}, false},
		{"NODATA apart from NXDOMAIN", "192.0.2.1", "192.0.2.1",
			class{kind: classNXDomain, name: name("example.com.")}, class{kind: classNoData, name: name("example.com.")}, false},
		{"errors per source", "192.0.2.1", "192.0.2.77", errorClass, errorClass, true},
		{"an answer is not an error", "192.0.2.1", "192.0.2.1", errorClass, srv, false},
		{"exempt network", "198.51.100.1", "198.51.100.2", srv, srv, false},
		{"exempt address", "2001:db8:ffff::1", "2001:db8:ffff::1", srv, srv, false},
		{"next to the exempt address", "2001:db8:ffff::2", "2001:db8:ffff::3", srv, srv, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter()
			now := int64(1)
			if v := l.check(&s, netip.MustParseAddr(tt.first), tt.c1, now); v != allow {
				t.Fatalf("first response: %v", v)
			}
			v := l.check(&s, netip.MustParseAddr(tt.second), tt.c2, now)
			if limited := v != allow; limited != tt.limited {
				t.Errorf("second response limited: %v, want %v", limited, tt.limited)
			}
		})
	}
	// The prefix lengths are configurable.
	s = newRRLSettings(config.RateLimit{ResponsesPerSecond: intp(1), Burst: 1, IPv4Prefix: 32, IPv6Prefix: 64})
	l := newLimiter()
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "2001:db8:0:1::1", "2001:db8:0:2::1"} {
		if v := l.check(&s, netip.MustParseAddr(a), srv, 1); v != allow {
			t.Errorf("%s with /32 and /64 networks: %v", a, v)
		}
	}
	if v := l.check(&s, netip.MustParseAddr("2001:db8:0:1::ffff"), srv, 1); v == allow {
		t.Errorf("same /64: allowed")
	}
}

// The table never grows, and a flood of new keys (spoofed random sources,
// random names) does not push out the buckets that are being limited: a
// new bucket takes the place of the one closest to full.
func TestRRLTableBounded(t *testing.T) {
	s := newRRLSettings(config.RateLimit{ResponsesPerSecond: intp(10), Burst: 10, Slip: intp(0)})
	l := newLimiter()
	const ms = int64(time.Millisecond)
	victim := netip.MustParseAddr("192.0.2.1")
	c := class{kind: classAnswer, qtype: dns.TypeSRV, name: []byte("_imaps._tcp.example.com.")}
	now := int64(1)
	for range 20 {
		l.check(&s, victim, c, now)
	}
	// 1,000,000 other keys within 100 ms, 15 times the table's size.
	var zones [256]class
	for i := range zones {
		zones[i] = class{kind: classNXDomain, name: fmt.Appendf(nil, "z%d.example.", i)}
	}
	for i := range 1_000_000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1})
		l.check(&s, src, zones[i&0xff], now+int64(i)*100*ms/1_000_000)
	}
	if len(l.sets) != rrlSets {
		t.Fatalf("%d sets", len(l.sets))
	}
	now += 100 * ms
	// The victim's bucket is still empty: 100 ms refilled one response.
	got := 0
	for range 5 {
		if l.check(&s, victim, c, now) == allow {
			got++
		}
	}
	if got > 1 {
		t.Errorf("the limited bucket was forgotten under a flood of new keys: %d of 5 allowed", got)
	}
}

// A slip is the answer cut to its question (and OPT record), with TC=1:
// never larger than the query, so that it cannot amplify.
func TestSlipped(t *testing.T) {
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	z, err := newZones(settings.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		qtype uint16
		edns  bool
		rcode int
	}{
		{"_imaps._tcp.example.com.", dns.TypeSRV, false, dns.RcodeSuccess},
		{"_IMAPS._tcp.Example.com.", dns.TypeSRV, true, dns.RcodeSuccess},
		{"nothing.example.com.", dns.TypeA, true, dns.RcodeNameError},
		{"example.com.", dns.TypeNS, false, dns.RcodeSuccess},
		{"www.example.org.", dns.TypeA, true, dns.RcodeRefused},
		{"example.com.", dns.TypeAXFR, false, dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name+dns.TypeToString[tt.qtype], func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion(tt.name, tt.qtype)
			q.Id = 4711
			if tt.edns {
				q.SetEdns0(1232, true)
			}
			wire, _ := q.Pack()
			out := slipped(z.Respond(q, true))
			var r dns.Msg
			if err := r.Unpack(out); err != nil {
				t.Fatalf("slip does not parse: %v", err)
			}
			if !r.Truncated || !r.Response || r.Id != q.Id || r.Rcode != tt.rcode || len(r.Answer)+len(r.Ns) != 0 ||
				len(r.Question) != 1 || r.Question[0] != q.Question[0] || (r.IsEdns0() != nil) != tt.edns {
				t.Errorf("slip:\n%s", r.String())
			}
			if len(out) > len(wire) {
				t.Errorf("slip of %d octets for a query of %d", len(out), len(wire))
			}
		})
	}
	// A bare header (FORMERR of an unparsable query) stays a header.
	if out := slipped(headerOnly([]byte{1, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0}, dns.RcodeFormatError)); len(out) != 12 || out[2]&0x02 == 0 {
		t.Errorf("header-only slip: %x", out)
	}
}
