package dnsserver_test

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// These tests measure the response-rate limit at the wire: real UDP from
// several loopback addresses (all of 127.0.0.0/8 reaches lo on Linux, so a
// client socket bound to 127.0.0.x is a source of its own) to the running
// server. Queries go out on a fixed schedule and every outcome is counted;
// the checks compare the counts with what the limit must allow for the
// time the load really took, with margins, so that a slow or busy machine
// changes the numbers but not the verdict.

// stream is one client of a paced load.
type stream struct {
	src  string // loopback address to send from, 127.0.0.x
	rate int    // queries per second
	n    int    // queries in all
	// query is the question of query i and the label it is counted
	// under.
	query func(i int) (name string, qtype uint16, label string)
}

// tally counts the outcomes of one label of a stream.
type tally struct {
	sent, full, tc int
}

// lost is how many queries got no answer at all.
func (t tally) lost() int { return t.sent - t.full - t.tc }

type loadResult struct {
	// tallies per stream and label.
	tallies []map[string]*tally
	// elapsed is the time from the first query sent to the last answer
	// received (or the last query sent, when later): the server answered
	// everything within it, however late it read the queries.
	elapsed time.Duration
	// kernelDrops is how many UDP datagrams the kernel dropped on this
	// machine meanwhile (full socket buffers, /proc/net/snmp), the
	// only losses that are not the limit's.
	kernelDrops int
}

func (r loadResult) sum(label string) tally {
	var s tally
	for _, m := range r.tallies {
		if t := m[label]; t != nil {
			s.sent += t.sent
			s.full += t.full
			s.tc += t.tc
		}
	}
	return s
}

// allowed is the most answers a bucket of this rate and burst may send
// during the load: the burst, one per interval, and one interval of
// slack for the clocks of client and server.
func (r loadResult) allowed(rate, burst int) int {
	return burst + int(math.Ceil(float64(rate)*(r.elapsed.Seconds()+0.05)))
}

// runLoad sends the streams at once and counts the answers.
func runLoad(t *testing.T, addr string, streams []stream) loadResult {
	t.Helper()
	server, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	before := udpDrops(t)
	res := loadResult{tallies: make([]map[string]*tally, len(streams))}
	start := time.Now().Add(20 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for si, st := range streams {
		res.tallies[si] = map[string]*tally{}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(st.src)})
		if err != nil {
			t.Fatalf("binding a client to %s: %v", st.src, err)
		}
		defer c.Close()
		_ = c.SetReadBuffer(4 << 20)
		labels := make([]string, st.n)
		wires := make([][]byte, st.n)
		for i := range st.n {
			name, qtype, label := st.query(i)
			q := query(name, qtype)
			q.Id = uint16(i)
			wires[i], _ = q.Pack()
			labels[i] = label
			if res.tallies[si][label] == nil {
				res.tallies[si][label] = &tally{}
			}
			res.tallies[si][label].sent++
		}
		sent := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(sent)
			period := time.Second / time.Duration(st.rate)
			for i, w := range wires {
				// Late queries go out at once: the schedule is kept
				// on average whatever the machine does.
				if d := time.Until(start.Add(time.Duration(i) * period)); d > 0 {
					time.Sleep(d)
				}
				if _, err := c.WriteToUDP(w, server); err != nil {
					t.Errorf("sending from %s: %v", st.src, err)
					return
				}
			}
			mu.Lock()
			res.elapsed = max(res.elapsed, time.Since(start))
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			seen := make([]bool, st.n)
			buf := make([]byte, 4096)
			done := false
			for {
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				k, err := c.Read(buf)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						if done {
							return
						}
						select {
						case <-sent:
							done = true
						default:
						}
						continue
					}
					t.Errorf("reading at %s: %v", st.src, err)
					return
				}
				var r dns.Msg
				if err := r.Unpack(buf[:k]); err != nil {
					t.Errorf("unparsable answer: %v", err)
					continue
				}
				if int(r.Id) >= st.n || seen[r.Id] {
					t.Errorf("unexpected answer ID %d", r.Id)
					continue
				}
				seen[r.Id] = true
				mu.Lock()
				res.elapsed = max(res.elapsed, time.Since(start))
				switch tl := res.tallies[si][labels[r.Id]]; {
				case r.Truncated && len(r.Answer)+len(r.Ns)+len(r.Extra) == 0:
					tl.tc++
				case !r.Truncated:
					tl.full++
				default:
					t.Errorf("truncated answer with records: %v", &r)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.kernelDrops = udpDrops(t) - before
	return res
}

