package dnsserver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// BenchmarkPacket measures answering one UDP datagram, parsing included,
// without the response-rate limit.
func BenchmarkPacket(b *testing.B) {
	benchPacket(b, &config.RateLimit{ResponsesPerSecond: new(int)})
}

// BenchmarkPacketRRL is BenchmarkPacket with the response-rate limit on
// (at a rate that allows every answer, so that each one goes through the
// whole bucket look-up), the queries coming from 256 networks.
func BenchmarkPacketRRL(b *testing.B) {
	rate := 1_000_000
	benchPacket(b, &config.RateLimit{ResponsesPerSecond: &rate, Burst: rate})
}

func benchPacket(b *testing.B, rl *config.RateLimit) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	cfg.DNS.RateLimit = *rl
	z, err := newZones(settings.New(cfg))
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(func() *Zones { return z }, nil)
	var srcs [256]netip.Addr
	for i := range srcs {
		srcs[i] = netip.AddrFrom4([4]byte{10, 0, byte(i), 1})
	}
	for _, name := range []string{"_imaps._tcp.example.com.", "nothing.example.com.", "www.example.org."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeSRV)
		wire, _ := q.Pack()
		scratch := make([]byte, 0, 256)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i, now := 0, int64(0)
			for b.Loop() {
				// The clock is read once per batch of 32 datagrams,
				// as udpLoop does.
				if i%udpBatch == 0 {
					now = h.rrl.now()
				}
				if h.packet(wire, srcs[i&255], scratch, now) == nil {
					b.Fatal("no answer")
				}
				i++
			}
		})
	}
}

// FuzzPacket feeds arbitrary datagrams to the UDP path: it must never
// panic, and whenever the fast path answers, the answer must equal the one
// built by full parsing.
func FuzzPacket(f *testing.F) {
	cfg, err := config.Demo()
	if err != nil {
		f.Fatal(err)
	}
	z, err := newZones(settings.New(cfg))
	if err != nil {
		f.Fatal(err)
	}
	z.rrl = rrlSettings{} // the limit would drop repeated answers
	h := NewHandler(func() *Zones { return z }, nil)
	for _, name := range []string{"_imaps._tcp.example.com.", "_IMAPS._tcp.Example.com.", "x.example.net.", "example.org.", "autoconfig.example.com."} {
		for _, edns := range []bool{false, true} {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeSRV)
			if edns {
				q.SetEdns0(1232, true)
			}
			wire, _ := q.Pack()
			f.Add(wire)
		}
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1})
	src := netip.MustParseAddr("192.0.2.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		out := h.packet(b, src, make([]byte, 0, 256), h.rrl.now())
		q, ok := parseWire(b, nil)
		if !ok {
			return
		}
		fast, _, ok := z.fastRespond(&q, true)
		if !ok {
			return
		}
		var r dns.Msg
		if err := r.Unpack(b); err != nil {
			return // the fast path is lenient about trailing garbage it does not read
		}
		slow := z.Respond(&r, true)
		var a, c dns.Msg
		if err := a.Unpack(fast); err != nil {
			t.Fatalf("fast answer does not parse: %v", err)
		}
		if err := c.Unpack(slow); err != nil {
			t.Fatalf("slow answer does not parse: %v", err)
		}
		// Owner names may differ in case: the fast path points into the
		// question, whose case the client chose. DNS names compare
		// case-insensitively.
		if !strings.EqualFold(a.String(), c.String()) {
			t.Fatalf("fast and slow answers differ:\n%s\n---\n%s", a.String(), c.String())
		}
		if string(out) != string(fast) {
			t.Fatalf("packet() did not take the fast path")
		}
	})
}

// BenchmarkRespond measures the path of TCP queries and of UDP queries the
// fast path leaves alone: answering a message the library has parsed.
func BenchmarkRespond(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	z, err := newZones(settings.New(cfg))
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"_imaps._tcp.example.com.", "nothing.example.com.", "www.example.org."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeSRV)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if z.Respond(q, false) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
