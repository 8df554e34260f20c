package page_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"image"
	_ "image/png"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/net/html"

	"mailautoconf/internal/config"
	"mailautoconf/internal/page"
	"mailautoconf/internal/server"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/testutil"
)

// serverRow is one row of a settings table as a person reads it.
type serverRow struct {
	Protocol, Host, Port, Security, Login string
}

// doc is a parsed page.
type doc struct{ root *html.Node }

func parse(t *testing.T, body []byte) doc {
	t.Helper()
	n, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	return doc{n}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, c string) bool {
	for _, f := range strings.Fields(attr(n, "class")) {
		if f == c {
			return true
		}
	}
	return false
}

// find returns every element below n for which match is true.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func byID(d doc, id string) *html.Node {
	if n := find(d.root, func(n *html.Node) bool { return attr(n, "id") == id }); len(n) > 0 {
		return n[0]
	}
	return nil
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// rows reads every server table of a page.
func (d doc) rows() []serverRow {
	var out []serverRow
	for _, table := range find(d.root, func(n *html.Node) bool { return n.Data == "table" && hasClass(n, "servers") }) {
		for _, tr := range find(table, func(n *html.Node) bool { return n.Data == "tr" }) {
			cell := func(c string) *html.Node {
				if n := find(tr, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, c) }); len(n) > 0 {
					return n[0]
				}
				return nil
			}
			host := cell("host")
			if host == nil {
				continue // header or warning row
			}
			code := find(host, func(n *html.Node) bool { return n.Data == "code" })
			out = append(out, serverRow{
				Protocol: attr(table, "data-protocol"),
				Host:     text(code[0]),
				Port:     text(cell("port")),
				Security: text(cell("security")),
				Login:    text(cell("login")),
			})
		}
	}
	return out
}

// autoconfigRows reads the servers the autoconfig endpoint publishes for an
// address, in the page's terms.
func autoconfigRows(t *testing.T, base, addr string) []serverRow {
	t.Helper()
	r := testutil.Get(t, base+"/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(addr), "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("autoconfig: %d %s", r.StatusCode, r.Body)
	}
	type srv struct {
		Type       string `xml:"type,attr"`
		Hostname   string `xml:"hostname"`
		Port       string `xml:"port"`
		SocketType string `xml:"socketType"`
		Username   string `xml:"username"`
	}
	var cc struct {
		In  []srv `xml:"emailProvider>incomingServer"`
		Out []srv `xml:"emailProvider>outgoingServer"`
	}
	if err := xml.Unmarshal(r.Body, &cc); err != nil {
		t.Fatalf("autoconfig: %v", err)
	}
	label := map[string]string{"SSL": "SSL/TLS", "STARTTLS": "STARTTLS", "plain": "None (unencrypted)"}
	var out []serverRow
	// The page groups IMAP, then POP3, then SMTP, each in configured order.
	for _, typ := range []string{"imap", "pop3", "smtp"} {
		for _, s := range append(cc.In, cc.Out...) {
			if s.Type == typ {
				out = append(out, serverRow{typ, s.Hostname, s.Port, label[s.SocketType], s.Username})
			}
		}
	}
	return out
}

func get(t *testing.T, u string, hdr ...string) testutil.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return testutil.Do(t, req)
}

