package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	tu "mailautoconf/internal/testutil"
)

// These tests run the real binary with tls.acme against a real Pebble
// (Let's Encrypt's test CA) that resolves names through the service's own
// DNS listener and validates against the service's own listeners: nothing
// is faked, Pebble really fetches the HTTP-01 token from the plain
// listener and really makes the TLS-ALPN-01 handshake with the HTTPS
// listener.

// acmeProviders are the served domains: two exact ones with an alias, and
// a "*.parent" domain whose names are issued on demand only.
const acmeProviders = `providers:
  - id: mail.example.com
    domains: [example.com, example.net, "*.kunden.example.com"]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`

// acmeListed are the names the service obtains in advance for
// acmeProviders and tls.acme.names: [mail.example.com].
var acmeListed = []string{
	"autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com",
	"autoconfig.example.net", "autodiscover.example.net", "ua-auto-config.example.net",
	"autoconfig.example.org", "autodiscover.example.org", "ua-auto-config.example.org",
	"mail.example.com",
}

// ports are one service process's listeners, chosen before it starts:
// Pebble is configured with them.
type ports struct{ http, https, dns int }

func freePorts(t *testing.T) ports {
	return ports{tu.FreePort(t), tu.FreePort(t), tu.FreePort(t)}
}

// acmeYAML is the configuration of one process: its listeners (no HTTPS
// when p.https is 0), Pebble as CA, the storage, the pre-check through the
// service's DNS to its plain listener, tls.acme.names, and extra lines
// (limits, signing).
func acmeYAML(p ports, pebble *tu.Pebble, storage string, names []string, extra string) string {
	https := ""
	if p.https != 0 {
		https = fmt.Sprintf(", https: \"127.0.0.1:%d\"", p.https)
	}
	return fmt.Sprintf(`listen: {http: "127.0.0.1:%d", dns: "127.0.0.1:%d"%s}
dns:
  service_addresses: [127.0.0.1]
  hosts:
    mail.example.com: [127.0.0.1]
    blocked.example.com: [127.0.0.1]
    autoconfig.shop.kunden.example.com: [127.0.0.1]
tls:
  acme:
    directory: %s
    ca_roots: [%s]
    storage: %s
    orders_per_hour: 36000
    precheck_port: %d
    resolver: "127.0.0.1:%d"
    names: [%s]
%s%s`, p.http, p.dns, https, pebble.Directory, pebble.CAFile, storage, p.http, p.dns, strings.Join(names, ", "), extra, acmeProviders)
}

// proc is a running service process.
type proc struct {
	cfg   string // the configuration file
	cmd   *exec.Cmd
	log   *tu.LogBuffer
	ports ports
	done  chan struct{}
}

// startProc runs `serve --config` on yaml, with the further serve flags
// in args, and waits until /readyz answers.
func startProc(t *testing.T, bin string, p ports, yaml string, args ...string) *proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "mailautoconf.yaml")
	tu.WriteFile(t, cfg, []byte(yaml))
	cmd := exec.Command(bin, append([]string{"serve", "--config", cfg}, args...)...)
	pr := &proc{cfg: cfg, cmd: cmd, log: &tu.LogBuffer{}, ports: p, done: make(chan struct{})}
	pr.cmd.Stdout, pr.cmd.Stderr = pr.log, pr.log
	if err := pr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { pr.cmd.Wait(); close(pr.done) }() //nolint:errcheck // the exit is checked by stop
	t.Cleanup(func() {
		pr.cmd.Process.Kill() //nolint:errcheck // gone already is fine
		<-pr.done
		if t.Failed() {
			t.Logf("service log (port %d):\n%s", p.http, pr.log)
		}
	})
	tu.WaitFor(t, 20*time.Second, func() string { return "the service did not get ready:\n" + pr.log.String() }, func() bool {
		select {
		case <-pr.done:
			t.Fatalf("the service exited:\n%s", pr.log)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.http))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return pr
}

// stop ends the process the way systemd does and waits for it.
func (pr *proc) stop(t *testing.T) {
	t.Helper()
	pr.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by the wait
	select {
	case <-pr.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the service did not stop on SIGTERM:\n%s", pr.log)
	}
	if code := pr.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the service exited %d:\n%s", code, pr.log)
	}
}

