package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailautoconf/internal/acme"
	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/settings"
	tu "mailautoconf/internal/testutil"
)

// The service for these tests: two exact domains, an alias and a wildcard
// domain, with the built-in DNS server answering 127.0.0.1 for the service
// names (Pebble resolves through it) and for one name under the wildcard.
const serviceYAML = `
listen: {dns: "127.0.0.1:0"}
dns:
  service_addresses: [127.0.0.1]
  hosts: {autoconfig.shop.kunden.example.com: [127.0.0.1]}
providers:
  - id: mail.example.com
    domains: [example.com, example.net, "*.kunden.example.com"]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`

// listed are the names issued in advance for serviceYAML.
var listed = []string{
	"autoconfig.example.com", "autodiscover.example.com",
	"autoconfig.example.net", "autodiscover.example.net",
	"autoconfig.example.org", "autodiscover.example.org",
}

// namesFor is what the server hands the manager for a catalog: autoconfig.
// and autodiscover. of every exact domain and alias in advance, the same
// names under wildcard domains when a client asks.
func namesFor(cat *settings.Catalog) acme.Names {
	var list []string
	for _, p := range cat.Providers {
		ds := append([]string(nil), p.Domains...)
		for a := range p.Aliases {
			ds = append(ds, a)
		}
		for _, d := range ds {
			if !strings.HasPrefix(d, "*.") {
				list = append(list, "autoconfig."+d, "autodiscover."+d)
			}
		}
	}
	return acme.Names{Listed: list, Served: func(host string) bool {
		for _, pre := range []string{"autoconfig.", "autodiscover."} {
			if rest, ok := strings.CutPrefix(host, pre); ok {
				_, served := cat.Lookup(rest)
				return served
			}
		}
		return false
	}}
}

// env is the service with its DNS, plain HTTP and HTTPS listeners, and
// Pebble validating against them.
type env struct {
	srv         *tu.Running
	cat         *settings.Catalog
	pebble      *tu.Pebble
	http, https net.Listener
	storage     string
	current     atomic.Pointer[acme.Manager]
}

func newEnv(t *testing.T, validity time.Duration, blocked ...string) *env {
	t.Helper()
	cfg, err := config.Parse("acme.yaml", []byte(serviceYAML))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: tu.Start(t, cfg, server.Options{}), cat: settings.New(cfg), storage: filepath.Join(t.TempDir(), "acme")}
	if e.http, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if e.https, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	e.pebble = tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: port(e.http), TLSPort: port(e.https), DNS: e.srv.DNSAddr().String(), Validity: validity, Blocked: blocked,
	})
	e.serve(t)
	return e
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

// acmeConfig is tls.acme for Pebble: its directory and CA, fast orders,
// the pre-check on the plain listener through the service's DNS.
func (e *env) acmeConfig() *config.ACME {
	return &config.ACME{
		Directory: e.pebble.Directory, CARoots: []string{e.pebble.CAFile}, Storage: e.storage,
		OrdersPerHour: 36000, PrecheckPort: port(e.http), Resolver: e.srv.DNSAddr().String(),
	}
}

// manager starts a manager behind the env's listeners; it is closed when
// the test ends, or earlier by the test.
func (e *env) manager(t *testing.T, cfg *config.ACME, reg prometheus.Registerer, tune ...func(*acme.Options)) *acme.Manager {
	t.Helper()
	logs := &tu.LogBuffer{}
	opts := acme.Options{
		HTTPAddr: e.http.Addr().String(), HTTPSAddr: e.https.Addr().String(),
		Logger: logs.Logger(), Registerer: reg,
		RetryMin: time.Second, RenewCheckInterval: time.Second,
	}
	for _, f := range tune {
		f(&opts)
	}
	m, err := acme.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s\npebble log:\n%s", logs, e.pebble.Log())
		}
	})
	t.Cleanup(m.Close)
	e.current.Store(m)
	return m
}

// serve runs the service's handler behind the env's two listeners, with
// the challenge path and the certificates of the current manager, the way
// the server wires them.
func (e *env) serve(t *testing.T) {
	h := e.srv.Handler()
	quiet := log.New(io.Discard, "", 0) // the CA's validation connections end abruptly
	plain := &http.Server{ErrorLog: quiet, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := e.current.Load(); m != nil && m.HandleHTTPChallenge(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})}
	secure := &http.Server{ErrorLog: quiet, Handler: h, TLSConfig: &tls.Config{
		NextProtos: []string{"h2", "http/1.1", acme.TLSALPNProto},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if m := e.current.Load(); m != nil {
				return m.GetCertificate(hello)
			}
			return nil, errors.New("no manager")
		},
	}}
	go plain.Serve(e.http)              //nolint:errcheck // closed at cleanup
	go secure.ServeTLS(e.https, "", "") //nolint:errcheck // closed at cleanup
	t.Cleanup(func() { plain.Close(); secure.Close() })
}

