package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options of a soak run.
type Options struct {
	Binary       string
	Duration     time.Duration
	Conns        int
	HUP          time.Duration
	WarmUp       time.Duration
	MaxRSSGrowth float64
	Drain        time.Duration
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Report is what a run measured.
type Report struct {
	Options
	Elapsed                  time.Duration
	Kinds                    []*kindStats
	Requests, HTTP, DNS      int64
	Unexpected, Errors       int64
	Samples                  []string // the first unexpected answers and errors
	HUPs                     int
	ReloadsOK, ReloadsFailed int
	RSSIdle, RSSWarm, RSSEnd int64 // bytes
	GoroutinesIdle           int
	GoroutinesLoad           int
	GoroutinesAfter          int
	ServerErrors             []string // ERROR lines of the server's log
	Shutdown                 ShutdownReport
}

// ShutdownReport is the outcome of SIGTERM under load.
type ShutdownReport struct {
	InFlight, InFlightDone int   // slow uploads in flight at SIGTERM, and completed correctly
	Answered, Refused      int64 // answers after SIGTERM (all complete and expected), and clean refusals
	Broken                 int64 // answers after SIGTERM that were cut or wrong
	ExitCode               int
	Took                   time.Duration
	RefusedDuringDrain     bool // a new connection while the uploads still run is refused
	RefusedAfter           bool // a new connection after exit is refused
	Samples                []string
}

// Failures lists the broken promises; empty means the run passed.
func (r *Report) Failures() []string {
	var f []string
	if r.Requests == 0 {
		f = append(f, "no requests were answered")
	}
	if r.Unexpected > 0 {
		f = append(f, fmt.Sprintf("%d unexpected answers", r.Unexpected))
	}
	if r.Errors > 0 {
		f = append(f, fmt.Sprintf("%d transport errors", r.Errors))
	}
	if r.ReloadsFailed > 0 || r.ReloadsOK < r.HUPs {
		f = append(f, fmt.Sprintf("reloads: %d sent, %d succeeded, %d failed", r.HUPs, r.ReloadsOK, r.ReloadsFailed))
	}
	if g := r.rssGrowth(); r.RSSWarm == 0 || g > r.MaxRSSGrowth {
		f = append(f, fmt.Sprintf("RSS grew by %.1f %% (allowed %.0f %%)", 100*g, 100*r.MaxRSSGrowth))
	}
	if r.GoroutinesAfter > r.GoroutinesIdle+goroutineSlack {
		f = append(f, fmt.Sprintf("goroutines: %d after the load, %d before", r.GoroutinesAfter, r.GoroutinesIdle))
	}
	if len(r.ServerErrors) > 0 {
		f = append(f, fmt.Sprintf("%d error lines in the server log", len(r.ServerErrors)))
	}
	s := r.Shutdown
	if s.InFlightDone != s.InFlight {
		f = append(f, fmt.Sprintf("shutdown: %d of %d in-flight requests completed", s.InFlightDone, s.InFlight))
	}
	if s.Broken > 0 {
		f = append(f, fmt.Sprintf("shutdown: %d cut or wrong answers", s.Broken))
	}
	if s.ExitCode != 0 {
		f = append(f, fmt.Sprintf("shutdown: exit status %d", s.ExitCode))
	}
	if s.Took > r.Drain {
		f = append(f, fmt.Sprintf("shutdown: took %v, drain timeout %v", s.Took.Round(time.Millisecond), r.Drain))
	}
	if !s.RefusedDuringDrain {
		f = append(f, "shutdown: new connections were accepted while draining")
	}
	if !s.RefusedAfter {
		f = append(f, "shutdown: the port still accepts connections")
	}
	if s.InFlight > 0 && s.Took < releaseDelay {
		f = append(f, fmt.Sprintf("shutdown: exited after %v, before the in-flight requests could finish", s.Took.Round(time.Millisecond)))
	}
	return f
}

// goroutineSlack allows for the connection that reads /metrics and the
// runtime's own background goroutines.
const goroutineSlack = 3

func (r *Report) rssGrowth() float64 {
	if r.RSSWarm == 0 {
		return 0
	}
	return float64(r.RSSEnd-r.RSSWarm) / float64(r.RSSWarm)
}

// Print writes the report as the README shows it.
func (r *Report) Print(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "mailautoconf soak: %v of mixed load, %d connections, SIGHUP every %v\n", r.Duration, r.Conns, r.HUP)
	fmt.Fprintf(w, "  requests           %d (%.0f/s): HTTP %d, DNS %d\n", r.Requests, float64(r.Requests)/r.Elapsed.Seconds(), r.HTTP, r.DNS)
	for _, k := range r.Kinds {
		fmt.Fprintf(w, "    %-28s %9d  unexpected %d, errors %d\n", k.name, k.n.Load(), k.unexpected.Load(), k.errors.Load())
	}
	fmt.Fprintf(w, "  unexpected answers %d\n", r.Unexpected)
	fmt.Fprintf(w, "  errors             %d\n", r.Errors)
	fmt.Fprintf(w, "  reloads            %d SIGHUP sent, %d succeeded, %d failed\n", r.HUPs, r.ReloadsOK, r.ReloadsFailed)
	fmt.Fprintf(w, "  RSS                idle %s, after warm-up %s, end %s (%+.1f %%)\n", mib(r.RSSIdle), mib(r.RSSWarm), mib(r.RSSEnd), 100*r.rssGrowth())
	fmt.Fprintf(w, "  goroutines         idle %d, under load %d, after the load %d\n", r.GoroutinesIdle, r.GoroutinesLoad, r.GoroutinesAfter)
	fmt.Fprintf(w, "  server log errors  %d\n", len(r.ServerErrors))
	s := r.Shutdown
	fmt.Fprintf(w, "  SIGTERM under load %d/%d in-flight uploads completed; %d answers after SIGTERM, all complete (%d cut or wrong); %d requests refused cleanly; new connections refused while draining: %v; exit %d after %v; port refused afterwards: %v\n",
		s.InFlightDone, s.InFlight, s.Answered, s.Broken, s.Refused, s.RefusedDuringDrain, s.ExitCode, s.Took.Round(time.Millisecond), s.RefusedAfter)
	for _, x := range append(append(r.Samples, s.Samples...), r.ServerErrors...) {
		fmt.Fprintf(w, "  ! %s\n", x)
	}
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "FAIL: %s\n", strings.Join(f, "; "))
	} else {
		fmt.Fprintln(w, "PASS")
	}
}