// metric reads a sample from the process's /metrics, e.g.
// `mailautoconf_acme_names_missing` or
// `mailautoconf_acme_certificates{state="valid"}`; -1 when absent.
func (pr *proc) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", pr.ports.http))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", sample, line)
			}
			return f
		}
	}
	return -1
}

// waitMissing waits until exactly n listed names have no certificate
// in memory.
func (pr *proc) waitMissing(t *testing.T, n float64) {
	t.Helper()
	tu.WaitFor(t, 90*time.Second, func() string {
		return fmt.Sprintf("names without certificate: %v, want %v", pr.metric(t, "mailautoconf_acme_names_missing"), n)
	}, func() bool { return pr.metric(t, "mailautoconf_acme_names_missing") == n })
}

// served counts the challenge answers the process logged for a
// challenge type ("http-01", "tls-alpn-01"): requests from the CA, not
// the pre-checks.
func (pr *proc) served(challenge string) int {
	n := 0
	for line := range strings.Lines(pr.log.String()) {
		if strings.Contains(line, `msg="ACME challenge" challenge=`+challenge) && !strings.Contains(line, "mailautoconf-precheck") &&
			(challenge != "http-01" || strings.Contains(line, "status=200")) {
			n++
		}
	}
	return n
}

// curl fetches an HTTPS URL the way a client of the named host does:
// the name resolved to the process's HTTPS listener, only Pebble's root
// trusted. It returns the body, and the certificate's issuer and serial
// from curl's verbose output.
func curl(t *testing.T, bin, root string, pr *proc, host, path string) (status int, body []byte, issuer string, err error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "body")
	cmd := exec.Command(bin, "-sS", "-v", "--max-time", "30", "--cacert", root,
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, pr.ports.https),
		"-o", out, "-w", "%{http_code}",
		fmt.Sprintf("https://%s:%d%s", host, pr.ports.https, path))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, nil, "", fmt.Errorf("curl %s: %w\n%s", host, err, stderr.String())
	}
	status, _ = strconv.Atoi(strings.TrimSpace(stdout.String()))
	body, _ = os.ReadFile(out)
	if m := regexp.MustCompile(`(?m)^\*\s+issuer: (.*)$`).FindStringSubmatch(stderr.String()); m != nil {
		issuer = m[1]
	}
	return status, body, issuer, nil
}

