package probe_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/probe"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// ownServer starts the real service with HTTP, HTTPS (certificates from a
// test CA) and DNS on loopback, and returns probe options that send the
// probe there instead of to the real hosts.
func ownServer(t *testing.T) (srv *testutil.Running, opts probe.Options, caFile string) {
	t.Helper()
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	caFile = filepath.Join(dir, "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	cert, key := ca.IssueFiles(t, dir, "web", time.Time{},
		"autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com", "example.com",
		"autoconfig.example.net", "autodiscover.example.net", "ua-auto-config.example.net", "example.net")
	demo, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "internal", "config", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The TLS certificate also signs the Apple profiles, as the
	// configuration reference suggests.
	yaml := fmt.Sprintf("tls:\n  certificates:\n    - {cert: %s, key: %s}\nsigning:\n  certificate: %s\n  key: %s\n", cert, key, cert, key) + string(demo)
	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, []byte(yaml))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	srv = testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0"})
	opts = probe.Options{
		Resolver: srv.DNSAddr().String(),
		ConnectTo: map[string]string{
			":80":  srv.Addr().String(),
			":443": srv.HTTPSAddr().String(),
		},
		RootCAs: ca.Pool(),
		Timeout: 5 * time.Second,
	}
	return srv, opts, caFile
}

// TestOwnServer probes the real service: every client must get the same
// implicit-TLS servers over https, with valid certificates, and what the
// probe fetched must pass the independent validators.
func TestOwnServer(t *testing.T) {
	_, opts, caFile := ownServer(t)
	for _, addr := range []string{"alice@example.com", "Bob@EXAMPLE.NET"} {
		t.Run(addr, func(t *testing.T) {
			rep, err := probe.Run(context.Background(), addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			dump := func() string {
				var b bytes.Buffer
				probe.WriteText(&b, rep, false)
				return b.String()
			}
			if !rep.OK {
				t.Fatalf("probe of our own server is not OK:\n%s", dump())
			}
			if !strings.Contains(dump(), "; certificate issued by mailautoconf test CA, expires ") {
				t.Errorf("the text output does not show the issuer and expiry of the HTTPS answers:\n%s", dump())
			}
			for _, f := range rep.Findings {
				if f.Severity != probe.SevInfo {
					t.Errorf("finding on our own server: %+v", f)
				}
			}
			domain := rep.Domain
			if want := addr[:strings.Index(addr, "@")] + "@" + strings.ToLower(addr[strings.Index(addr, "@")+1:]); rep.Address != want {
				t.Errorf("address %q, want %q", rep.Address, want)
			}
			for _, client := range probe.Clients {
				v := rep.View(client)
				in, out := v.Incoming, v.Outgoing
				if in == nil || out == nil {
					t.Fatalf("%s: incomplete view %+v\n%s", client, v, dump())
				}
				if got, want := in.String(), "imap imap.example.com:993 tls"; got != want {
					t.Errorf("%s incoming %s, want %s", client, got, want)
				}
				if got, want := out.String(), "smtp smtp.example.com:465 tls"; got != want {
					t.Errorf("%s outgoing %s, want %s", client, got, want)
				}
				if client != probe.SRVClients && !strings.HasPrefix(v.Source, "https://") {
					t.Errorf("%s configured from %q, want https", client, v.Source)
				}
			}
			if v := rep.View(probe.Thunderbird); v.Incoming.Username != rep.Address {
				t.Errorf("Thunderbird login %q", v.Incoming.Username)
			}
			// The POX over plain HTTP redirects to our HTTPS port,
			// which the probe followed.
			var redirect, validated int
			for _, c := range rep.Checks {
				if c.Kind == "http" && strings.HasPrefix(c.Target, "POST http://autodiscover.") {
					if c.HTTPStatus != 302 || !strings.HasPrefix(c.Location, "https://autodiscover."+domain+":") {
						t.Errorf("POX over http: %d %q", c.HTTPStatus, c.Location)
					}
					redirect++
				}
				if strings.HasPrefix(c.Target, "GET https://") || strings.HasPrefix(c.Target, "POST https://") {
					if c.Status == probe.StatusOK && (c.Certificate == nil || !c.Certificate.Valid) {
						t.Errorf("%s: certificate %+v", c.Target, c.Certificate)
					}
				}
				if c.Status != probe.StatusOK || c.HTTPStatus != 200 {
					continue
				}
				switch {
				case strings.Contains(c.Target, "/mail/config-v1.1.xml"):
					testutil.Validate(t, "autoconfig.py", c.Body, "config-v1.1.xml", "--android", "--content-type", c.ContentType)
					validated++
				case strings.HasPrefix(c.Target, "POST ") && strings.Contains(c.Target, "autodiscover.xml"):
					testutil.Validate(t, "autodiscover.py", c.Body, "autodiscover.xml")
					validated++
				case strings.Contains(c.Target, "/mobileconfig"):
					if !strings.Contains(c.Detail, "signed by CN=autoconfig.example.com") || !strings.HasSuffix(c.Detail, ", verified") {
						t.Errorf("profile signature: %s", c.Detail)
					}
					testutil.Validate(t, "mobileconfig.py", c.Body, "mail.mobileconfig", "--content-type", c.ContentType, "--for-address", rep.Address, "--ca", caFile)
					validated++
				}
			}
			if redirect != 1 {
				t.Errorf("%d POX-over-http checks, want 1", redirect)
			}
			if validated < 5 {
				t.Errorf("only %d answers validated:\n%s", validated, dump())
			}
		})
	}
}

// TestOwnServerUnknownDomain: a domain we do not serve gets nothing from
// any source, and the probe says so for every client without failing.
func TestOwnServerUnknownDomain(t *testing.T) {
	_, opts, _ := ownServer(t)
	rep, err := probe.Run(context.Background(), "carol@unknown.test", opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("an unknown domain was judged OK")
	}
	for _, client := range probe.Clients {
		if !rep.Has(probe.CodeNoConfig, client) {
			t.Errorf("no %s finding for %s: %+v", probe.CodeNoConfig, client, rep.Findings)
		}
	}
}

// TestBadInput: an invalid address or option is a clear error, before any
// query is sent.
func TestBadInput(t *testing.T) {
	for _, c := range []struct {
		addr string
		opts probe.Options
		want string
	}{
		{"not-an-address", probe.Options{Resolver: "127.0.0.1:1"}, "invalid email address"},
		{"a@b\r\n.test", probe.Options{Resolver: "127.0.0.1:1"}, "invalid email address"},
		{"a@example.com", probe.Options{Resolver: "127.0.0.1:1", ConnectTo: map[string]string{"nohost": "127.0.0.1:1"}}, "connect-to"},
		{"a@example.com", probe.Options{Resolver: "127.0.0.1:1", ConnectTo: map[string]string{":443": "noport"}}, "connect-to"},
		{"a@example.com", probe.Options{Resolver: "::1:x:53"}, "resolver"},
	} {
		_, err := probe.Run(context.Background(), c.addr, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%q, %+v) = %v, want an error with %q", c.addr, c.opts, err, c.want)
		}
	}
}

// TestDeadResolver: a resolver that does not answer costs one timeout, and
// every client is reported without configuration.
func TestDeadResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	start := time.Now()
	rep, err := probe.Run(context.Background(), "a@example.com", probe.Options{Resolver: pc.LocalAddr().String(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a silent resolver took %v", d)
	}
	if rep.OK || !rep.Has(probe.CodeNoConfig, probe.SRVClients) {
		t.Errorf("findings %+v", rep.Findings)
	}
}