// udpDrops reads the kernel's count of UDP datagrams dropped for full
// buffers, on this machine (network namespace); 0 where it is not known.
func udpDrops(t *testing.T) int {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		n := 0
		for i, name := range head {
			if (name == "RcvbufErrors" || name == "SndbufErrors") && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				n += v
			}
		}
		return n
	}
	return 0
}

func (r loadResult) log(t *testing.T, what string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", what, r.elapsed.Round(time.Millisecond))
	for si, m := range r.tallies {
		for label, tl := range m {
			fmt.Fprintf(&b, "\n  stream %d %-10s sent %5d  answered %5d  TC=1 %5d  no answer %5d", si, label, tl.sent, tl.full, tl.tc, tl.lost())
		}
	}
	fmt.Fprintf(&b, "\n  UDP datagrams dropped by the kernel meanwhile: %d", r.kernelDrops)
	t.Log(b.String())
}

// checkSlipHalf checks that of the limited answers of one bucket (those
// not answered in full), every second went out with TC=1: exactly half,
// give or take one, when the kernel lost nothing.
func checkSlipHalf(t *testing.T, what string, tl tally, kernelDrops int) {
	t.Helper()
	limited := tl.sent - tl.full
	if lo, hi := (limited-kernelDrops)/2-1, limited/2+1; tl.tc < lo || tl.tc > hi {
		t.Errorf("%s: %d of %d limited answers went out with TC=1, want %d to %d (slip 2)", what, tl.tc, limited, lo, hi)
	}
}

// A resolver asking many different names is not limited like one asking
// the same name: each positive answer has its own bucket. 1,000 names at
// 2,000 queries per second from one address: nothing may be lost (before,
// the limit counted every answer to a /24 alike and dropped nine in ten).
func TestRRLDistinctNames(t *testing.T) {
	var domains []string
	for i := range 1000 {
		domains = append(domains, fmt.Sprintf("d%d.example", i))
	}
	cfg := parse(t, `
providers:
  - id: mail.example.com
    domains: [`+strings.Join(domains, ", ")+`]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`)
	addr := startDNS(t, cfg)
	res := runLoad(t, addr, []stream{{src: "127.0.0.11", rate: 2000, n: 2000, query: func(i int) (string, uint16, string) {
		return fmt.Sprintf("_imaps._tcp.d%d.example.", i%1000), dns.TypeSRV, "srv"
	}}})
	res.log(t, "1,000 names, 2,000 queries at 2,000 q/s from one address, default limit")
	s := res.sum("srv")
	if s.tc > 0 {
		t.Errorf("%d answers truncated by the limit", s.tc)
	}
	if lost := s.lost(); lost > s.sent/100+res.kernelDrops {
		t.Errorf("%d of %d queries lost (%d dropped by the kernel), want under 1 %%", lost, s.sent, res.kernelDrops)
	}
}