// TestSettingsMatchAutoconfig checks that the page shows, for every served
// domain, exactly the servers, ports, security and login names the
// autoconfig endpoint publishes for the same address.
func TestSettingsMatchAutoconfig(t *testing.T) {
	cfg := testutil.Demo(t)
	srv := testutil.Start(t, cfg, server.Options{})
	for _, tc := range []struct{ path, addr, login string }{
		{"/settings", "alice@example.com", "alice@example.com"},
		{"/", "bob@example.net", "bob@example.net"},
		{"/settings", "  Carol+tag@EXAMPLE.com ", "Carol+tag@example.com"},
		{"/settings", "jürg@example.com", "jürg@example.com"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			r := get(t, srv.URL+tc.path+"?emailaddress="+url.QueryEscape(tc.addr)+"&lang=en")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			d := parse(t, r.Body)
			got := d.rows()
			want := autoconfigRows(t, srv.URL, tc.addr)
			if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("page rows\n got %v\nwant %v (from autoconfig)", got, want)
			}
			for _, row := range got {
				if row.Login != tc.login {
					t.Errorf("login name %q, want %q", row.Login, tc.login)
				}
			}
			if h1 := text(find(d.root, func(n *html.Node) bool { return n.Data == "h1" })[0]); h1 != "Settings for "+tc.login {
				t.Errorf("h1 %q", h1)
			}
			q := url.Values{"emailaddress": {tc.login}}.Encode()
			if p := byID(d, "profile"); p == nil || attr(p, "href") != "/mobileconfig?"+q {
				t.Errorf("profile link: %v", p)
			}
			if qr := byID(d, "qr"); qr == nil || attr(qr, "src") != "/settings/qr.png?"+q {
				t.Errorf("QR image: %v", qr)
			}
			if docs := byID(d, "docs"); docs == nil || attr(docs, "href") != cfg.Providers[0].Documentation {
				t.Errorf("documentation link: %v", docs)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q: a page naming a mailbox must not be cached", cc)
			}
		})
	}
}

// TestLanguage checks the choice of language: ?lang= first, then
// Accept-Language, then English.
func TestLanguage(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, tc := range []struct {
		name, query, accept, want, h1, submit string
	}{
		{"default", "", "", "en", "Mail settings", "Show settings"},
		{"accept de", "", "de-CH,de;q=0.9,en;q=0.5", "de", "E-Mail-Einstellungen", "Einstellungen anzeigen"},
		{"accept en first", "", "en-GB,de;q=0.8", "en", "Mail settings", "Show settings"},
		{"accept unknown", "", "ja,zh;q=0.5", "en", "Mail settings", "Show settings"},
		{"malformed header", "", ";;;q=x,", "en", "Mail settings", "Show settings"},
		{"lang overrides", "lang=de", "en-US", "de", "E-Mail-Einstellungen", "Einstellungen anzeigen"},
		{"lang region", "lang=de-AT", "", "de", "E-Mail-Einstellungen", "Einstellungen anzeigen"},
		{"lang unknown falls back", "lang=xx-invalid-!!", "de", "de", "E-Mail-Einstellungen", "Einstellungen anzeigen"},
		{"lang en", "lang=en", "de", "en", "Mail settings", "Show settings"},
		{"result de", "lang=de&emailaddress=alice@example.com", "", "de", "Einstellungen für alice@example.com", "Einstellungen anzeigen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, srv.URL+"/?"+tc.query, "Accept-Language", tc.accept)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			d := parse(t, r.Body)
			htm := find(d.root, func(n *html.Node) bool { return n.Data == "html" })[0]
			if got := attr(htm, "lang"); got != tc.want {
				t.Errorf("html lang %q, want %q", got, tc.want)
			}
			if got := r.Header.Get("Content-Language"); got != tc.want {
				t.Errorf("Content-Language %q, want %q", got, tc.want)
			}
			if h1 := text(find(d.root, func(n *html.Node) bool { return n.Data == "h1" })[0]); h1 != tc.h1 {
				t.Errorf("h1 %q, want %q", h1, tc.h1)
			}
			if b := text(find(d.root, func(n *html.Node) bool { return n.Data == "button" })[0]); b != tc.submit {
				t.Errorf("button %q, want %q", b, tc.submit)
			}
			// An explicit choice is kept when the form is sent.
			hidden := find(d.root, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == "lang" })
			if explicit := strings.Contains(tc.query, "lang=") && tc.name != "lang unknown falls back"; explicit != (len(hidden) == 1) {
				t.Errorf("hidden lang input: %d, explicit %v", len(hidden), explicit)
			}
			// Every language links to every other, keeping the address.
			links := find(d.root, func(n *html.Node) bool { return n.Data == "a" && attr(n, "hreflang") != "" })
			if len(links) != 1 {
				t.Fatalf("%d language links, want 1 (the other language)", len(links))
			}
			u, err := url.Parse(attr(links[0], "href"))
			if err != nil || u.Query().Get("lang") == tc.want || u.Query().Get("lang") == "" {
				t.Errorf("language link %q", attr(links[0], "href"))
			}
			if strings.Contains(tc.query, "emailaddress") && u.Query().Get("emailaddress") != "alice@example.com" {
				t.Errorf("language link %q loses the address", attr(links[0], "href"))
			}
		})
	}
}

