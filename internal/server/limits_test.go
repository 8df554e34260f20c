package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// dialFrom opens a TCP connection to addr from a loopback source address
// (all of 127.0.0.0/8 is local on Linux), wrapped in TLS when tlsConf is
// set.
func dialFrom(src, addr string, tlsConf *tls.Config) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil || tlsConf == nil {
		return c, err
	}
	tc := tls.Client(c, tlsConf)
	tc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// keepAlive sends one request on c and reads the answer, leaving c an idle
// keep-alive connection. It reports whether a 200 came back.
func keepAlive(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: autoconfig.example.com\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// flood opens up to n connections from src, each made an idle keep-alive
// connection, and keeps those the server kept. It returns them and the
// number the server refused.
func flood(t *testing.T, src, addr string, n int, tlsConf *tls.Config) (held []net.Conn, refused int) {
	t.Helper()
	for range n {
		c, err := dialFrom(src, addr, tlsConf)
		if err != nil {
			refused++
			continue
		}
		if !keepAlive(c) {
			c.Close()
			refused++
			continue
		}
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	return held, refused
}

// probeFrom times n requests from src, each on a new connection.
func probeFrom(t *testing.T, src, url string, n int, tlsConf *tls.Config) []time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   tlsConf,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return d.DialContext(ctx, network, addr)
		},
	}}
	var ds []time.Duration
	for range n {
		start := time.Now()
		resp, err := client.Get(url + "/mail/config-v1.1.xml?emailaddress=alice@example.com")
		if err != nil {
			t.Fatalf("request from %s while another address holds its maximum: %v", src, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request from %s: status %d", src, resp.StatusCode)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds
}

// TestConnectionsPerClient: one address that opens as many idle keep-alive
// connections as a listener takes keeps only its own share; another
// address is answered at once, on HTTP with the default limits and on
// HTTPS with small ones. (Before the per-client cap, 4096 idle connections
// from one address locked every other client out until the idle timeout.)
func TestConnectionsPerClient(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "autoconfig", time.Time{}, "autoconfig.example.com")
	cfgFor := func(limits string) *config.Config {
		return writeConfig(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf("tls:\n  certificates: [{cert: %s, key: %s}]\n%s", cert, key, limits)+providerYAML)
	}
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "autoconfig.example.com"}
	for _, c := range []struct {
		name      string
		limits    string
		perClient int
		https     bool
	}{
		{"http, default limits", "", config.DefaultMaxConnectionsPerClient, false},
		{"https", "limits: {max_connections: 64, max_connections_per_client: 8}\n", 8, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfgFor(c.limits)
			srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0"})
			addr, url, tc := srv.Addr().String(), srv.URL, (*tls.Config)(nil)
			if c.https {
				addr, url, tc = srv.HTTPSAddr().String(), "https://"+srv.HTTPSAddr().String(), tlsConf
			}
			start := time.Now()
			held, refused := flood(t, "127.0.0.2", addr, cfg.Limits.WithDefaults().MaxConnections, tc)
			took := time.Since(start)
			if len(held) != c.perClient {
				t.Errorf("127.0.0.2 holds %d connections, want its cap %d", len(held), c.perClient)
			}
			// The held connections are still served.
			if !keepAlive(held[0]) || !keepAlive(held[len(held)-1]) {
				t.Error("a held keep-alive connection is no longer served")
			}
			ds := probeFrom(t, "127.0.0.3", url, 20, tc)
			t.Logf("127.0.0.2 tried %d connections in %v: %d held idle, %d refused; 20 requests from 127.0.0.3: min %v, median %v, max %v",
				cfg.Limits.MaxConnections, took.Round(time.Millisecond), len(held), refused,
				ds[0].Round(10*time.Microsecond), ds[len(ds)/2].Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
			if med := ds[len(ds)/2]; med > 100*time.Millisecond {
				t.Errorf("127.0.0.3 answered in %v (median), want under 100 ms", med)
			}
		})
	}
}

// TestTrustedProxyConnections: a trusted proxy carries every client behind
// it, so its connections are not held to one client's share.
func TestTrustedProxyConnections(t *testing.T) {
	cfg := testutil.Demo(t)
	cfg.TrustedProxies = []string{"127.0.0.2"}
	cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerClient = 32, 4
	srv := testutil.Start(t, cfg, server.Options{})
	if held, _ := flood(t, "127.0.0.2", srv.Addr().String(), 12, nil); len(held) != 12 {
		t.Errorf("the trusted proxy holds %d connections, want all 12", len(held))
	}
	if held, _ := flood(t, "127.0.0.3", srv.Addr().String(), 12, nil); len(held) != 4 {
		t.Errorf("127.0.0.3 holds %d connections, want its cap 4", len(held))
	}
}

// TestRateLimitKeys: IPv4 clients are counted per address (the TCP peer),
// IPv6 clients per /64 (here through a trusted proxy's X-Forwarded-For,
// as loopback has one IPv6 address only): rotating through a /64 does not
// buy a new budget, another /64 has its own, and ipv6_prefix: 128 counts
// every address. A 429 closes its connection.
func TestRateLimitKeys(t *testing.T) {
	statuses := func(srv *testutil.Running, src string, xff ...string) []int {
		t.Helper()
		var out []int
		for _, x := range xff {
			c, err := dialFrom(src, srv.Addr().String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req := "GET /mail/config-v1.1.xml?emailaddress=a@example.com HTTP/1.1\r\nHost: autoconfig.example.com\r\n"
			if x != "" {
				req += "X-Forwarded-For: " + x + "\r\n"
			}
			io.WriteString(c, req+"\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				if !resp.Close || resp.Header.Get("Retry-After") == "" { // resp.Close: "Connection: close"
					t.Errorf("429 headers: %v", resp.Header)
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("the connection stays open after a 429 (read: %v)", err)
				}
			}
			c.Close()
			out = append(out, resp.StatusCode)
		}
		return out
	}
	start := func(prefix int) *testutil.Running {
		cfg := testutil.Demo(t)
		cfg.TrustedProxies = []string{"127.0.0.9"}
		cfg.Limits.RatePerSecond, cfg.Limits.Burst = 0.01, 3
		if prefix != 0 {
			cfg.Limits.IPv6Prefix = prefix
		}
		return testutil.Start(t, cfg, server.Options{})
	}
	want := func(what string, got []int, want ...int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: statuses %v, want %v", what, got, want)
		}
	}

	srv := start(0)
	want("IPv4 127.0.0.2, by its peer address", statuses(srv, "127.0.0.2", "", "", "", ""), 200, 200, 200, 429)
	want("IPv4 127.0.0.3, another address of the same /24", statuses(srv, "127.0.0.3", "", ""), 200, 200)
	var sameNet []string
	for i := range 5 {
		sameNet = append(sameNet, fmt.Sprintf("2001:db8:1:2:%x::%x", i*0x1111, i+1))
	}
	want("IPv6, five addresses of one /64", statuses(srv, "127.0.0.9", sameNet...), 200, 200, 200, 429, 429)
	want("IPv6, another /64", statuses(srv, "127.0.0.9", "2001:db8:1:3::1"), 200)
	want("IPv4-mapped IPv6 is the IPv4 address", statuses(srv, "127.0.0.9", "192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1"), 200, 200, 200, 429)

	per := start(128)
	want("ipv6_prefix 128: every address on its own", statuses(per, "127.0.0.9", sameNet...), 200, 200, 200, 200, 200)
}