// One name asked 2,000 times a second from one address is limited to its
// bucket's rate (200 a second by default, after a burst of as many), and
// of the limited answers every second goes out with TC=1 (slip 2).
func TestRRLOneName(t *testing.T) {
	addr := startDNS(t, testutil.Demo(t))
	res := runLoad(t, addr, []stream{{src: "127.0.0.12", rate: 2000, n: 2000, query: func(int) (string, uint16, string) {
		return "_imaps._tcp.example.com.", dns.TypeSRV, "srv"
	}}})
	res.log(t, "one name, 2,000 queries at 2,000 q/s from one address, default limit")
	s := res.sum("srv")
	if hi := res.allowed(200, 200); s.full > hi || s.full < 200-res.kernelDrops {
		t.Errorf("%d answered in full, want the burst of 200 to %d", s.full, hi)
	}
	checkSlipHalf(t, "one name", s, res.kernelDrops)
}

// Two resolvers in one /24 together just above the limit: the limit drops
// some answers and truncates as many, for both of them, so that each can
// go on over TCP. Before, the count of limited answers started again at
// every answer allowed, so that at a steady rate just above the limit
// nothing was ever truncated.
func TestRRLJustAboveTheLimit(t *testing.T) {
	cfg := testutil.Demo(t)
	rate := 100
	cfg.DNS.RateLimit.ResponsesPerSecond = &rate
	cfg.DNS.RateLimit.Burst = 10
	addr := startDNS(t, cfg)
	q := func(int) (string, uint16, string) { return "_imaps._tcp.example.com.", dns.TypeSRV, "srv" }
	res := runLoad(t, addr, []stream{
		{src: "127.0.0.21", rate: 70, n: 140, query: q},
		{src: "127.0.0.22", rate: 60, n: 120, query: q},
	})
	res.log(t, "two resolvers of one /24 at 70 and 60 q/s, limit 100/s")
	s := res.sum("srv")
	hi := res.allowed(100, 10)
	if s.full > hi {
		t.Errorf("%d answered in full, want at most %d", s.full, hi)
	}
	if s.sent-s.full < 20 {
		t.Fatalf("only %d of %d answers limited: the load did not keep its schedule", s.sent-s.full, s.sent)
	}
	checkSlipHalf(t, "both resolvers", s, res.kernelDrops)
	for i, m := range res.tallies {
		if m["srv"].tc == 0 {
			t.Errorf("resolver %d got no truncated answer", i+1)
		}
	}
}

// A flood of random sub-domains (NXDOMAIN) shares one bucket per zone, and
// a flood of foreign names (REFUSED) one per source network: neither
// limits the positive answers the same address gets meanwhile.
func TestRRLRandomSubdomains(t *testing.T) {
	cfg := testutil.Demo(t)
	rate := 50
	cfg.DNS.RateLimit.ResponsesPerSecond = &rate
	addr := startDNS(t, cfg)
	positive := []struct {
		name  string
		qtype uint16
	}{
		{"_imaps._tcp.example.com.", dns.TypeSRV}, {"_imap._tcp.example.com.", dns.TypeSRV},
		{"_submissions._tcp.example.com.", dns.TypeSRV}, {"_submission._tcp.example.com.", dns.TypeSRV},
		{"_pop3s._tcp.example.com.", dns.TypeSRV}, {"_autodiscover._tcp.example.com.", dns.TypeSRV},
		{"autoconfig.example.com.", dns.TypeA}, {"autoconfig.example.com.", dns.TypeAAAA},
		{"autodiscover.example.com.", dns.TypeA}, {"_imaps._tcp.example.net.", dns.TypeSRV},
	}
	res := runLoad(t, addr, []stream{{src: "127.0.0.31", rate: 1000, n: 1000, query: func(i int) (string, uint16, string) {
		switch i % 10 {
		case 0:
			p := positive[i/10%len(positive)]
			return p.name, p.qtype, "positive"
		case 1, 2:
			return fmt.Sprintf("r%d.example.org.", i), dns.TypeA, "refused"
		}
		return fmt.Sprintf("r%d.example.com.", i), dns.TypeA, "nxdomain"
	}}})
	res.log(t, "random names at 1,000 q/s, with 10 real names among them, limit 50/s")
	hi := res.allowed(50, 50)
	for _, label := range []string{"nxdomain", "refused"} {
		s := res.sum(label)
		if s.full > hi {
			t.Errorf("%s: %d answered in full, want at most %d (one bucket)", label, s.full, hi)
		}
		checkSlipHalf(t, label, s, res.kernelDrops)
	}
	if s := res.sum("positive"); s.full < s.sent-res.kernelDrops {
		t.Errorf("positive answers: %d of %d answered in full", s.full, s.sent)
	}
}