// TestProblems checks unknown domains, invalid and hostile input: a clear
// message with the right status, the input shown back escaped, never
// another domain's settings.
func TestProblems(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, tc := range []struct {
		name, input string
		code        int
		message     string
	}{
		{"unknown domain", "bob@unknown.org", http.StatusNotFound, "We do not publish mail settings for this address."},
		{"unknown subdomain", "bob@mail.example.com", http.StatusNotFound, "We do not publish mail settings for this address."},
		{"hostile unknown", "a&b{x}@evil.example.org", http.StatusNotFound, "We do not publish mail settings for this address."},
		{"script", `<script>alert(1)</script>@example.com`, http.StatusBadRequest, "This is not a valid email address."},
		{"attribute break", `"><img src=x onerror=alert(1)>@example.com`, http.StatusBadRequest, "This is not a valid email address."},
		{"header injection", "alice@example.com\r\nSet-Cookie: x=1", http.StatusBadRequest, "This is not a valid email address."},
		{"no at", "alice", http.StatusBadRequest, "This is not a valid email address."},
		{"too long", strings.Repeat("a", 300) + "@example.com", http.StatusBadRequest, "This is not a valid email address."},
		{"empty", "   ", http.StatusBadRequest, "Please enter your email address."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, srv.URL+"/settings?lang=en&emailaddress="+url.QueryEscape(tc.input))
			if r.StatusCode != tc.code {
				t.Errorf("status %d, want %d", r.StatusCode, tc.code)
			}
			if r.Header.Get("Set-Cookie") != "" {
				t.Errorf("a header was injected")
			}
			d := parse(t, r.Body)
			p := byID(d, "problem")
			if p == nil {
				t.Fatalf("no problem message in\n%s", r.Body)
			}
			if msg := text(p); !strings.HasPrefix(msg, tc.message) {
				t.Errorf("message %q, want %q", msg, tc.message)
			}
			if rows := d.rows(); len(rows) != 0 {
				t.Errorf("settings shown for a bad address: %v", rows)
			}
			if byID(d, "profile") != nil || byID(d, "qr") != nil {
				t.Errorf("profile link shown for a bad address")
			}
			// The input comes back, as text and in the form field,
			// unchanged for the reader and inert for the browser.
			input := byID(d, "emailaddress")
			if strings.TrimSpace(tc.input) != "" {
				// HTML parsers turn CR LF into LF (as browsers do).
				if got := attr(input, "value"); got != strings.ReplaceAll(tc.input, "\r\n", "\n") {
					t.Errorf("form value %q, want %q", got, tc.input)
				}
				shown := find(p, func(n *html.Node) bool { return n.Data == "code" })
				if len(shown) != 1 || text(shown[0]) != strings.Join(strings.Fields(tc.input), " ") {
					t.Errorf("input shown as %v", shown)
				}
			}
			if n := find(d.root, func(n *html.Node) bool { return n.Data == "script" || (n.Data == "img" && attr(n, "onerror") != "") }); len(n) != 0 {
				t.Errorf("input became markup: %v", n)
			}
			for _, raw := range []string{"<script>", "<img src=x", `"><`} {
				if strings.Contains(tc.input, raw) && bytes.Contains(r.Body, []byte(raw)) {
					t.Errorf("raw %q in the page", raw)
				}
			}
		})
	}
}

