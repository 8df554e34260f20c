package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// outcome of one request.
type outcome int

const (
	expected   outcome = iota
	unexpected         // an answer, but not the right one
	noAnswer           // refused, reset or timed out before any answer
	cut                // the answer started but did not complete
)

// kindStats is one kind of request in the mix and its counters.
type kindStats struct {
	name   string
	dns    bool
	weight int
	do     func(w *worker) (outcome, string)

	n, unexpected, errors atomic.Int64
}

// worker is one client: one keep-alive HTTP connection (through the shared
// transport), one UDP socket and one DNS TCP connection.
type worker struct {
	client *http.Client
	base   string
	dns    string
	seq    int
	udp    net.Conn
	tcp    net.Conn
	tcpr   *bufio.Reader
	buf    []byte
}

func (w *worker) close() {
	if w.udp != nil {
		w.udp.Close()
	}
	if w.tcp != nil {
		w.tcp.Close()
	}
}

const (
	poxRequest = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
)

// newKinds is the request mix. Weights are relative frequencies.
func newKinds(srv *server) []*kindStats {
	get := func(path, host string, status int, has []string, hasNot ...string) func(w *worker) (outcome, string) {
		return func(w *worker) (outcome, string) {
			w.seq++
			p := strings.ReplaceAll(path, "{n}", fmt.Sprint(w.seq))
			req, _ := http.NewRequest(http.MethodGet, w.base+p, nil)
			if host != "" {
				req.Host = host
			}
			return w.check(req, status, has, hasNot)
		}
	}
	return []*kindStats{
		{name: "autoconfig ?emailaddress", weight: 3, do: get("/mail/config-v1.1.xml?emailaddress=user{n}@example.com", "", 200,
			[]string{"<hostname>imap.example.com</hostname>", "Soak Mail"}, "otherprov")},
		{name: "autoconfig by Host", weight: 2, do: get("/.well-known/autoconfig/mail/config-v1.1.xml", "autoconfig.example.net", 200,
			[]string{"<hostname>imap.example.com</hostname>"}, "otherprov")},
		{name: "autoconfig, other provider", weight: 2, do: get("/mail/config-v1.1.xml?emailaddress=bob{n}@other.org", "", 200,
			[]string{"<hostname>imap.otherprov.net</hostname>"}, "example.com", "Soak Mail")},
		{name: "autoconfig, unknown domain", weight: 1, do: get("/mail/config-v1.1.xml?emailaddress=eve{n}@unknown.example", "", 404,
			nil, "example.com", "otherprov")},
		{name: "mobileconfig", weight: 1, do: get("/mobileconfig?emailaddress=user{n}@example.com", "", 200,
			[]string{"<string>imap.example.com</string>"}, "otherprov")},
		{name: "autodiscover POX", weight: 2, do: func(w *worker) (outcome, string) {
			w.seq++
			req, _ := http.NewRequest(http.MethodPost, w.base+"/Autodiscover/Autodiscover.xml",
				strings.NewReader(fmt.Sprintf(poxRequest, fmt.Sprintf("user%d@example.com", w.seq))))
			req.Host = "autodiscover.example.com"
			req.Header.Set("Content-Type", "text/xml")
			return w.check(req, 200, []string{"<Server>imap.example.com</Server>"}, []string{"otherprov"})
		}},
		{name: "autodiscover v2 JSON", weight: 1, do: get("/autodiscover/autodiscover.json/v1.0/user{n}@example.com?Protocol=AutodiscoverV1", "", 200,
			[]string{`"Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"`})},
		{name: "settings page", weight: 1, do: get("/settings?emailaddress=user{n}@example.com", "", 200,
			[]string{"imap.example.com"}, "otherprov")},
		{name: "PACC document", weight: 1, do: get("/.well-known/user-agent-configuration.json", "ua-auto-config.example.net", 200,
			[]string{`"imap":{"host":"imap.example.com"}`, "Soak Mail"}, "otherprov")},
		{name: "dns udp SRV", dns: true, weight: 3, do: func(w *worker) (outcome, string) {
			return w.dnsUDP("_imaps._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, "imap.example.com.")
		}},
		{name: "dns udp REFUSED", dns: true, weight: 1, do: func(w *worker) (outcome, string) {
			return w.dnsUDP("www.example.org.", dns.TypeA, dns.RcodeRefused, "")
		}},
		{name: "dns tcp SRV", dns: true, weight: 2, do: func(w *worker) (outcome, string) {
			return w.dnsTCP("_submissions._tcp.example.net.", dns.TypeSRV, dns.RcodeSuccess, "smtp.example.com.")
		}},
	}
}

// check sends an HTTP request and compares the answer.
func (w *worker) check(req *http.Request, status int, has, hasNot []string) (outcome, string) {
	resp, err := w.client.Do(req)
	if err != nil {
		return noAnswer, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return cut, fmt.Sprintf("%s: body cut: %v", req.URL.Path, err)
	}
	if resp.StatusCode != status {
		return unexpected, fmt.Sprintf("%s %s: status %d, want %d: %.200q", req.Method, req.URL, resp.StatusCode, status, b)
	}
	for _, s := range has {
		if !strings.Contains(string(b), s) {
			return unexpected, fmt.Sprintf("%s %s: answer lacks %q: %.200q", req.Method, req.URL, s, b)
		}
	}
	for _, s := range hasNot {
		if strings.Contains(string(b), s) {
			return unexpected, fmt.Sprintf("%s %s: answer holds %q: %.200q", req.Method, req.URL, s, b)
		}
	}
	return expected, ""
}

func (w *worker) query(name string, qtype uint16) (*dns.Msg, []byte) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = dns.Id()
	b, _ := m.Pack()
	return m, b
}

