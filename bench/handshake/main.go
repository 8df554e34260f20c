// Command handshake measures new TLS connections per second against an
// HTTPS server: each connection makes a full handshake (no session cache,
// so no resumption; a resumed one is counted as an error), sends one GET
// with "Connection: close" and reads the answer to the end. bench/run
// drives it against mailautoconf and against bench/baseline's HTTPS
// listener with the same certificate.
//
//	handshake -c 64 -d 10s -name autoconfig.example.com https://127.0.0.1:8443/path
//
// It prints "connections/s p99-ms" on one line; any failed handshake,
// resumed session or non-200 answer makes it exit 1. Go's client is used
// rather than wrk because whether wrk resumes sessions depends on how it
// drives OpenSSL; here it is explicit (tls.Config.ClientSessionCache nil).
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	conns := flag.Int("c", 64, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	name := flag.String("name", "", "server name sent in SNI and Host (default: the URL's host)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: handshake [-c N] [-d DURATION] [-name HOST] https://HOST:PORT/PATH")
		os.Exit(2)
	}
	u, err := url.Parse(flag.Arg(0))
	if err != nil || u.Scheme != "https" {
		fmt.Fprintln(os.Stderr, "handshake: want an https URL")
		os.Exit(2)
	}
	host := *name
	if host == "" {
		host = u.Hostname()
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
	cfg := &tls.Config{
		ServerName: host,
		// The certificate is a throw-away one; the handshake still
		// checks the server's signature over it (CertificateVerify).
		InsecureSkipVerify: true, //nolint:gosec // load generator against a test certificate
		NextProtos:         []string{"http/1.1"},
	}
	deadline := time.Now().Add(*dur)
	var (
		mu    sync.Mutex
		lats  []time.Duration
		first error
		wg    sync.WaitGroup
	)
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var err error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err = once(u.Host, cfg, req); err != nil {
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		fmt.Fprintln(os.Stderr, "handshake:", first)
		os.Exit(1)
	}
	if len(lats) == 0 {
		fmt.Fprintln(os.Stderr, "handshake: no connection completed")
		os.Exit(1)
	}
	slices.Sort(lats)
	p99 := lats[(len(lats)*99)/100]
	fmt.Printf("%d %.3f\n", int(float64(len(lats))/elapsed.Seconds()), float64(p99)/float64(time.Millisecond))
}

// once makes one connection: a full handshake, one request, the whole
// answer.
func once(addr string, cfg *tls.Config, req []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if c.ConnectionState().DidResume {
		return errors.New("the session was resumed")
	}
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("writing the request: %w", err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(status))
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}