// TestHostBranding checks that a bare visit shows the provider the host
// name belongs to, and a neutral page elsewhere.
func TestHostBranding(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, tc := range []struct{ host, title string }{
		{"autoconfig.example.com", "Example Mail: mail settings"},
		{"example.net", "Example Mail: mail settings"},
		{"www.example.com:8080", "Example Mail: mail settings"},
		{"elsewhere.org", "Mail settings"},
		{"127.0.0.1", "Mail settings"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+"/", tc.host)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			d := parse(t, r.Body)
			if got := text(find(d.root, func(n *html.Node) bool { return n.Data == "title" })[0]); got != tc.title {
				t.Errorf("title %q, want %q", got, tc.title)
			}
		})
	}
}

// TestProviderOptions checks the logo, the documentation link and servers
// with security "plain", which the page shows exactly when autoconfig
// publishes them.
func TestProviderOptions(t *testing.T) {
	const yaml = `
providers:
  - id: mail.example.org
    display_name: "Beispiel & Co"
    domains: [example.org]
    logo_url: https://static.example.org/logo.svg
    publish_plain: %v
    servers:
      - {type: imap, host: imap.example.org, port: 143, security: plain}
      - {type: imap, host: imap.example.org, port: 993, security: tls, username: "%%EMAILLOCALPART%%"}
      - {type: smtp, host: smtp.example.org, port: 587, security: starttls, authentication: [password-encrypted]}
`
	for _, publish := range []bool{false, true} {
		t.Run(fmt.Sprint("publish_plain=", publish), func(t *testing.T) {
			cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(yaml, publish)))
			if err != nil {
				t.Fatal(err)
			}
			srv := testutil.Start(t, cfg, server.Options{})
			r := get(t, srv.URL+"/settings?emailaddress=dora@example.org&lang=en")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.StatusCode)
			}
			d := parse(t, r.Body)
			got, want := d.rows(), autoconfigRows(t, srv.URL, "dora@example.org")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rows\n got %v\nwant %v", got, want)
			}
			if wantN := map[bool]int{false: 2, true: 3}[publish]; len(got) != wantN {
				t.Errorf("%d rows, want %d", len(got), wantN)
			}
			warn := find(d.root, func(n *html.Node) bool { return n.Data == "tr" && hasClass(n, "warning") })
			if (len(warn) == 1) != publish {
				t.Errorf("%d plain warnings", len(warn))
			}
			if got[len(got)-2].Login != "dora" {
				t.Errorf("per-server login template: %q", got[len(got)-2].Login)
			}
			pw := find(d.root, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, "password") })
			if last := text(pw[len(pw)-1]); !strings.Contains(last, "CRAM-MD5") {
				t.Errorf("SMTP password hint %q", last)
			}
			logo := find(d.root, func(n *html.Node) bool { return n.Data == "img" && hasClass(n, "logo") })
			if len(logo) != 1 || attr(logo[0], "src") != "https://static.example.org/logo.svg" {
				t.Errorf("logo %v", logo)
			}
			if !strings.Contains(r.Header.Get("Content-Security-Policy"), "img-src 'self' https://static.example.org") {
				t.Errorf("CSP %q does not allow the logo", r.Header.Get("Content-Security-Policy"))
			}
			if name := text(find(d.root, func(n *html.Node) bool { return hasClass(n, "name") })[0]); name != "Beispiel & Co" {
				t.Errorf("provider name %q", name)
			}
			if byID(d, "docs") != nil {
				t.Errorf("documentation link without documentation_url")
			}
		})
	}
}