// server is the running binary.
type server struct {
	cmd      *exec.Cmd
	http     string // host:port
	dns      string
	cfg      string
	exited   chan struct{}
	exitCode int

	mu       sync.Mutex
	errLines []string
	reloaded atomic.Int64
}

// Run performs a soak run.
func Run(o Options) (*Report, error) {
	if o.Conns <= 0 {
		o.Conns = 256
	}
	if o.HUP <= 0 {
		o.HUP = 5 * time.Second
	}
	if o.WarmUp <= 0 {
		o.WarmUp = min(o.Duration/6, 10*time.Second)
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "soak: "+format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "mailautoconf-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := start(o.Binary, dir)
	if err != nil {
		return nil, err
	}
	defer srv.kill()
	rep := &Report{Options: o}
	rep.Kinds = newKinds(srv)
	rep.RSSIdle = rss(srv.cmd.Process.Pid)
	if rep.GoroutinesIdle, err = goroutines(srv.http); err != nil {
		return nil, err
	}
	logf("server pid %d on http %s, dns %s; load for %v with %d clients", srv.cmd.Process.Pid, srv.http, srv.dns, o.Duration, o.Conns)

	// Phase 1: the soak.
	ld := newLoad(srv, rep.Kinds, o.Conns)
	start := time.Now()
	ld.start()
	hupDone := make(chan struct{})
	stopHUP := make(chan struct{})
	go func() {
		defer close(hupDone)
		t := time.NewTicker(o.HUP)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-stopHUP:
				return
			case <-t.C:
			}
			if err := writeConfig(srv.cfg, i%2 == 1); err != nil {
				logf("writing the configuration: %v", err)
				continue
			}
			if err := srv.cmd.Process.Signal(syscall.SIGHUP); err == nil {
				rep.HUPs++
			}
		}
	}()
	time.Sleep(o.WarmUp)
	rep.RSSWarm = rss(srv.cmd.Process.Pid)
	logf("after warm-up: RSS %d KiB", rep.RSSWarm>>10)
	time.Sleep(o.Duration - o.WarmUp)
	rep.GoroutinesLoad, _ = goroutines(srv.http)
	rep.RSSEnd = rss(srv.cmd.Process.Pid)
	close(stopHUP)
	<-hupDone
	ld.stop()
	rep.Elapsed = time.Since(start)
	for _, k := range rep.Kinds {
		rep.Requests += k.n.Load()
		if k.dns {
			rep.DNS += k.n.Load()
		} else {
			rep.HTTP += k.n.Load()
		}
		rep.Unexpected += k.unexpected.Load()
		rep.Errors += k.errors.Load()
	}
	rep.Samples = ld.samples()
	logf("load stopped: %d requests, %d unexpected, %d errors", rep.Requests, rep.Unexpected, rep.Errors)

	// The server's goroutines must return to the idle baseline once the
	// clients are gone. Wait a moment for reloads in progress too.
	time.Sleep(time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rep.GoroutinesAfter, err = goroutines(srv.http)
		if err != nil {
			return nil, err
		}
		if rep.GoroutinesAfter <= rep.GoroutinesIdle+goroutineSlack || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ok, failed, err := reloads(srv.http)
	if err != nil {
		return nil, err
	}
	rep.ReloadsOK, rep.ReloadsFailed = ok, failed

	// Phase 2: SIGTERM under load.
	rep.Shutdown = shutdownUnderLoad(srv, o, logf)
	srv.mu.Lock()
	rep.ServerErrors = srv.errLines
	srv.mu.Unlock()
	return rep, nil
}

