package mobileconfig_test

import (
	"bytes"
	"crypto/x509"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
	"mailautoconf/mobileconfig"
)

// profile is a decoded profile: the top-level dictionary and its one mail
// payload.
type profile struct {
	top  map[string]any
	mail map[string]any
}

func decode(t *testing.T, body []byte) profile {
	t.Helper()
	var top map[string]any
	format, err := plist.Unmarshal(body, &top)
	if err != nil {
		t.Fatalf("not a property list: %v\n%s", err, body)
	}
	if format != plist.XMLFormat {
		t.Errorf("property list format %d, want XML", format)
	}
	content, ok := top["PayloadContent"].([]any)
	if !ok || len(content) != 1 {
		t.Fatalf("PayloadContent = %#v", top["PayloadContent"])
	}
	mail, ok := content[0].(map[string]any)
	if !ok {
		t.Fatalf("payload = %#v", content[0])
	}
	return profile{top, mail}
}

// fetch gets path?query from the server and checks the status.
func fetch(t *testing.T, srv *testutil.Running, path string, q url.Values, status int) testutil.Response {
	t.Helper()
	r := testutil.Get(t, srv.URL+path+"?"+q.Encode(), "")
	if r.StatusCode != status {
		t.Fatalf("GET %s?%s: status %d, want %d: %s", path, q.Encode(), r.StatusCode, status, r.Body)
	}
	return r
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// fileName returns the filename parameter of Content-Disposition, failing
// the test when the header is not exactly one attachment with a filename.
func fileName(t *testing.T, r testutil.Response) string {
	t.Helper()
	h := r.Header.Values("Content-Disposition")
	if len(h) != 1 {
		t.Fatalf("Content-Disposition headers: %q", h)
	}
	typ, params, err := mime.ParseMediaType(h[0])
	if err != nil || typ != "attachment" || len(params) != 1 {
		t.Fatalf("Content-Disposition %q: %v %v %v", h[0], typ, params, err)
	}
	return params["filename"]
}

func TestDemoProfiles(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	type want struct {
		accountType, inHost string
		inPort              uint64
	}
	protocols := map[string]want{
		"":     {"EmailTypeIMAP", "imap.example.com", 993}, // the demo's first incoming server
		"imap": {"EmailTypeIMAP", "imap.example.com", 993},
		"pop3": {"EmailTypePOP", "pop.example.com", 995},
	}
	for _, addr := range []string{"alice@example.com", "bob.smith@example.net", "c+tag@example.com"} {
		for proto, w := range protocols {
			for _, path := range []string{"/mobileconfig", "/email.mobileconfig"} {
				t.Run(addr+path+"/"+proto, func(t *testing.T) {
					q := query("emailaddress", addr, "name", "Alice Example")
					if proto != "" {
						q.Set("protocol", proto)
					}
					r := fetch(t, srv, path, q, http.StatusOK)
					ct := r.Header.Get("Content-Type")
					if ct != mobileconfig.ContentType {
						t.Errorf("Content-Type %q", ct)
					}
					if fn := fileName(t, r); fn != addr+".mobileconfig" {
						t.Errorf("file name %q", fn)
					}
					p := decode(t, r.Body)
					checks := map[string]any{
						"EmailAccountType":                       w.accountType,
						"EmailAddress":                           addr,
						"EmailAccountName":                       "Alice Example",
						"IncomingMailServerHostName":             w.inHost,
						"IncomingMailServerPortNumber":           w.inPort,
						"IncomingMailServerUseSSL":               true,
						"IncomingMailServerUsername":             addr,
						"IncomingMailServerAuthentication":       "EmailAuthPassword",
						"OutgoingMailServerHostName":             "smtp.example.com",
						"OutgoingMailServerPortNumber":           uint64(465),
						"OutgoingMailServerUseSSL":               true,
						"OutgoingMailServerUsername":             addr,
						"OutgoingMailServerAuthentication":       "EmailAuthPassword",
						"OutgoingPasswordSameAsIncomingPassword": true,
						"PayloadType":                            "com.apple.mail.managed",
						"PayloadVersion":                         uint64(1),
					}
					for k, v := range checks {
						if got := p.mail[k]; got != v {
							t.Errorf("%s = %#v, want %#v", k, got, v)
						}
					}
					for k, v := range map[string]any{
						"PayloadType":         "Configuration",
						"PayloadVersion":      uint64(1),
						"PayloadIdentifier":   "com.example.mail." + addr,
						"PayloadOrganization": "Example Mail",
					} {
						if got := p.top[k]; got != v {
							t.Errorf("top-level %s = %#v, want %#v", k, got, v)
						}
					}
					for _, k := range []string{"PayloadDisplayName", "PayloadDescription"} {
						if s, _ := p.top[k].(string); !strings.Contains(s, addr) {
							t.Errorf("top-level %s = %q does not name the address", k, s)
						}
					}
					for _, k := range []string{"IncomingPassword", "OutgoingPassword"} {
						if _, ok := p.mail[k]; ok {
							t.Errorf("profile holds %s", k)
						}
					}
					testutil.Validate(t, "mobileconfig.py", r.Body, "profile.mobileconfig",
						"--strict", "--content-type", ct, "--for-address", addr)
				})
			}
		}
	}
}

// TestProtocolChoice: the default is the first incoming server type; the
// implicit-TLS server is preferred over an earlier STARTTLS one; plain
// servers only with publish_plain; login-name templates are expanded.
func TestProtocolChoice(t *testing.T) {
	yaml := `
providers:
  - id: mx.pop.test
    display_name: Pop & Co <Mail>
    domains: [pop.test]
    username: "%EMAILLOCALPART%"
    servers:
      - {type: pop3, host: pop.pop.test, port: 110, security: starttls}
      - {type: pop3, host: pops.pop.test, port: 995, security: tls}
      - {type: imap, host: imap.pop.test, port: 143, security: plain}
      - {type: smtp, host: smtp.pop.test, port: 587, security: starttls, username: "%EMAILLOCALPART%@%EMAILDOMAIN%", authentication: [OAuth2, password-encrypted]}
    oauth2: {issuer: pop.test, scope: mail, auth_url: "https://pop.test/auth", token_url: "https://pop.test/token"}
`
	cfg, err := config.Parse("pop.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})

	r := fetch(t, srv, "/mobileconfig", query("emailaddress", "Dora@POP.test"), http.StatusOK)
	p := decode(t, r.Body)
	for k, v := range map[string]any{
		"EmailAccountType":                 "EmailTypePOP",
		"EmailAddress":                     "Dora@pop.test",
		"IncomingMailServerHostName":       "pops.pop.test",
		"IncomingMailServerPortNumber":     uint64(995),
		"IncomingMailServerUsername":       "Dora",
		"OutgoingMailServerHostName":       "smtp.pop.test",
		"OutgoingMailServerPortNumber":     uint64(587),
		"OutgoingMailServerUseSSL":         true, // STARTTLS is TLS for Apple
		"OutgoingMailServerUsername":       "Dora@pop.test",
		"OutgoingMailServerAuthentication": "EmailAuthCRAMMD5",
	} {
		if got := p.mail[k]; got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if _, ok := p.mail["EmailAccountName"]; ok {
		t.Error("EmailAccountName present without a name")
	}
	if got := p.top["PayloadOrganization"]; got != "Pop & Co <Mail>" {
		t.Errorf("PayloadOrganization %q", got)
	}
	testutil.Validate(t, "mobileconfig.py", r.Body, "p.mobileconfig", "--strict", "--for-address", "Dora@pop.test")

	// The only IMAP server is plain and publish_plain is off.
	r = fetch(t, srv, "/mobileconfig", query("emailaddress", "dora@pop.test", "protocol", "imap"), http.StatusNotFound)
	if !strings.Contains(string(r.Body), "no server of this protocol") {
		t.Errorf("body %q", r.Body)
	}

	cfg.Providers[0].PublishPlain = true
	if err := srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r = fetch(t, srv, "/mobileconfig", query("emailaddress", "dora@pop.test", "protocol", "IMAP"), http.StatusOK)
	p = decode(t, r.Body)
	if p.mail["IncomingMailServerUseSSL"] != false || p.mail["IncomingMailServerPortNumber"] != uint64(143) {
		t.Errorf("plain IMAP: %#v", p.mail)
	}
	testutil.Validate(t, "mobileconfig.py", r.Body, "p.mobileconfig", "--for-address", "dora@pop.test")
}

// TestUUIDs: the same address gets the same identifiers every time (the
// device then replaces the account), different addresses different ones.
func TestUUIDs(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	ids := func(addr, proto string) [3]string {
		r := fetch(t, srv, "/mobileconfig", query("emailaddress", addr, "protocol", proto), http.StatusOK)
		p := decode(t, r.Body)
		return [3]string{p.top["PayloadUUID"].(string), p.mail["PayloadUUID"].(string), p.top["PayloadIdentifier"].(string)}
	}
	first := ids("alice@example.com", "imap")
	if first[0] == first[1] {
		t.Errorf("profile and payload share UUID %s", first[0])
	}
	for _, same := range []struct{ addr, proto string }{
		{"alice@example.com", "imap"},
		{"alice@example.com", "pop3"}, // switching protocol replaces the account
		{"ALICE@Example.COM", "imap"},
	} {
		if got := ids(same.addr, same.proto); got != first {
			t.Errorf("%s %s: %v, want %v", same.addr, same.proto, got, first)
		}
	}
	seen := map[string]string{}
	for _, addr := range []string{"alice@example.com", "alice@example.net", "bob@example.com", "alice_2f@example.com", "alice/@example.com"} {
		for _, id := range ids(addr, "imap") {
			if prev, dup := seen[id]; dup {
				t.Errorf("%s and %s share %s", prev, addr, id)
			}
			seen[id] = addr
		}
	}
}

// TestHostileInput: nothing a client sends reaches the header or the
// property list unescaped.
func TestHostileInput(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	// Refused addresses.
	for _, addr := range []string{
		`"; filename=x.sh"@example.com`,
		`alice@example.com"; filename=x.sh`,
		"alice\r\nSet-Cookie: x=1@example.com",
		"alice@example.com\r\nX: y",
		`<alice@example.com>`,
	} {
		r := fetch(t, srv, "/mobileconfig", query("emailaddress", addr), http.StatusBadRequest)
		if r.Header.Get("Content-Disposition") != "" || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("%q: headers %v", addr, r.Header)
		}
	}
	// Accepted addresses with characters special somewhere.
	for _, c := range []struct{ addr, file string }{
		{"a&b@example.com", "a_b@example.com.mobileconfig"},
		{"x/.y/etc@example.com", "x_.y_etc@example.com.mobileconfig"},
		{"%x@example.com", "_x@example.com.mobileconfig"},
		{"jörg@example.com", "j_rg@example.com.mobileconfig"},
	} {
		r := fetch(t, srv, "/mobileconfig", query("emailaddress", c.addr), http.StatusOK)
		if fn := fileName(t, r); fn != c.file {
			t.Errorf("%q: file name %q, want %q", c.addr, fn, c.file)
		}
		p := decode(t, r.Body)
		if p.mail["EmailAddress"] != c.addr {
			t.Errorf("EmailAddress %q, want %q", p.mail["EmailAddress"], c.addr)
		}
		// The validator's [policy] address pattern is ASCII-only; an
		// internationalised local part is checked by decoding above.
		if c.addr != "jörg@example.com" {
			testutil.Validate(t, "mobileconfig.py", r.Body, "h.mobileconfig", "--for-address", c.addr)
		}
	}
	// Names are data, never markup.
	for _, name := range []string{
		`</string><key>IncomingPassword</key><string>x`,
		`"; filename=x.sh`,
		`Ann & <Bob> 'O'Brien' "Q"`,
		"\uE0000\uE001 marker look-alike",
	} {
		r := fetch(t, srv, "/mobileconfig", query("emailaddress", "alice@example.com", "name", name), http.StatusOK)
		p := decode(t, r.Body)
		if p.mail["EmailAccountName"] != name {
			t.Errorf("EmailAccountName %q, want %q", p.mail["EmailAccountName"], name)
		}
		if _, ok := p.mail["IncomingPassword"]; ok {
			t.Errorf("name %q injected a key", name)
		}
		if fn := fileName(t, r); fn != "alice@example.com.mobileconfig" {
			t.Errorf("name %q changed the file name to %q", name, fn)
		}
		testutil.Validate(t, "mobileconfig.py", r.Body, "n.mobileconfig", "--strict", "--for-address", "alice@example.com")
	}
}

func TestErrors(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	cases := []struct {
		name   string
		q      url.Values
		status int
		body   string
	}{
		{"unknown domain", query("emailaddress", "bob@unknown.org"), 404, "no mail settings"},
		{"no address", query("name", "Bob"), 400, "missing emailaddress"},
		{"no at", query("emailaddress", "example.com"), 400, "no @"},
		{"quote", query("emailaddress", `"a"@example.com`), 400, "invalid email address"},
		{"CRLF", query("emailaddress", "a\r\nb@example.com"), 400, "control character"},
		{"protocol smtp", query("emailaddress", "a@example.com", "protocol", "smtp"), 400, "imap or pop3"},
		{"protocol junk", query("emailaddress", "a@example.com", "protocol", "<x>"), 400, "imap or pop3"},
		{"name CRLF", query("emailaddress", "a@example.com", "name", "A\r\nB"), 400, "control character"},
		{"name NUL", query("emailaddress", "a@example.com", "name", "A\x00B"), 400, "control character"},
		{"name bad UTF-8", query("emailaddress", "a@example.com", "name", "A\xffB"), 400, "UTF-8"},
		{"name too long", query("emailaddress", "a@example.com", "name", strings.Repeat("n", 201)), 400, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fetch(t, srv, "/mobileconfig", c.q, c.status)
			if !strings.Contains(string(r.Body), c.body) {
				t.Errorf("body %q does not mention %q", r.Body, c.body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
			if bytes.Contains(r.Body, []byte("example.com")) || bytes.Contains(r.Body, []byte("imap.")) {
				t.Errorf("error answer leaks settings or input: %q", r.Body)
			}
		})
	}
	// HEAD answers like GET, without a body.
	req, err := http.NewRequest(http.MethodHead, srv.URL+"/mobileconfig?emailaddress=a@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := testutil.Do(t, req); r.StatusCode != 200 || len(r.Body) != 0 || r.Header.Get("Content-Type") != mobileconfig.ContentType {
		t.Errorf("HEAD: %d %q %q", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
	}
}

// openssl runs openssl and fails the test when it fails.
func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(testutil.Tool(t, "openssl", "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestSigned: with a signing section, every profile is a CMS SignedData
// that the validator and openssl accept against the test's root CA, with
// the signer and the intermediate included, and the unsigned profile as
// content.
func TestSigned(t *testing.T) {
	for _, keyType := range []struct {
		name string
		rsa  bool
	}{{"ecdsa", false}, {"rsa", true}} {
		t.Run(keyType.name, func(t *testing.T) {
			dir := t.TempDir()
			pk := newPKI(t, keyType.rsa)
			pk.write(t, dir)
			root := filepath.Join(dir, "root.pem")
			srv := testutil.Start(t, mustSigningConfig(t, dir, relativeSigning), server.Options{})
			plain := testutil.Start(t, testutil.Demo(t), server.Options{})
			for _, addr := range []string{"alice@example.com", "bob@example.net"} {
				for _, proto := range []string{"imap", "pop3"} {
					q := query("emailaddress", addr, "protocol", proto, "name", "Bob & Alice")
					r := fetch(t, srv, "/mobileconfig", q, http.StatusOK)
					if ct := r.Header.Get("Content-Type"); ct != mobileconfig.ContentType {
						t.Errorf("Content-Type %q", ct)
					}
					out := testutil.Validate(t, "mobileconfig.py", r.Body, "signed.mobileconfig",
						"--strict", "--ca", root, "--content-type", r.Header.Get("Content-Type"), "--for-address", addr)
					if out != "" && !strings.Contains(out, "signature verified") { // "": validator not run
						t.Errorf("validator did not verify a signature:\n%s", out)
					}

					f := writeFile(t, t.TempDir(), "p.mobileconfig", r.Body)
					content := filepath.Join(t.TempDir(), "content.plist")
					openssl(t, "cms", "-verify", "-inform", "DER", "-binary", "-in", f,
						"-CAfile", root, "-purpose", "any", "-out", content)
					got, err := os.ReadFile(content)
					if err != nil {
						t.Fatal(err)
					}
					want := fetch(t, plain, "/mobileconfig", q, http.StatusOK).Body
					if !bytes.Equal(got, want) {
						t.Errorf("signed content differs from the unsigned profile:\n%s\n---\n%s", got, want)
					}

					p7, err := pkcs7.Parse(r.Body)
					if err != nil {
						t.Fatal(err)
					}
					if len(p7.Certificates) != 2 || !p7.Certificates[0].Equal(pk.leaf.cert) || !p7.Certificates[1].Equal(pk.inter.cert) {
						t.Errorf("certificates in the profile: %d", len(p7.Certificates))
					}
				}
			}
			// Without the intermediate openssl cannot build the chain:
			// proves the chain in the profile is what makes it verify.
			f := writeFile(t, t.TempDir(), "p.mobileconfig",
				fetch(t, srv, "/mobileconfig", query("emailaddress", "alice@example.com"), http.StatusOK).Body)
			other := newCert(t, certOpts{cn: "Other Root", ca: true}, nil)
			otherRoot := writeFile(t, t.TempDir(), "other.pem", certPEM(other))
			if out, err := exec.Command(testutil.Tool(t, "openssl", "openssl"), "cms", "-verify", "-inform", "DER", "-binary", "-in", f,
				"-CAfile", otherRoot, "-purpose", "any", "-out", os.DevNull).CombinedOutput(); err == nil {
				t.Errorf("profile verifies against an unrelated root:\n%s", out)
			}
		})
	}
}

// TestSigningFullChainFile: a certificate file that carries its chain (as
// ACME clients write it) works without a chain file.
func TestSigningFullChainFile(t *testing.T) {
	dir := t.TempDir()
	pk := newPKI(t, false)
	pk.write(t, dir)
	writeFile(t, dir, "fullchain.pem", certPEM(pk.leaf, pk.inter))
	srv := testutil.Start(t, mustSigningConfig(t, dir, "  certificate: fullchain.pem\n  key: signer.key\n"), server.Options{})
	r := fetch(t, srv, "/mobileconfig", query("emailaddress", "alice@example.com"), http.StatusOK)
	testutil.Validate(t, "mobileconfig.py", r.Body, "s.mobileconfig", "--ca", filepath.Join(dir, "root.pem"))
}

// TestSigningReload: a reload re-reads the signing files; a broken
// certificate keeps the old state.
func TestSigningReload(t *testing.T) {
	dir := t.TempDir()
	first := newPKI(t, false)
	first.write(t, dir)
	cfg := mustSigningConfig(t, dir, relativeSigning)
	srv := testutil.Start(t, cfg, server.Options{})
	signer := func() *pkcs7.PKCS7 {
		t.Helper()
		r := fetch(t, srv, "/mobileconfig", query("emailaddress", "alice@example.com"), http.StatusOK)
		p7, err := pkcs7.Parse(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := p7.Verify(); err != nil {
			t.Fatalf("signature: %v", err)
		}
		return p7
	}
	if !signer().Certificates[0].Equal(first.leaf.cert) {
		t.Fatal("not signed by the configured certificate")
	}

	second := newPKI(t, false)
	second.write(t, dir)
	if err := srv.Reload(mustSigningConfig(t, dir, relativeSigning)); err != nil {
		t.Fatal(err)
	}
	if !signer().Certificates[0].Equal(second.leaf.cert) {
		t.Error("reload did not pick up the renewed certificate")
	}

	// A key that does not match: the reload fails, the old signer stays.
	writeFile(t, dir, "signer.key", keyPEM(t, first.leaf))
	err := srv.Reload(mustSigningConfig(t, dir, relativeSigning))
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("reload with a mismatched key: %v", err)
	}
	if !signer().Certificates[0].Equal(second.leaf.cert) {
		t.Error("failed reload replaced the signer")
	}
}

// TestSigningErrors: every broken signing setup is refused at start with an
// error that names the problem.
func TestSigningErrors(t *testing.T) {
	type setup struct {
		name    string
		prepare func(t *testing.T, dir string, pk *pki) string // returns the signing section
		want    string
	}
	cases := []setup{
		{"key does not match", func(t *testing.T, dir string, pk *pki) string {
			writeFile(t, dir, "signer.key", keyPEM(t, pk.inter))
			return relativeSigning
		}, "does not match"},
		{"expired", func(t *testing.T, dir string, pk *pki) string {
			old := newCert(t, certOpts{cn: "mail.example.com", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, pk.inter)
			writeFile(t, dir, "signer.pem", certPEM(old))
			writeFile(t, dir, "signer.key", keyPEM(t, old))
			return relativeSigning
		}, "expired on"},
		{"not yet valid", func(t *testing.T, dir string, pk *pki) string {
			future := newCert(t, certOpts{cn: "mail.example.com", notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(48 * time.Hour)}, pk.inter)
			writeFile(t, dir, "signer.pem", certPEM(future))
			writeFile(t, dir, "signer.key", keyPEM(t, future))
			return relativeSigning
		}, "not valid before"},
		{"expired intermediate", func(t *testing.T, dir string, pk *pki) string {
			old := newCert(t, certOpts{cn: "Old CA", ca: true, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, pk.root)
			writeFile(t, dir, "chain.pem", certPEM(pk.inter, old))
			return relativeSigning
		}, "expired on"},
		{"chain without the issuer", func(t *testing.T, dir string, pk *pki) string {
			writeFile(t, dir, "chain.pem", certPEM(pk.root))
			return relativeSigning
		}, "does not contain the issuer"},
		{"no signature key usage", func(t *testing.T, dir string, pk *pki) string {
			c := newCert(t, certOpts{cn: "mail.example.com", keyUsage: x509.KeyUsageKeyEncipherment}, pk.inter)
			writeFile(t, dir, "signer.pem", certPEM(c))
			writeFile(t, dir, "signer.key", keyPEM(t, c))
			return relativeSigning
		}, "key usage"},
		{"garbage certificate", func(t *testing.T, dir string, pk *pki) string {
			writeFile(t, dir, "signer.pem", []byte("not a certificate\n"))
			return relativeSigning
		}, "signer.pem"},
		{"chain file without certificates", func(t *testing.T, dir string, pk *pki) string {
			writeFile(t, dir, "chain.pem", keyPEM(t, pk.leaf))
			return relativeSigning
		}, "no PEM CERTIFICATE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pk := newPKI(t, false)
			pk.write(t, dir)
			cfg := mustSigningConfig(t, dir, c.prepare(t, dir, pk))
			_, err := server.NewState(cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "signing") {
				t.Errorf("error %v, want one mentioning signing and %q", err, c.want)
			}
		})
	}
}

// TestSigningConfig: the configuration check finds missing files and
// half-filled sections, with file and line.
func TestSigningConfig(t *testing.T) {
	dir := t.TempDir()
	newPKI(t, false).write(t, dir)
	cases := []struct{ signing, want string }{
		{"  certificate: signer.pem\n", "signing.key: required"},
		{"  key: signer.key\n", "signing.certificate: required"},
		{"  certificate: missing.pem\n  key: signer.key\n", "signing.certificate: cannot be read"},
		{"  certificate: signer.pem\n  key: signer.key\n  chain: " + dir + "\n", "signing.chain: " + dir + " is a directory"},
	}
	for _, c := range cases {
		_, err := signingConfig(t, dir, c.signing)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "config.yaml:") {
			t.Errorf("%q: error %v, want %q", c.signing, err, c.want)
		}
	}
	cfg := mustSigningConfig(t, dir, relativeSigning)
	if cfg.SigningFiles().Key != filepath.Join(dir, "signer.key") {
		t.Errorf("relative key path resolved to %q", cfg.SigningFiles().Key)
	}
}