// TestQRCode decodes the QR code and checks that it holds the absolute
// profile URL, under the name and scheme the client used when that name is
// this service's, and under autoconfig.<domain> and the listener's port
// when the Host header says anything else: a QR code is a link people
// follow without reading it.
func TestQRCode(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	port := srv.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndexByte(port, ':')+1:]
	alice := "/mobileconfig?emailaddress=alice%40example.com"
	ours := "http://autoconfig.example.com:" + port + alice
	for _, tc := range []struct{ name, host, addr, want string }{
		{"loopback", "", "alice@example.com", srv.URL + alice},
		{"named host", "autoconfig.example.com:" + port, "Bob+x@Example.NET", "http://autoconfig.example.com:" + port + "/mobileconfig?emailaddress=Bob%2Bx%40example.net"},
		{"unicode", "autodiscover.example.net:" + port, "jürg@example.com", "http://autodiscover.example.net:" + port + "/mobileconfig?emailaddress=j%C3%BCrg%40example.com"},
		{"upper case", "AUTOCONFIG.Example.Com:" + port, "alice@example.com", ours},
		// Hostile Host headers: nothing of them goes into the code.
		{"port not a number", "autoconfig.example.com:x!$", "alice@example.com", ours},
		{"port out of range", "autoconfig.example.com:99999", "alice@example.com", ours},
		{"another port", "autoconfig.example.com:1", "alice@example.com", ours},
		{"foreign name", "evil.example:" + port, "alice@example.com", ours},
		{"foreign name, no port", "evil.example", "alice@example.com", "http://autoconfig.example.com" + alice},
		{"look-alike", "autoconfig.example.com.evil.example:" + port, "alice@example.com", ours},
		{"served domain, not the service's name", "example.com:" + port, "alice@example.com", ours},
		{"foreign address", "203.0.113.9:" + port, "alice@example.com", ours},
		{"our address, another port", "127.0.0.1:1", "alice@example.com", "http://127.0.0.1:" + port + alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+page.QRPath+"?emailaddress="+url.QueryEscape(tc.addr), tc.host)
			if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("status %d, Content-Type %q: %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			if got := decodeQR(t, r.Body); got != tc.want {
				t.Errorf("QR code holds %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, query string
		code        int
	}{
		{"unknown domain", "emailaddress=bob@unknown.org", http.StatusNotFound},
		{"invalid", "emailaddress=%3Cx%3E@example.com", http.StatusBadRequest},
		{"missing", "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+page.QRPath+"?"+tc.query, "")
			if r.StatusCode != tc.code || r.Header.Get("Content-Type") == "image/png" {
				t.Errorf("status %d, Content-Type %q", r.StatusCode, r.Header.Get("Content-Type"))
			}
		})
	}
}

// TestQRCodeBehindProxy checks the QR code's link behind a TLS-terminating
// proxy: the proxy's X-Forwarded-Host and X-Forwarded-Proto count when it is
// trusted, and are ignored from anyone else.
func TestQRCodeBehindProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		fwdHost string // X-Forwarded-Host; "" = autoconfig.example.com
		want    string // "" = the loopback URL the test connects to
	}{
		{"trusted", []string{"127.0.0.0/8"}, "", "https://autoconfig.example.com/mobileconfig?emailaddress=alice%40example.com"},
		{"trusted, public port", []string{"127.0.0.0/8"}, "autodiscover.example.com:8443", "https://autodiscover.example.com:8443/mobileconfig?emailaddress=alice%40example.com"},
		// A trusted proxy passes on what the client wrote: a foreign
		// name or a bad port goes no further than into its headers.
		{"trusted, foreign name", []string{"127.0.0.0/8"}, "evil.example:8443", "https://autoconfig.example.com:8443/mobileconfig?emailaddress=alice%40example.com"},
		{"trusted, bad port", []string{"127.0.0.0/8"}, "autoconfig.example.com:x!$", "https://autoconfig.example.com/mobileconfig?emailaddress=alice%40example.com"},
		{"untrusted", []string{"192.0.2.0/24"}, "", ""},
		{"none", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testutil.Demo(t)
			cfg.TrustedProxies = tc.trusted
			srv := testutil.Start(t, cfg, server.Options{})
			want := tc.want
			if want == "" {
				want = srv.URL + "/mobileconfig?emailaddress=alice%40example.com"
			}
			req, err := http.NewRequest(http.MethodGet, srv.URL+page.QRPath+"?emailaddress=alice@example.com", nil)
			if err != nil {
				t.Fatal(err)
			}
			fwd := tc.fwdHost
			if fwd == "" {
				fwd = "autoconfig.example.com"
			}
			req.Header.Set("X-Forwarded-Host", fwd)
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			r := testutil.Do(t, req)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			if got := decodeQR(t, r.Body); got != want {
				t.Errorf("QR code holds %q, want %q", got, want)
			}
		})
	}
}