// waitIssued waits until every name has a certificate in memory.
func waitIssued(t *testing.T, m *acme.Manager, names ...string) {
	t.Helper()
	tu.WaitFor(t, 60*time.Second, func() string {
		var b strings.Builder
		for _, n := range names {
			s := m.Status(n)
			b.WriteString(n + ": not after " + s.NotAfter.String() + ", last error " + s.LastErr + "\n")
		}
		return "certificates not issued:\n" + b.String()
	}, func() bool {
		for _, n := range names {
			if m.Status(n).NotAfter.IsZero() {
				return false
			}
		}
		return true
	})
}

// get fetches path from the HTTPS listener as a client that trusts only
// Pebble's root and asks for name, the way a mail client would.
func (e *env) get(t *testing.T, roots *x509.CertPool, name, path string) (*http.Response, string, error) {
	t.Helper()
	addr := e.https.Addr().String()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	resp, err := c.Get("https://" + name + ":" + strconv.Itoa(port(e.https)) + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func pool(t *testing.T, pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatalf("not a PEM certificate:\n%s", pem)
	}
	return p
}

// TestIssueServeRestart: with an empty storage every listed name is issued
// in the background, HTTPS clients that trust the CA get the service's
// answers, and a restart on the same storage serves the same certificates
// without a new order.
func TestIssueServeRestart(t *testing.T) {
	e := newEnv(t, 0)
	reg := prometheus.NewRegistry()
	m := e.manager(t, e.acmeConfig(), reg)
	m.Update(namesFor(e.cat))
	waitIssued(t, m, listed...)
	if n := e.pebble.Orders(); n != len(listed) {
		t.Errorf("pebble took %d orders for %d names", n, len(listed))
	}
	roots := pool(t, e.pebble.Root(t))
	resp, body, err := e.get(t, roots, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "imap.example.com") {
		t.Errorf("autoconfig over HTTPS: %s\n%s", resp.Status, body)
	}
	if leaf := resp.TLS.PeerCertificates[0]; leaf.VerifyHostname("autoconfig.example.com") != nil || !strings.Contains(leaf.Issuer.String(), "Pebble") {
		t.Errorf("served certificate: %v issued by %s", leaf.DNSNames, leaf.Issuer)
	}
	if got := metric(t, reg, "mailautoconf_acme_orders_total", "kind", "new", "result", "success"); got != float64(len(listed)) {
		t.Errorf("orders_total{new,success} = %v", got)
	}
	serial := resp.TLS.PeerCertificates[0].SerialNumber

	m.Close()
	m2 := e.manager(t, e.acmeConfig(), nil)
	m2.Update(namesFor(e.cat))
	waitIssued(t, m2, listed...)
	resp, _, err = e.get(t, roots, "autoconfig.example.com", "/mail/config-v1.1.xml")
	if err != nil {
		t.Fatal(err)
	}
	if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(serial) != 0 {
		t.Error("after the restart another certificate is served")
	}
	if n := e.pebble.Orders(); n != len(listed) {
		t.Errorf("the restart ordered again: pebble took %d orders for %d names", n, len(listed))
	}
}

// metric reads one sample from a registry: name with the given label
// pairs (a histogram's sample count).
func metric(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// handshake connects to the HTTPS listener asking for name and returns the
// certificate served, verified against roots.
func (e *env) handshake(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", e.https.Addr().String(),
		&tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestOnDemand: a handshake for a served name without certificate orders
// one (a name under a "*.parent" domain too); a handshake for a name that
// is not served starts no order; with on_demand off nothing is ordered at
// a handshake.
func TestOnDemand(t *testing.T) {
	e := newEnv(t, 0)
	reg := prometheus.NewRegistry()
	m := e.manager(t, e.acmeConfig(), reg)
	n := namesFor(e.cat)
	n.Listed = nil // nothing in advance: every certificate on demand
	m.Update(n)
	roots := pool(t, e.pebble.Root(t))
	for _, name := range []string{"autoconfig.example.com", "autoconfig.shop.kunden.example.com"} {
		leaf, err := e.handshake(name, roots)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if leaf.VerifyHostname(name) != nil {
			t.Errorf("%s: served a certificate for %v", name, leaf.DNSNames)
		}
	}
	if n := e.pebble.Orders(); n != 2 {
		t.Errorf("pebble took %d orders for 2 on-demand names", n)
	}
	for _, name := range []string{"autoconfig.evil.example", "autoconfig.kunden.example.com", "www.example.com", "autoconfig.example.com.evil.example"} {
		if _, err := e.handshake(name, roots); err == nil {
			t.Errorf("%s: handshake succeeded for a name that is not served", name)
		}
	}
	if n := e.pebble.Orders(); n != 2 {
		t.Errorf("a name that is not served started an order: pebble took %d orders", n)
	}
	if got := metric(t, reg, "mailautoconf_acme_on_demand_denied_total", "reason", "unserved"); got != 4 {
		t.Errorf("on_demand_denied_total{unserved} = %v, want 4", got)
	}

	off := e.acmeConfig()
	no := false
	off.OnDemand = &no
	m.Close()
	reg = prometheus.NewRegistry()
	e.manager(t, off, reg).Update(n)
	if _, err := e.handshake("autodiscover.example.net", roots); err == nil {
		t.Error("on_demand: false, yet a handshake got a certificate")
	}
	// A certificate already in storage is still served.
	if _, err := e.handshake("autoconfig.example.com", roots); err != nil {
		t.Errorf("on_demand: false does not serve a stored certificate: %v", err)
	}
	if n := e.pebble.Orders(); n != 2 {
		t.Errorf("on_demand: false ordered at a handshake: pebble took %d orders", n)
	}
	if got := metric(t, reg, "mailautoconf_acme_on_demand_denied_total", "reason", "disabled"); got != 1 {
		t.Errorf("on_demand_denied_total{disabled} = %v, want 1", got)
	}
}

// TestRenewal: a certificate valid for 30 seconds is renewed before it
// expires, and handshakes get the new one.
func TestRenewal(t *testing.T) {
	e := newEnv(t, 30*time.Second)
	reg := prometheus.NewRegistry()
	m := e.manager(t, e.acmeConfig(), reg)
	m.Update(acme.Names{Listed: []string{"autoconfig.example.com"}})
	waitIssued(t, m, "autoconfig.example.com")
	roots := pool(t, e.pebble.Root(t))
	first, err := e.handshake("autoconfig.example.com", roots)
	if err != nil {
		t.Fatal(err)
	}
	tu.WaitFor(t, 45*time.Second, func() string { return "the certificate was not renewed" }, func() bool {
		leaf, err := e.handshake("autoconfig.example.com", roots)
		return err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 && time.Now().Before(first.NotAfter)
	})
	if got := metric(t, reg, "mailautoconf_acme_orders_total", "kind", "renewal", "result", "success"); got < 1 {
		t.Errorf("orders_total{renewal,success} = %v", got)
	}
}

// TestCAUnreachable: when the CA cannot be reached, every name fails
// visibly (metric, status), is retried with back-off, and the service keeps
// answering HTTP.
func TestCAUnreachable(t *testing.T) {
	e := newEnv(t, 0)
	cfg := e.acmeConfig()
	cfg.Directory = "https://127.0.0.1:" + strconv.Itoa(tu.FreePort(t)) + "/dir"
	reg := prometheus.NewRegistry()
	m := e.manager(t, cfg, reg, func(o *acme.Options) { o.RetryMin = time.Hour })
	m.Update(namesFor(e.cat))
	tu.WaitFor(t, 30*time.Second, func() string { return "failures not recorded: " + m.Status(listed[0]).LastErr }, func() bool {
		for _, n := range listed {
			if m.Status(n).Failures == 0 {
				return false
			}
		}
		return true
	})
	st := m.Status("autoconfig.example.com")
	if st.Stage != "order" || !st.NotAfter.IsZero() || time.Until(st.RetryAt) < 50*time.Minute {
		t.Errorf("status after a failure: %+v", st)
	}
	if got := metric(t, reg, "mailautoconf_acme_failures_total", "stage", "order"); got != float64(len(listed)) {
		t.Errorf("failures_total{order} = %v, want %d", got, len(listed))
	}
	if got := metric(t, reg, "mailautoconf_acme_names_failing"); got != float64(len(listed)) {
		t.Errorf("names_failing = %v", got)
	}
	// A handshake for a failing name is refused at once: no new attempt
	// inside the back-off.
	start := time.Now()
	if _, err := e.handshake("autoconfig.example.com", nil); err == nil {
		t.Error("handshake succeeded without certificate")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a handshake for a failing name took %s", d)
	}
	resp := tu.Get(t, "http://"+e.http.Addr().String()+"/mail/config-v1.1.xml?emailaddress=alice@example.com", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("plain HTTP while the CA is away: %s", resp.Status)
	}
}

// TestPrecheck: names that do not reach this service are not ordered (a
// failed validation would count against the CA's limit): one resolves to
// an address nobody answers on, one to another web server, one not at all.
func TestPrecheck(t *testing.T) {
	e := newEnv(t, 0)
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "another site") })}
	ln, err := net.Listen("tcp", "127.0.0.3:"+strconv.Itoa(port(e.http)))
	if err != nil {
		t.Skipf("127.0.0.3 not usable here: %v", err)
	}
	go other.Serve(ln) //nolint:errcheck // closed at cleanup
	t.Cleanup(func() { other.Close() })
	cfg, err := config.Parse("acme.yaml", []byte(strings.Replace(serviceYAML, "hosts: {",
		"hosts: {dead.example.com: [127.0.0.2], other.example.com: [127.0.0.3], ", 1)))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Reload(cfg) //nolint:errcheck // checked by the lookups below
	reg := prometheus.NewRegistry()
	m := e.manager(t, e.acmeConfig(), reg, func(o *acme.Options) { o.RetryMin = time.Hour })
	names := []string{"dead.example.com", "other.example.com", "nowhere.example.com"}
	m.Update(acme.Names{Listed: names})
	tu.WaitFor(t, 30*time.Second, func() string { return "pre-check failures not recorded" }, func() bool {
		for _, n := range names {
			if m.Status(n).Failures == 0 {
				return false
			}
		}
		return true
	})
	for _, want := range []struct{ name, err string }{
		{"dead.example.com", "no address of dead.example.com answers"},
		{"other.example.com", "answered by another server"},
		{"nowhere.example.com", "does not resolve"},
	} {
		st := m.Status(want.name)
		if st.Stage != "precheck" || !strings.Contains(st.LastErr, want.err) {
			t.Errorf("%s: stage %q, error %q; want precheck, %q", want.name, st.Stage, st.LastErr, want.err)
		}
	}
	if n := e.pebble.Orders(); n != 0 {
		t.Errorf("names failing the pre-check were ordered: %d orders", n)
	}
	if got := metric(t, reg, "mailautoconf_acme_failures_total", "stage", "precheck"); got != 3 {
		t.Errorf("failures_total{precheck} = %v", got)
	}
}