// Exempt networks are never limited; their neighbours are.
func TestRRLExempt(t *testing.T) {
	cfg := testutil.Demo(t)
	rate := 10
	cfg.DNS.RateLimit.ResponsesPerSecond = &rate
	cfg.DNS.RateLimit.Exempt = []string{"127.0.0.41"}
	addr := startDNS(t, cfg)
	q := func(int) (string, uint16, string) { return "_imaps._tcp.example.com.", dns.TypeSRV, "srv" }
	res := runLoad(t, addr, []stream{
		{src: "127.0.0.41", rate: 1000, n: 300, query: q},
		{src: "127.0.0.42", rate: 1000, n: 300, query: q},
	})
	res.log(t, "an exempt address and its neighbour, 1,000 q/s each, limit 10/s")
	if s := *res.tallies[0]["srv"]; s.full < s.sent-res.kernelDrops {
		t.Errorf("exempt address: %d of %d answered in full", s.full, s.sent)
	}
	if s := *res.tallies[1]["srv"]; s.full > res.allowed(10, 10) {
		t.Errorf("neighbour: %d of %d answered in full, want at most %d", s.full, s.sent, res.allowed(10, 10))
	}
}

// The buckets outlive a reload: a source that used up its budget does not
// get a new one because the configuration changed (before, the limiter
// was built with the zones and started empty at every reload), while the
// new settings apply at once.
func TestRRLSurvivesReload(t *testing.T) {
	conf := func(rl string) string {
		return `
dns:
  rate_limit: ` + rl + `
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`
	}
	const limited = "{responses_per_second: 2, burst: 10, slip: 0}"
	srv := testutil.Start(t, parse(t, conf(limited)), server.Options{DNSAddr: "127.0.0.1:0"})
	addr := srv.DNSAddr().String()
	q := func(int) (string, uint16, string) { return "_imaps._tcp.example.com.", dns.TypeSRV, "srv" }
	first := time.Now()
	res := runLoad(t, addr, []stream{{src: "127.0.0.51", rate: 1000, n: 30, query: q}})
	res.log(t, "before the reload")
	if s := res.sum("srv"); s.full > res.allowed(2, 10) {
		t.Fatalf("%d answered before the reload", s.full)
	}
	// A reload with other records and the same limit.
	cfg := parse(t, strings.Replace(conf(limited), "imap.example.com}", "imap2.example.com}", 1))
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	res = runLoad(t, addr, []stream{{src: "127.0.0.51", rate: 1000, n: 10, query: q}})
	res.log(t, "after the reload")
	// What refilled since the first query, and one for the clocks.
	refilled := int(2*time.Since(first).Seconds()) + 1
	if s := res.sum("srv"); s.full > refilled {
		t.Errorf("%d of 10 answered after the reload, want at most %d: the buckets were forgotten", s.full, refilled)
	}
	// The new settings apply at once: off.
	if err := srv.Reload(parse(t, conf("{responses_per_second: 0}"))); err != nil {
		t.Fatal(err)
	}
	res = runLoad(t, addr, []stream{{src: "127.0.0.51", rate: 1000, n: 30, query: q}})
	res.log(t, "after a reload turning the limit off")
	if s := res.sum("srv"); s.full < s.sent-res.kernelDrops {
		t.Errorf("limit off: %d of %d answered", s.full, s.sent)
	}
}
