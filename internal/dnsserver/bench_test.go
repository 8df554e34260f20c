package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// BenchmarkPacket measures answering one UDP datagram, parsing included.
func BenchmarkPacket(b *testing.B) {
	cfg, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	z, err := New(settings.New(cfg))
	if err != nil {
		b.Fatal(err)
	}
	z.limiter = nil
	h := NewHandler(func() *Zones { return z }, nil)
	for _, name := range []string{"_imaps._tcp.example.com.", "nothing.example.com.", "www.example.org."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeSRV)
		wire, _ := q.Pack()
		src := netip.MustParseAddr("127.0.0.1")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if h.packet(wire, src) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
