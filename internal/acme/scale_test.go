package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"mailautoconf/internal/config"
)

// scaleNames is how many managed certificates BenchmarkStorage10k puts in
// storage: a hoster with 5,000 domains.
const scaleNames = 10_000

// writeStorage writes a certificate for each name into the storage the
// way certmagic keeps what it obtained from the issuer: chain, key and
// metadata under certificates/<issuer>/<name>/. The certificates are
// ECDSA P-256, signed by one test CA, valid for 60 days.
func writeStorage(b *testing.B, st certmagic.Storage, issuerKey string, names []string) *x509.CertPool {
	b.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Scale Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ctx := context.Background()
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		tpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i) + 2), DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(60 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, key.Public(), caKey)
		if err != nil {
			b.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			b.Fatal(err)
		}
		chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
		meta, _ := json.Marshal(map[string]any{"sans": []string{name}})
		for _, f := range []struct {
			key  string
			data []byte
		}{
			{certmagic.StorageKeys.SiteCert(issuerKey, name), chain},
			{certmagic.StorageKeys.SitePrivateKey(issuerKey, name), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
			{certmagic.StorageKeys.SiteMeta(issuerKey, name), meta},
		} {
			if err := st.Store(ctx, f.key, f.data); err != nil {
				b.Fatal(err)
			}
		}
	}
	return pool
}

// BenchmarkStorage10k: a start with 10,000 managed certificates in
// storage. load-s is the time from New until every listed certificate is
// in memory (in the background: the service answers from the first
// moment), heap-MB the heap they keep, cold-handshake-ms a full TLS
// handshake for a name that is served but not listed (a name under a
// "*.parent" domain) whose certificate is in storage and not yet in
// memory: loaded at the handshake, not ordered. Targets: start < 5 s,
// RSS < 256 MB, cold handshake < 20 ms. No CA is contacted.
func BenchmarkStorage10k(b *testing.B) {
	dir := b.TempDir()
	cfg := &config.ACME{Directory: "https://127.0.0.1:1/dir", Storage: filepath.Join(dir, "acme"), OrdersPerHour: 60}
	off := false
	cfg.Precheck = &off
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	probe, err := New(cfg, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	issuerKey := probe.issuer.IssuerKey()
	probe.Close()
	names := make([]string, scaleNames)
	for i := range names {
		names[i] = fmt.Sprintf("autoconfig.d%05d.example", i)
	}
	const cold = "autoconfig.cold.kunden.example"
	pool := writeStorage(b, &certmagic.FileStorage{Path: cfg.Storage}, issuerKey, append(names, cold))

	var load, handshake time.Duration
	var heap float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		m, err := New(cfg, Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		m.Update(Names{Listed: names, Served: func(h string) bool { return h == cold }})
		for m.summary(time.Now()).missing > 0 {
			time.Sleep(200 * time.Millisecond) // summary walks every name: not too often
		}
		load += time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap += float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				tc := tls.Server(c, &tls.Config{GetCertificate: m.GetCertificate})
				go func() { tc.Handshake(); tc.Close() }() //nolint:errcheck // the client checks
			}
		}()
		start = time.Now()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: cold, RootCAs: pool})
		if err != nil {
			b.Fatalf("cold handshake: %v", err)
		}
		handshake += time.Since(start)
		conn.Close()
		ln.Close()
		m.Close()
	}
	n := float64(b.N)
	b.ReportMetric(load.Seconds()/n, "load-s")
	b.ReportMetric(heap/n, "heap-MB")
	b.ReportMetric(float64(handshake.Microseconds())/1000/n, "cold-handshake-ms")
}