func checkDNS(q, a *dns.Msg, rcode int, target string) (outcome, string) {
	if a.Id != q.Id || !a.Response || a.Rcode != rcode {
		return unexpected, fmt.Sprintf("DNS %s: id %d/%d rcode %s, want %s", q.Question[0].Name, a.Id, q.Id, dns.RcodeToString[a.Rcode], dns.RcodeToString[rcode])
	}
	if target != "" {
		for _, rr := range a.Answer {
			if srv, ok := rr.(*dns.SRV); ok && srv.Target == target {
				return expected, ""
			}
		}
		return unexpected, fmt.Sprintf("DNS %s: no SRV record for %s: %v", q.Question[0].Name, target, a.Answer)
	}
	if len(a.Answer) > 0 {
		return unexpected, fmt.Sprintf("DNS %s: records in a %s answer", q.Question[0].Name, dns.RcodeToString[rcode])
	}
	return expected, ""
}

func (w *worker) dnsUDP(name string, qtype uint16, rcode int, target string) (outcome, string) {
	if w.udp == nil {
		c, err := net.Dial("udp", w.dns)
		if err != nil {
			return noAnswer, err.Error()
		}
		w.udp = c
	}
	q, b := w.query(name, qtype)
	if _, err := w.udp.Write(b); err != nil {
		return noAnswer, err.Error()
	}
	_ = w.udp.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := w.udp.Read(w.buf)
		if err != nil {
			return noAnswer, fmt.Sprintf("DNS over UDP %s: %v", name, err)
		}
		var a dns.Msg
		if err := a.Unpack(w.buf[:n]); err != nil {
			return unexpected, fmt.Sprintf("DNS %s: answer does not parse: %v", name, err)
		}
		if a.Id != q.Id {
			continue // a late answer to an earlier, timed-out query
		}
		return checkDNS(q, &a, rcode, target)
	}
}

func (w *worker) dnsTCP(name string, qtype uint16, rcode int, target string) (outcome, string) {
	if w.tcp == nil {
		c, err := net.DialTimeout("tcp", w.dns, 2*time.Second)
		if err != nil {
			return noAnswer, err.Error()
		}
		w.tcp, w.tcpr = c, bufio.NewReader(c)
	}
	q, b := w.query(name, qtype)
	_ = w.tcp.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.tcp.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
		w.tcp.Close()
		w.tcp = nil
		return noAnswer, err.Error()
	}
	var l [2]byte
	if _, err := io.ReadFull(w.tcpr, l[:]); err != nil {
		w.tcp.Close()
		w.tcp = nil
		// The server closes idle connections; a resolver reconnects.
		return noAnswer, fmt.Sprintf("DNS over TCP %s: %v", name, err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(w.tcpr, msg); err != nil {
		w.tcp.Close()
		w.tcp = nil
		return cut, fmt.Sprintf("DNS over TCP %s: answer cut: %v", name, err)
	}
	var a dns.Msg
	if err := a.Unpack(msg); err != nil {
		return unexpected, fmt.Sprintf("DNS %s: answer does not parse: %v", name, err)
	}
	return checkDNS(q, &a, rcode, target)
}

// load runs the workers.
type load struct {
	kinds     []*kindStats
	schedule  []int
	workers   []*worker
	transport *http.Transport
	stopping  atomic.Bool
	quit      chan struct{}
	wg        sync.WaitGroup

	mu   sync.Mutex
	errs []string

	answeredAfter, refusedAfter, brokenAfter atomic.Int64
}

func newLoad(srv *server, kinds []*kindStats, conns int) *load {
	l := &load{kinds: kinds, quit: make(chan struct{})}
	for i, k := range kinds {
		for range k.weight {
			l.schedule = append(l.schedule, i)
		}
	}
	l.transport = &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: l.transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range conns {
		l.workers = append(l.workers, &worker{client: client, base: "http://" + srv.http, dns: srv.dns, buf: make([]byte, 65535)})
	}
	return l
}

func (l *load) start() {
	for i, w := range l.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer w.close()
			for j := i; ; j++ {
				select {
				case <-l.quit:
					return
				default:
				}
				k := l.kinds[l.schedule[j%len(l.schedule)]]
				o, detail := k.do(w)
				l.record(k, o, detail)
			}
		}()
	}
}

func (l *load) record(k *kindStats, o outcome, detail string) {
	if l.stopping.Load() {
		switch o {
		case expected:
			l.answeredAfter.Add(1)
		case noAnswer:
			l.refusedAfter.Add(1)
			time.Sleep(10 * time.Millisecond) // the port is closing: do not spin
		default:
			l.brokenAfter.Add(1)
			l.sample("after SIGTERM: " + detail)
		}
		return
	}
	k.n.Add(1)
	switch o {
	case unexpected:
		k.unexpected.Add(1)
		l.sample(detail)
	case noAnswer, cut:
		k.errors.Add(1)
		l.sample(detail)
	}
}

func (l *load) sample(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, s)
	}
}

func (l *load) samples() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// markStopping makes later outcomes count as answers after SIGTERM.
func (l *load) markStopping() { l.stopping.Store(true) }

func (l *load) afterStop() (answered, refused, broken int64) {
	return l.answeredAfter.Load(), l.refusedAfter.Load(), l.brokenAfter.Load()
}

// stop ends the workers and closes their connections, so the server sees
// every client leave.
func (l *load) stop() {
	close(l.quit)
	l.wg.Wait()
	l.transport.CloseIdleConnections()
}