// tlsSerial is the serial of the certificate the process's HTTPS
// listener shows for host, verified against roots: how two processes are
// proven to serve the same certificate.
func tlsSerial(t *testing.T, roots *x509.CertPool, pr *proc, host string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pr.ports.https), &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake for %s with the process on %d: %v", host, pr.ports.https, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestACMEServe: a service with an empty storage and tls.acme gets every
// served name from the CA in the background (HTTP-01 through the plain
// listener, which the CA reaches although the rate limit would refuse it
// such a burst), keeps answering meanwhile (a name the CA refuses never
// holds /readyz back), and after a restart with HTTPS serves the
// certificates from storage without a new order: curl trusting only
// Pebble's root gets the documents, which pass the independent
// validators, and a profile signed with the managed certificate of
// signing.acme_name. A handshake for a name that is not served starts no
// order; one under a "*.parent" domain is issued on demand.
func TestACMEServe(t *testing.T) {
	curlBin := tu.Tool(t, "curl", "curl")
	bin := buildBinary(t)
	p := freePorts(t)
	pebble := tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: p.http, TLSPort: p.https, DNS: fmt.Sprintf("127.0.0.1:%d", p.dns),
		Blocked: []string{"blocked.example.com"},
	})
	storage := filepath.Join(t.TempDir(), "acme")
	// Four requests per client and no refill: Pebble's validations and
	// the pre-checks (two per name, all from 127.0.0.1) would exceed it
	// if the challenge path were limited.
	const limits = "limits: {rate_per_second: 0.0001, burst: 4}\n"
	names := []string{"mail.example.com", "blocked.example.com"}

	// First start: plain HTTP only, so that HTTP-01 is the only
	// challenge the service can take.
	plain := p
	plain.https = 0
	a := startProc(t, bin, plain, acmeYAML(plain, pebble, storage, names, limits))
	a.waitMissing(t, 1) // all but the name the CA refuses
	tu.WaitFor(t, 30*time.Second, func() string { return "the refused name is not failing" }, func() bool {
		return a.metric(t, "mailautoconf_acme_names_failing") == 1
	})
	if n := pebble.Orders(); n != len(acmeListed) {
		t.Errorf("pebble took %d orders for %d names", n, len(acmeListed))
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.http))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz while a name has no certificate: %v %v", resp, err)
	}
	resp.Body.Close()
	// The limit is in force for everything else.
	limited := false
	for range 5 {
		r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/mail/config-v1.1.xml?emailaddress=alice@example.com", p.http))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		limited = limited || r.StatusCode == http.StatusTooManyRequests
	}
	if !limited {
		t.Error("5 requests within the burst of 4 were not limited: the test proves nothing")
	}
	a.stop(t) // the log is complete once the process has exited
	if n := a.served("http-01"); n < len(acmeListed) {
		t.Errorf("%d HTTP-01 answers for %d names", n, len(acmeListed))
	}
	if n := a.served("tls-alpn-01"); n != 0 {
		t.Errorf("%d TLS-ALPN-01 answers without HTTPS listener", n)
	}
	if !regexp.MustCompile(`msg="certificate not obtained".* name=blocked\.example\.com .*rejectedIdentifier`).MatchString(a.log.String()) {
		t.Error("the refused name is not logged")
	}

	// Restart with HTTPS on the same storage: every certificate comes
	// from storage.
	b := startProc(t, bin, p, acmeYAML(p, pebble, storage, names, limits+"signing: {acme_name: mail.example.com}\n"))
	b.waitMissing(t, 1)
	if n := pebble.Orders(); n != len(acmeListed) {
		t.Errorf("the restart ordered again: pebble took %d orders for %d names", n, len(acmeListed))
	}
	root := filepath.Join(t.TempDir(), "pebble-root.pem")
	tu.WriteFile(t, root, pebble.Root(t))

	status, body, issuer, err := curl(t, curlBin, root, b, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(issuer, "Pebble") {
		t.Fatalf("autoconfig over HTTPS: %d, issuer %q\n%s", status, issuer, body)
	}
	tu.Validate(t, "autoconfig.py", body, "config-v1.1.xml")

	status, body, _, err = curl(t, curlBin, root, b, "autoconfig.example.org", "/mobileconfig?emailaddress=alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || len(body) == 0 || body[0] != 0x30 {
		t.Fatalf("profile over HTTPS: %d, not CMS:\n%.200q", status, body)
	}
	if out := tu.Validate(t, "mobileconfig.py", body, "alice.mobileconfig", "--ca", root, "--for-address", "alice@example.org"); out != "" &&
		!strings.Contains(out, "signature verified: full chain check") {
		t.Errorf("the profile's signature was not verified against Pebble's root:\n%s", out)
	}
	p7, err := pkcs7.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if signer := p7.GetOnlySigner(); signer == nil || signer.VerifyHostname("mail.example.com") != nil {
		t.Errorf("the profile is not signed by the managed certificate of mail.example.com: %v", signer)
	}

	// A name that is not served: no certificate, no order.
	if _, _, _, err := curl(t, curlBin, root, b, "autoconfig.evil.example", "/mail/config-v1.1.xml"); err == nil {
		t.Error("a handshake for autoconfig.evil.example succeeded")
	}
	if v := b.metric(t, `mailautoconf_acme_on_demand_denied_total{reason="unserved"}`); v < 1 {
		t.Errorf("on_demand_denied_total{unserved} = %v", v)
	}
	if n := pebble.Orders(); n != len(acmeListed) {
		t.Errorf("a handshake for an unserved name ordered: pebble took %d orders", n)
	}

	// A name under the "*.parent" domain: ordered at its first handshake.
	status, body, issuer, err = curl(t, curlBin, root, b, "autoconfig.shop.kunden.example.com", "/mail/config-v1.1.xml?emailaddress=bob@shop.kunden.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(issuer, "Pebble") {
		t.Fatalf("on-demand name: %d, issuer %q\n%s", status, issuer, body)
	}
	tu.Validate(t, "autoconfig.py", body, "config-v1.1.xml")
	if n := pebble.Orders(); n != len(acmeListed)+1 {
		t.Errorf("pebble took %d orders, want %d", n, len(acmeListed)+1)
	}

	// The challenge path is not limited, so it must answer garbage
	// cheaply: 404, never 429, however many.
	for i := range 20 {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/token%d", p.http, i), nil)
		req.Host = "autoconfig.evil.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("challenge request %d for an unserved name: %s", i, resp.Status)
		}
	}
	b.stop(t)
	if strings.Contains(b.log.String(), "host=autoconfig.evil.example") {
		t.Error("challenge requests for an unserved name are logged at info level")
	}
}