func decodeQR(t *testing.T, png []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// A generated code is a clean image: the pure-barcode mode reads it
	// from its module grid directly, where the camera-oriented finder
	// pattern search fails for a few URLs (the port varies per run).
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		res, err = gzqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	}
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText()
}

// TestPublicURL checks the one function that builds absolute links: only
// names and ports of this service go into it, whatever the Host header
// says.
func TestPublicURL(t *testing.T) {
	cat := settings.New(testutil.Demo(t))
	const want8080 = "http://autoconfig.example.com:8080/mobileconfig?a=b"
	for _, tc := range []struct {
		host  string
		local string // the listener's address the connection came in on
		tls   bool
		proto string // X-Forwarded-Proto, as left by the proxy middleware (trusted proxies only)
		want  string
	}{
		{"autoconfig.example.com:8080", "127.0.0.1:8080", false, "", want8080},
		{"AutoConfig.Example.COM.:8080", "127.0.0.1:8080", false, "", want8080},
		{"autodiscover.example.net", "127.0.0.1:80", false, "", "http://autodiscover.example.net/mobileconfig?a=b"},
		{"autoconfig.xn--bcher-kva.example:8443", "[::1]:8443", true, "", "https://autoconfig.example.com:8443/mobileconfig?a=b"},
		{"autoconfig.example.com:8443", "192.0.2.1:8443", true, "", "https://autoconfig.example.com:8443/mobileconfig?a=b"},
		{"autoconfig.example.com:443", "192.0.2.1:443", true, "", "https://autoconfig.example.com/mobileconfig?a=b"},
		{"127.0.0.1:8080", "127.0.0.1:8080", false, "", "http://127.0.0.1:8080/mobileconfig?a=b"},
		{"[::1]:8080", "[::1]:8080", false, "", "http://[::1]:8080/mobileconfig?a=b"},
		{"[2001:db8::1]", "[2001:db8::1]:443", true, "", "https://[2001:db8::1]/mobileconfig?a=b"},
		// Behind a trusted proxy: its scheme and port count.
		{"autoconfig.example.com", "10.0.0.2:8080", false, "HTTPS, http", "https://autoconfig.example.com/mobileconfig?a=b"},
		{"autoconfig.example.com:8443", "10.0.0.2:8080", false, "https", "https://autoconfig.example.com:8443/mobileconfig?a=b"},
		{"autoconfig.example.com", "10.0.0.2:8080", false, "gopher", "http://autoconfig.example.com/mobileconfig?a=b"},
		{"evil.example:8443", "10.0.0.2:8080", false, "https", "https://autoconfig.example.com:8443/mobileconfig?a=b"},
		{"autoconfig.example.com:x!$", "10.0.0.2:8080", false, "https", "https://autoconfig.example.com/mobileconfig?a=b"},
		{"autoconfig.example.com:08443", "10.0.0.2:8080", false, "https", "https://autoconfig.example.com:8443/mobileconfig?a=b"},
		{"autoconfig.example.com:65536", "10.0.0.2:8080", false, "https", "https://autoconfig.example.com/mobileconfig?a=b"},
		// Anything else: autoconfig.<domain> on the listener's port.
		{"autoconfig.example.com:x!$", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:99999", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:0", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:+8080", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:08080", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:9090", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com:", "127.0.0.1:8080", false, "", want8080},
		{"evil.example:8080", "127.0.0.1:8080", false, "", want8080},
		{"evil.example", "127.0.0.1:8080", false, "", "http://autoconfig.example.com/mobileconfig?a=b"},
		{"autoconfig.evil.example:8080", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.example.com.evil.example:8080", "127.0.0.1:8080", false, "", want8080},
		{"example.com:8080", "127.0.0.1:8080", false, "", want8080},
		{"mail.example.com:8080", "127.0.0.1:8080", false, "", want8080},
		{"autoconfig.unknown.org:8080", "127.0.0.1:8080", false, "", want8080},
		{"203.0.113.9:8080", "127.0.0.1:8080", false, "", want8080},
		{"[2001:db8::66]:8080", "127.0.0.1:8080", false, "", want8080},
		{"", "127.0.0.1:8080", false, "", want8080},
		{"exa mple.com:8080", "127.0.0.1:8080", false, "", want8080},
		{"evil.com/x?:8080", "127.0.0.1:8080", false, "", want8080},
		{"user@evil.com:8080", "127.0.0.1:8080", false, "", want8080},
		{"evil.example", "192.0.2.1:443", true, "", "https://autoconfig.example.com/mobileconfig?a=b"},
		{"evil.example", "", false, "", "http://autoconfig.example.com/mobileconfig?a=b"},
	} {
		t.Run(tc.host+" "+tc.local+" "+tc.proto, func(t *testing.T) {
			r := &http.Request{Host: tc.host, URL: &url.URL{}, Header: http.Header{}}
			if tc.local != "" {
				ap := netip.MustParseAddrPort(tc.local)
				r = r.WithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(ap)))
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
				r.Header.Set("X-Forwarded-For", "198.51.100.7")
			}
			if got := page.PublicURL(r, cat, "example.com", "/mobileconfig", "a=b"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAssetsAndHead checks the stylesheet, HEAD requests and the headers
// that keep the page safe.
func TestAssetsAndHead(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	r := testutil.Get(t, srv.URL+"/", "")
	d := parse(t, r.Body)
	links := find(d.root, func(n *html.Node) bool { return n.Data == "link" && attr(n, "rel") == "stylesheet" })
	if len(links) != 1 {
		t.Fatalf("%d stylesheets", len(links))
	}
	css := testutil.Get(t, srv.URL+attr(links[0], "href"), "")
	if css.StatusCode != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !bytes.Contains(css.Body, []byte("table.servers")) {
		t.Errorf("stylesheet: %d %q", css.StatusCode, css.Header.Get("Content-Type"))
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	} {
		if !strings.Contains(r.Header.Get(k), want) {
			t.Errorf("%s: %q", k, r.Header.Get(k))
		}
	}
	if n := find(d.root, func(n *html.Node) bool { return n.Data == "script" }); len(n) != 0 {
		t.Errorf("the page has scripts")
	}
	for _, p := range []string{"/", "/settings?emailaddress=alice@example.com", "/settings?emailaddress=x@unknown.org"} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+p, nil)
		h := testutil.Do(t, req)
		g := testutil.Get(t, srv.URL+p, "")
		if h.StatusCode != g.StatusCode || len(h.Body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes, GET %d", p, h.StatusCode, len(h.Body), g.StatusCode)
		}
	}
	// Numbers in the table are the configured ports, not formatted.
	r = testutil.Get(t, srv.URL+"/settings?emailaddress=alice@example.com", "")
	for _, row := range parse(t, r.Body).rows() {
		if _, err := strconv.Atoi(row.Port); err != nil {
			t.Errorf("port %q", row.Port)
		}
	}
}
