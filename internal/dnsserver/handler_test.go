package dnsserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	remote net.Addr
	out    [][]byte
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4zero, Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	r.out = append(r.out, b)
	return err
}
func (r *recorder) Write(b []byte) (int, error) {
	r.out = append(r.out, append([]byte(nil), b...))
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}
func (r *recorder) Network() string     { return r.remote.Network() }

// ServeDNS is the path of TCP and of UDP on a wildcard address (the
// library's server): UDP is rate limited there too, TCP is not.
func TestServeDNSRateLimit(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
dns:
  rate_limit: {responses_per_second: 1, burst: 2, slip: 1}
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	z, err := newZones(settings.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(func() *Zones { return z }, nil)
	var counted int
	h.Observe(func(uint16, int) { counted++ })
	q := new(dns.Msg)
	q.SetQuestion("_imaps._tcp.example.com.", dns.TypeSRV)
	tests := []struct {
		remote net.Addr
		full   bool
	}{
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1000}, true},
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1000}, true}, // same /24
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.3"), Port: 1000}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.3"), Port: 1000}, true},
		{&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 1000}, true}, // another network
	}
	for i, tt := range tests {
		w := &recorder{remote: tt.remote}
		h.ServeDNS(w, q)
		if len(w.out) != 1 {
			t.Fatalf("%d: %d answers", i, len(w.out))
		}
		var r dns.Msg
		if err := r.Unpack(w.out[0]); err != nil {
			t.Fatal(err)
		}
		if full := len(r.Answer) == 1 && !r.Truncated; full != tt.full {
			t.Errorf("%d %v: full answer %v, want %v (TC=%v)", i, tt.remote, full, tt.full, r.Truncated)
		}
	}
	if counted != len(tests) {
		t.Errorf("%d answers counted, want %d", counted, len(tests))
	}
}