// TestCARefuses: a name the CA refuses fails on its own, visibly; the
// other names are issued.
func TestCARefuses(t *testing.T) {
	e := newEnv(t, 0, "autoconfig.example.net")
	reg := prometheus.NewRegistry()
	m := e.manager(t, e.acmeConfig(), reg, func(o *acme.Options) { o.RetryMin = time.Hour })
	m.Update(namesFor(e.cat))
	var others []string
	for _, n := range listed {
		if n != "autoconfig.example.net" {
			others = append(others, n)
		}
	}
	waitIssued(t, m, others...)
	tu.WaitFor(t, 30*time.Second, func() string { return "refusal not recorded" }, func() bool {
		return m.Status("autoconfig.example.net").Failures > 0
	})
	if st := m.Status("autoconfig.example.net"); st.Stage != "order" || !strings.Contains(st.LastErr, "rejectedIdentifier") {
		t.Errorf("status of the refused name: %+v", st)
	}
	if got := metric(t, reg, "mailautoconf_acme_orders_total", "kind", "new", "result", "failure"); got != 1 {
		t.Errorf("orders_total{new,failure} = %v", got)
	}
	if got := metric(t, reg, "mailautoconf_acme_names_missing"); got != 1 {
		t.Errorf("names_missing = %v", got)
	}
	if got := metric(t, reg, "mailautoconf_acme_certificates", "state", "valid"); got != float64(len(others)) {
		t.Errorf("certificates{valid} = %v", got)
	}
	if got := metric(t, reg, "mailautoconf_acme_certificate_expiry_seconds"); got != float64(len(others)) {
		t.Errorf("expiry histogram counts %v certificates", got)
	}
}