// TestACMETLSALPN: with the CA's HTTP-01 port closed, the service's
// HTTPS listener answers TLS-ALPN-01 (it offers acme-tls/1) and the names
// are issued all the same. A certificate file covering a name wins: that
// name is served from the file and never ordered. A domain added by a
// reload gets its certificates without restart.
func TestACMETLSALPN(t *testing.T) {
	curlBin := tu.Tool(t, "curl", "curl")
	bin := buildBinary(t)
	p := freePorts(t)
	pebble := tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: tu.FreePort(t), TLSPort: p.https, DNS: fmt.Sprintf("127.0.0.1:%d", p.dns),
	})
	ca := tu.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.IssueFiles(t, dir, "file", time.Time{}, "autoconfig.example.net")
	files := fmt.Sprintf("  certificates: [{cert: %s, key: %s}]\n", certFile, keyFile)
	storage := filepath.Join(dir, "acme")
	pr := startProc(t, bin, p, acmeYAML(p, pebble, storage, nil, files))
	pr.waitMissing(t, 0)
	ordered := len(acmeListed) - 2 // no mail.example.com, no autoconfig.example.net

	root := filepath.Join(t.TempDir(), "pebble-root.pem")
	tu.WriteFile(t, root, pebble.Root(t))
	status, body, issuer, err := curl(t, curlBin, root, pr, "autodiscover.example.net", "/mail/config-v1.1.xml?emailaddress=carol@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || !strings.Contains(issuer, "Pebble") {
		t.Fatalf("autoconfig over HTTPS: %d, issuer %q\n%s", status, issuer, body)
	}
	fileRoot := filepath.Join(dir, "file-root.pem")
	tu.WriteFile(t, fileRoot, ca.PEM)
	status, body, issuer, err = curl(t, curlBin, fileRoot, pr, "autoconfig.example.net", "/mail/config-v1.1.xml?emailaddress=carol@example.net")
	if err != nil || status != http.StatusOK || strings.Contains(issuer, "Pebble") {
		t.Fatalf("the name covered by a file: %d, issuer %q, %v\n%s", status, issuer, err, body)
	}

	// A reload adds example.info: its names are ordered, nothing else.
	added := strings.Replace(acmeYAML(p, pebble, storage, nil, files), "domains: [example.com,", "domains: [example.info, example.com,", 1)
	tu.WriteFile(t, pr.cfg, []byte(added))
	tu.WaitFor(t, 90*time.Second, func() string { return "example.info not issued after the reload" }, func() bool {
		_, _, issuer, err := curl(t, curlBin, root, pr, "autoconfig.example.info", "/mail/config-v1.1.xml")
		return err == nil && strings.Contains(issuer, "Pebble")
	})
	pr.waitMissing(t, 0)
	ordered += 3 // autoconfig., autodiscover. and ua-auto-config.example.info
	pr.stop(t)
	if n := pr.served("tls-alpn-01"); n < ordered {
		t.Errorf("%d TLS-ALPN-01 answers for %d names", n, ordered)
	}
	if regexp.MustCompile(`msg="ordering certificate".* name=autoconfig\.example\.net `).MatchString(pr.log.String()) {
		t.Error("the name covered by a certificate file was ordered")
	}
}

