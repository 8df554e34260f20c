package server_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// TestDNSWildcardListenAnswersFromQueriedAddress listens on wildcard
// addresses, as a container does, and queries several local addresses
// over UDP. The client's socket is connected, so the kernel drops an answer
// that leaves from any other address than the one asked: only an answer
// sent from the query's destination arrives. On Linux every 127.0.0.0/8
// address is local, which gives a second address to ask without setup.
func TestDNSWildcardListenAnswersFromQueriedAddress(t *testing.T) {
	ipv6 := false
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		ipv6 = true
		ln.Close()
	}
	for _, tc := range []struct {
		listen  string
		targets []string
	}{
		{"0.0.0.0:0", []string{"127.0.0.1", "127.0.0.2"}},
		{":0", []string{"127.0.0.1", "127.0.0.3", "::1"}},
		{"[::]:0", []string{"127.0.0.1", "127.0.0.4", "::1"}},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			if tc.listen == "[::]:0" && !ipv6 {
				t.Skip("no IPv6 on this machine")
			}
			srv := testutil.Start(t, testutil.Demo(t), server.Options{DNSAddr: tc.listen})
			port := srv.DNSAddr().(*net.UDPAddr).Port
			for _, target := range tc.targets {
				if target == "::1" && !ipv6 {
					continue
				}
				addr := net.JoinHostPort(target, strconv.Itoa(port))
				c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
				for _, name := range []string{"_imaps._tcp.example.com.", "nothing.example.com.", "example.org."} {
					m := new(dns.Msg)
					m.SetQuestion(name, dns.TypeSRV)
					r, _, err := c.Exchange(m, addr)
					if err != nil {
						t.Errorf("%s %s: %v", addr, name, err)
						continue
					}
					if r.Id != m.Id || !r.Response {
						t.Errorf("%s %s: not the answer to the query: %v", addr, name, r)
					}
				}
				m := new(dns.Msg)
				m.SetQuestion("_imaps._tcp.example.com.", dns.TypeSRV)
				r, _, err := c.Exchange(m, addr)
				if err != nil {
					t.Fatalf("%s: %v", addr, err)
				}
				if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != 993 {
					t.Errorf("%s: answer %v, want the IMAPS SRV record", addr, r.Answer)
				}
			}
		})
	}
}