// freePort finds a port free on 127.0.0.1 for both TCP and UDP.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port for TCP and UDP")
}

// start runs the binary with a fresh configuration file and waits until it
// is ready.
func start(bin, dir string) (*server, error) {
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	dp, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{
		http:   net.JoinHostPort("127.0.0.1", strconv.Itoa(hp)),
		dns:    net.JoinHostPort("127.0.0.1", strconv.Itoa(dp)),
		cfg:    filepath.Join(dir, "config.yaml"),
		exited: make(chan struct{}),
	}
	if err := writeConfig(s.cfg, false); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve", "--config", s.cfg, "--http", s.http, "--dns", s.dns, "--log-format", "json")
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go s.readLog(stderr)
	go func() {
		_ = s.cmd.Wait()
		s.exitCode = s.cmd.ProcessState.ExitCode()
		close(s.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			s.mu.Lock()
			defer s.mu.Unlock()
			return nil, fmt.Errorf("the server exited with status %d before it was ready: %s", s.exitCode, strings.Join(s.errLines, "; "))
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, errors.New("the server did not become ready within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server by PID unless it has exited already, and waits
// for it.
func (s *server) kill() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// readLog keeps the server's ERROR lines and counts reloads; the access
// log lines (one per request) are read and dropped.
func (s *server) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"level":"INFO"`) && !strings.Contains(line, `"level":"DEBUG"`) {
			s.mu.Lock()
			if len(s.errLines) < 20 {
				s.errLines = append(s.errLines, line)
			}
			s.mu.Unlock()
		}
		if strings.Contains(line, "configuration reloaded") {
			s.reloaded.Add(1)
		}
	}
}

// writeConfig replaces the configuration file atomically, as configuration
// management does. The two variants differ in what clients see only in the
// display name, so every answer stays checkable across reloads.
func writeConfig(path string, b bool) error {
	name := "Soak Mail A"
	if b {
		name = "Soak Mail B"
	}
	data := fmt.Sprintf(configTemplate, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

const configTemplate = `# mailautoconf soak configuration (written by bench/soak)
dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1]
  hosts:
    ns1.example.com: [127.0.0.1]
    imap.example.com: [192.0.2.11]
    smtp.example.com: [192.0.2.13]
  # All load comes from one address, with a DNS-over-TCP connection per
  # client.
  rate_limit: {responses_per_second: 0}
  tcp: {max_connections_per_source: 1024}
limits:
  rate_per_second: -1
log:
  format: json
providers:
  - id: mail.example.com
    display_name: %s
    domains: [example.com, example.net]
    username: "%%EMAILADDRESS%%"
    servers:
      - {type: imap, host: imap.example.com, port: 993, security: tls}
      - {type: pop3, host: pop.example.com, port: 995, security: tls}
      - {type: smtp, host: smtp.example.com, port: 465, security: tls}
      - {type: smtp, host: smtp.example.com, port: 587, security: starttls}
  - id: mail.other.org
    display_name: Other Org Mail
    domains: [other.org]
    servers:
      - {type: imap, host: imap.otherprov.net, port: 993, security: tls}
      - {type: smtp, host: smtp.otherprov.net, port: 465, security: tls}
`

// rss is the resident set size of a process in bytes (Linux).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metric reads one sample from /metrics: the first line starting with
// prefix.
func metric(addr string, prefixes ...string) ([]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	out := make([]float64, len(prefixes))
	for line := range strings.SplitSeq(string(b), "\n") {
		for i, p := range prefixes {
			if v, ok := strings.CutPrefix(line, p+" "); ok {
				out[i], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out, nil
}

func goroutines(addr string) (int, error) {
	v, err := metric(addr, "go_goroutines")
	if err != nil {
		return 0, err
	}
	return int(v[0]), nil
}

func reloads(addr string) (ok, failed int, err error) {
	v, err := metric(addr, `mailautoconf_config_reloads_total{result="success"}`, `mailautoconf_config_reloads_total{result="failure"}`)
	if err != nil {
		return 0, 0, err
	}
	return int(v[0]), int(v[1]), nil
}

// shutdownUnderLoad starts the load again, opens slow uploads that are in
// flight when SIGTERM arrives, sends SIGTERM, and checks what every client
// got.
func shutdownUnderLoad(srv *server, o Options, logf func(string, ...any)) ShutdownReport {
	var r ShutdownReport
	kinds := newKinds(srv)
	ld := newLoad(srv, kinds, o.Conns)
	ld.start()
	time.Sleep(time.Second)

	const uploads = 8
	r.InFlight = uploads
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	results := make(chan error, uploads)
	for range uploads {
		c, err := net.DialTimeout("tcp", srv.http, 2*time.Second)
		if err != nil {
			results <- fmt.Errorf("connecting before SIGTERM: %w", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- slowUpload(ctx, c, release)
		}()
	}
	time.Sleep(200 * time.Millisecond) // the first halves are read
	ld.markStopping()
	sent := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.Samples = append(r.Samples, "sending SIGTERM: "+err.Error())
	}
	// While the uploads are still open the server is draining: the port
	// no longer accepts connections. It closes once the process has
	// handled the signal, which on a loaded machine can take longer than
	// any fixed wait: the uploads are held until the port is seen
	// refusing (at most half the drain timeout), so the verdict does not
	// depend on the machine's load.
	for deadline := sent.Add(o.Drain / 2); ; time.Sleep(10 * time.Millisecond) {
		select {
		case <-srv.exited:
			r.Samples = append(r.Samples, "the server exited with uploads in flight")
		default:
			r.RefusedDuringDrain = refused(srv.http)
			if !r.RefusedDuringDrain && time.Now().Before(deadline) {
				continue
			}
		}
		break
	}
	time.Sleep(time.Until(sent.Add(releaseDelay)))
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err == nil {
			r.InFlightDone++
		} else if len(r.Samples) < 10 {
			r.Samples = append(r.Samples, "in-flight upload: "+err.Error())
		}
	}
	select {
	case <-srv.exited:
		r.Took = time.Since(sent)
	case <-time.After(o.Drain + 5*time.Second):
		r.Took = time.Since(sent)
		r.Samples = append(r.Samples, "the server did not exit; killed")
		_ = srv.cmd.Process.Kill()
		<-srv.exited
	}
	r.ExitCode = srv.exitCode
	ld.stop()
	r.Answered, r.Refused, r.Broken = ld.afterStop()
	r.Samples = append(r.Samples, ld.samples()...)
	r.RefusedAfter = refused(srv.http)
	logf("SIGTERM: exit %d after %v", r.ExitCode, r.Took.Round(time.Millisecond))
	return r
}

// releaseDelay is how long after SIGTERM the in-flight uploads send the
// rest of their bodies, at the earliest. The server must wait for them, so
// it cannot exit sooner.
const releaseDelay = 300 * time.Millisecond

// refused reports whether a new connection to addr is refused outright
// (RST to the SYN), the clean way to turn a client away.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return false
}

// slowUpload sends an Autodiscover request whose body arrives in two
// halves, the second after SIGTERM, and checks the complete answer.
func slowUpload(ctx context.Context, c net.Conn, release <-chan struct{}) error {
	defer c.Close()
	body := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>slow@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	head := fmt.Sprintf("POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.com\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n", len(body))
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head+body[:len(body)/2]); err != nil {
		return err
	}
	select {
	case <-release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := io.WriteString(c, body[len(body)/2:]); err != nil {
		return fmt.Errorf("sending the rest after SIGTERM: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("no answer after SIGTERM: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("answer cut after SIGTERM: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<Server>imap.example.com</Server>") {
		return fmt.Errorf("answer %d %.200q", resp.StatusCode, b)
	}
	return nil
}