// TestACMERenewal: the binary renews its certificates by itself. Pebble
// issues certificates valid for 40 seconds and `serve --acme-renew-check
// 1s` checks them every second; a client of autoconfig.example.com, which
// connects anew for every request and trusts only Pebble's root, is
// answered 200 over HTTPS (and over HTTP) all along, until the
// certificate it is shown is a newer one from Pebble. A name no client
// asks for is renewed too: the proof that the renewal comes from the
// periodic check that the flag sets, not from a handshake (certmagic also
// renews a certificate it is asked for at a handshake), since with the
// default of 10 minutes no check would run during the test. The renewals
// are logged and counted.
func TestACMERenewal(t *testing.T) {
	bin := buildBinary(t)
	p := freePorts(t)
	const validity = 40 * time.Second
	pebble := tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: p.http, TLSPort: p.https, DNS: fmt.Sprintf("127.0.0.1:%d", p.dns), Validity: validity,
	})
	storage := filepath.Join(t.TempDir(), "acme")
	// The client below asks about 20 times a second.
	const limits = "limits: {rate_per_second: 1000, burst: 1000}\n"
	pr := startProc(t, bin, p, acmeYAML(p, pebble, storage, nil, limits), "--acme-renew-check", "1s")
	pr.waitMissing(t, 0)
	ordered := pebble.Orders()

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pebble.Root(t)) {
		t.Fatal("pebble's root is not PEM")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", p.https))
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true, // a handshake per request: each sees the certificate served now
	}}
	const query = "/mail/config-v1.1.xml?emailaddress=alice@example.com"
	requests := 0
	// served asks over plain HTTP and over HTTPS, fails the test unless
	// both answer 200 with the document, and returns the certificate
	// autoconfig.example.com is served with (verified against Pebble's
	// root and the clock).
	served := func() *x509.Certificate {
		t.Helper()
		requests++
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", p.http, query))
		if err != nil {
			t.Fatalf("HTTP after %d requests: %v", requests, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("imap.example.com")) {
			t.Fatalf("HTTP after %d requests: %s\n%s", requests, resp.Status, body)
		}
		resp, err = client.Get(fmt.Sprintf("https://autoconfig.example.com:%d%s", p.https, query))
		if err != nil {
			t.Fatalf("HTTPS after %d requests: %v", requests, err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("imap.example.com")) {
			t.Fatalf("HTTPS after %d requests: %s\n%s", requests, resp.Status, body)
		}
		return resp.TLS.PeerCertificates[0]
	}

	first := served()
	if life := first.NotAfter.Sub(first.NotBefore); life > validity || !strings.Contains(first.Issuer.CommonName, "Pebble") {
		t.Fatalf("first certificate: issued by %q for %s: not Pebble's short-lived one, the test proves nothing", first.Issuer.CommonName, life)
	}
	var renewed *x509.Certificate
	tu.WaitFor(t, 2*validity, func() string {
		return fmt.Sprintf("autoconfig.example.com is still served serial %s (valid until %s) after %d requests", first.SerialNumber, first.NotAfter, requests)
	}, func() bool {
		renewed = served()
		return renewed.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	// Pebble's times have whole seconds: a renewal within the second of
	// the first issuance has the same ones.
	if renewed.NotBefore.Before(first.NotBefore) || renewed.NotAfter.Before(first.NotAfter) || !strings.Contains(renewed.Issuer.CommonName, "Pebble") {
		t.Errorf("the new certificate (issued by %q, %s to %s) is not a later one than the first (%s to %s)",
			renewed.Issuer.CommonName, renewed.NotBefore, renewed.NotAfter, first.NotBefore, first.NotAfter)
	}
	// The log is written in batches: the line may come a moment after
	// the certificate is served.
	tu.WaitFor(t, 10*time.Second, func() string { return "the renewal of autoconfig.example.com is not logged" }, func() bool {
		served()
		return regexp.MustCompile(`msg="certificate obtained".* name=autoconfig\.example\.com kind=renewal `).MatchString(pr.log.String())
	})

	// autodiscover.example.org: no client asks for it, so only the
	// periodic check can renew it. Clients keep being answered meanwhile.
	tu.WaitFor(t, 2*validity, func() string { return "autodiscover.example.org, which no client asked for, was not renewed" }, func() bool {
		served()
		return regexp.MustCompile(`msg="certificate obtained".* name=autodiscover\.example\.org kind=renewal `).MatchString(pr.log.String())
	})
	if v := pr.metric(t, `mailautoconf_acme_orders_total{kind="renewal",result="success"}`); v < 2 {
		t.Errorf(`orders_total{kind="renewal",result="success"} = %v, want at least 2`, v)
	}
	if v := pr.metric(t, `mailautoconf_acme_orders_total{kind="renewal",result="failure"}`); v != 0 {
		t.Errorf(`orders_total{kind="renewal",result="failure"} = %v`, v)
	}
	if n := pebble.Orders(); n < ordered+2 {
		t.Errorf("pebble took %d orders, %d before the renewals", n, ordered)
	}
	t.Logf("%d requests over HTTP and HTTPS each, all answered 200, while %d certificates were renewed", requests, pebble.Orders()-ordered)
	pr.stop(t)
}

// TestACMETwoProcesses: two processes sharing the storage, started
// together, order each name once and serve the same certificates. The CA
// validates only against the first one's listeners, so the second
// process's orders are proven by the first (challenges are kept in the
// shared storage).
func TestACMETwoProcesses(t *testing.T) {
	bin := buildBinary(t)
	pa, pb := freePorts(t), freePorts(t)
	pebble := tu.StartPebble(t, tu.PebbleOptions{
		HTTPPort: pa.http, TLSPort: pa.https, DNS: fmt.Sprintf("127.0.0.1:%d", pa.dns),
	})
	storage := filepath.Join(t.TempDir(), "acme")
	names := []string{"mail.example.com"}
	yb := acmeYAML(pb, pebble, storage, names, "")
	// Both pre-check through the first process's DNS and plain listener,
	// the one the CA reaches.
	yb = strings.Replace(yb, fmt.Sprintf("precheck_port: %d", pb.http), fmt.Sprintf("precheck_port: %d", pa.http), 1)
	var a, b *proc
	done := make(chan struct{})
	go func() { defer close(done); b = startProc(t, bin, pb, yb) }()
	a = startProc(t, bin, pa, acmeYAML(pa, pebble, storage, names, ""))
	<-done
	if b == nil {
		t.FailNow()
	}
	a.waitMissing(t, 0)
	b.waitMissing(t, 0)
	if n := pebble.Orders(); n != len(acmeListed) {
		t.Errorf("two processes: pebble took %d orders for %d names", n, len(acmeListed))
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pebble.Root(t))
	for _, name := range acmeListed {
		sa, sb := tlsSerial(t, roots, a, name), tlsSerial(t, roots, b, name)
		if sa != sb {
			t.Errorf("%s: the processes serve different certificates (%s, %s)", name, sa, sb)
		}
	}
}

// TestACMEUnreachable: when the CA cannot be reached the service starts
// and keeps serving: plain HTTP, HTTPS with the certificate files, and
// /readyz; the failures are counted.
func TestACMEUnreachable(t *testing.T) {
	curlBin := tu.Tool(t, "curl", "curl")
	bin := buildBinary(t)
	p := freePorts(t)
	dir := t.TempDir()
	ca := tu.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	tu.WriteFile(t, caFile, ca.PEM)
	certFile, keyFile := ca.IssueFiles(t, dir, "file", time.Time{}, "autoconfig.example.com")
	nowhere := &tu.Pebble{Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", tu.FreePort(t)), CAFile: caFile}
	pr := startProc(t, bin, p, acmeYAML(p, nowhere, filepath.Join(dir, "acme"), nil,
		fmt.Sprintf("  certificates: [{cert: %s, key: %s}]\n", certFile, keyFile)))
	tu.WaitFor(t, 30*time.Second, func() string { return "no order failure counted" }, func() bool {
		return pr.metric(t, `mailautoconf_acme_failures_total{stage="order"}`) >= 1
	})
	status, body, _, err := curl(t, curlBin, caFile, pr, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=alice@example.com")
	if err != nil || status != http.StatusOK {
		t.Fatalf("HTTPS with the file while the CA is unreachable: %d %v\n%s", status, err, body)
	}
	// A client without SNI gets the file's certificate, and is no
	// on-demand request for a name.
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.https), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	if leaf := conn.ConnectionState().PeerCertificates[0]; leaf.VerifyHostname("autoconfig.example.com") != nil {
		t.Errorf("without SNI: certificate for %v", leaf.DNSNames)
	}
	conn.Close()
	if v := pr.metric(t, `mailautoconf_acme_on_demand_denied_total{reason="unserved"}`); v > 0 {
		t.Errorf("a handshake without SNI counted as a denied on-demand request: %v", v)
	}
	for _, path := range []string{"/readyz", "/mail/config-v1.1.xml?emailaddress=alice@example.com"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", p.http, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s while the CA is unreachable: %s", path, resp.Status)
		}
	}
	pr.stop(t)
}
