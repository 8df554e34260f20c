package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	tu "mailautoconf/internal/testutil"
)

// acmeBenchYAML is a service with tls.acme (Pebble) and a certificate
// file for files.example.com beside it.
const acmeBenchYAML = `
dns:
  service_addresses: [127.0.0.1]
tls:
  acme:
    directory: %s
    ca_roots: [%s]
    storage: %s
    orders_per_hour: 36000
    precheck_port: %d
    resolver: "127.0.0.1:%d"
  certificates: [{cert: %s, key: %s}]
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`

// acmeBench is a running service with its managed certificates issued by
// a real Pebble, and the roots to verify both kinds of certificate.
type acmeBench struct {
	srv   *tu.Running
	roots *x509.CertPool
}

func startACMEBench(b *testing.B) *acmeBench {
	b.Helper()
	httpPort, httpsPort, dnsPort := tu.FreePort(b), tu.FreePort(b), tu.FreePort(b)
	pebble := tu.StartPebble(b, tu.PebbleOptions{HTTPPort: httpPort, TLSPort: httpsPort, DNS: fmt.Sprintf("127.0.0.1:%d", dnsPort)})
	dir := b.TempDir()
	ca := tu.NewCA(b)
	certFile, keyFile := ca.IssueFiles(b, dir, "files", time.Time{}, "files.example.com")
	yaml := fmt.Sprintf(acmeBenchYAML, pebble.Directory, pebble.CAFile, filepath.Join(dir, "acme"), httpPort, dnsPort, certFile, keyFile)
	cfg, err := config.Parse(filepath.Join(dir, "bench.yaml"), []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	srv := tu.Start(b, cfg, server.Options{
		HTTPAddr:  fmt.Sprintf("127.0.0.1:%d", httpPort),
		HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", httpsPort),
		DNSAddr:   fmt.Sprintf("127.0.0.1:%d", dnsPort),
	})
	roots := ca.Pool()
	roots.AppendCertsFromPEM(pebble.Root(b))
	ab := &acmeBench{srv: srv, roots: roots}
	tu.WaitFor(b, 60*time.Second, func() string { return "autoconfig.example.com not issued" }, func() bool {
		return ab.handshake("autoconfig.example.com") == nil
	})
	return ab
}

// handshake makes one full TLS handshake (no session resumption) for
// name and verifies the certificate.
func (ab *acmeBench) handshake(name string) error {
	conn, err := tls.Dial("tcp", ab.srv.HTTPSAddr().String(), &tls.Config{
		ServerName: name, RootCAs: ab.roots, ClientSessionCache: nil, NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		return err
	}
	return conn.Close()
}

// BenchmarkHTTPSHandshake: new TLS handshakes, without resumption, on the
// real HTTPS listener of a service with tls.acme and a certificate file:
// one for the managed certificate of autoconfig.example.com (issued by a
// real Pebble, ECDSA P-256), one for the file's (files.example.com, ECDSA
// P-256), alternately on the same listener, so that the only difference
// is how the certificate is chosen. managed/file is the ratio of the
// handshake rates (target ≥ 0.85).
func BenchmarkHTTPSHandshake(b *testing.B) {
	ab := startACMEBench(b)
	var file, managed time.Duration
	for b.Loop() {
		for _, c := range []struct {
			name string
			d    *time.Duration
		}{{"files.example.com", &file}, {"autoconfig.example.com", &managed}} {
			start := time.Now()
			if err := ab.handshake(c.name); err != nil {
				b.Fatal(err)
			}
			*c.d += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(file.Nanoseconds())/n, "file-ns/handshake")
	b.ReportMetric(float64(managed.Nanoseconds())/n, "managed-ns/handshake")
	b.ReportMetric(float64(file)/float64(managed), "managed/file")
}

// BenchmarkPlainWithACME: autoconfig over plain HTTP (keep-alive) from a
// service with tls.acme running (its certificates issued, the challenge
// path checked first) and from the same service without tls.acme,
// alternately; with/without is the ratio of the request rates (target
// ≥ 0.9).
func BenchmarkPlainWithACME(b *testing.B) {
	ab := startACMEBench(b)
	cfg, err := config.Parse("plain.yaml", []byte(`
providers:
  - id: mail.example.com
    domains: [example.com]
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
`))
	if err != nil {
		b.Fatal(err)
	}
	without := tu.Start(b, cfg, server.Options{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(url string) {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // the status is checked
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", url, resp.Status)
		}
	}
	const path = "/mail/config-v1.1.xml?emailaddress=alice@example.com"
	var with, plain time.Duration
	for b.Loop() {
		start := time.Now()
		get(ab.srv.URL + path)
		with += time.Since(start)
		start = time.Now()
		get(without.URL + path)
		plain += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(with.Nanoseconds())/n, "with-ns/req")
	b.ReportMetric(float64(plain.Nanoseconds())/n, "without-ns/req")
	b.ReportMetric(float64(plain)/float64(with), "with/without")
}
