package autodiscover_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"mailautoconf/autodiscover"
	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// requestBody is what Outlook sends.
func requestBody(addr, schema string) string {
	return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + addr + `</EMailAddress>
    <AcceptableResponseSchema>` + schema + `</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
}

func post(t *testing.T, url, host string, body io.Reader, header ...string) testutil.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if host != "" {
		req.Host = host
	}
	return testutil.Do(t, req)
}

// parse checks the envelope of a POX answer and returns its Response.
func parse(t *testing.T, r testutil.Response, ns string) *etree.Element {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.StatusCode, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(r.Body); err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, r.Body)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Autodiscover" || root.NamespaceURI() != autodiscover.NSResponse {
		t.Fatalf("root is not {%s}Autodiscover:\n%s", autodiscover.NSResponse, r.Body)
	}
	resp := root.SelectElement("Response")
	if resp == nil || len(root.ChildElements()) != 1 {
		t.Fatalf("want exactly one Response:\n%s", r.Body)
	}
	if resp.NamespaceURI() != ns {
		t.Fatalf("Response namespace %q, want %q:\n%s", resp.NamespaceURI(), ns, r.Body)
	}
	return resp
}

// children lists an element's children as "Tag=text".
func children(e *etree.Element) []string {
	var out []string
	for _, c := range e.ChildElements() {
		out = append(out, c.Tag+"="+strings.TrimSpace(c.Text()))
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// demoProtocols is the demo configuration as an Outlook client must see it.
func demoProtocols(login string) [][]string {
	p := func(typ, host, port, ssl, enc string, smtp bool) []string {
		l := []string{"Type=" + typ, "Server=" + host, "Port=" + port, "LoginName=" + login,
			"DomainRequired=off", "SPA=off", "SSL=" + ssl, "Encryption=" + enc, "AuthRequired=on"}
		if smtp {
			l = append(l, "UsePOPAuth=on")
		}
		return l
	}
	return [][]string{
		p("IMAP", "imap.example.com", "993", "on", "SSL", false),
		p("IMAP", "imap.example.com", "143", "on", "TLS", false),
		p("POP3", "pop.example.com", "995", "on", "SSL", false),
		p("POP3", "pop.example.com", "110", "on", "TLS", false),
		p("SMTP", "smtp.example.com", "465", "on", "SSL", true),
		p("SMTP", "smtp.example.com", "587", "on", "TLS", true),
	}
}

func checkSettings(t *testing.T, resp *etree.Element, addr string, want [][]string) {
	t.Helper()
	equal(t, "User", children(resp.SelectElement("User")), []string{"AutoDiscoverSMTPAddress=" + addr})
	acc := resp.SelectElement("Account")
	if acc == nil {
		t.Fatal("no Account")
	}
	var head []string
	var protos [][]string
	for _, c := range acc.ChildElements() {
		if c.Tag == "Protocol" {
			protos = append(protos, children(c))
		} else {
			head = append(head, c.Tag+"="+c.Text())
		}
	}
	equal(t, "Account", head, []string{"AccountType=email", "Action=settings"})
	if len(protos) != len(want) {
		t.Fatalf("%d Protocol elements, want %d: %q", len(protos), len(want), protos)
	}
	for i := range want {
		equal(t, fmt.Sprintf("Protocol[%d]", i), protos[i], want[i])
	}
}

// validate runs the independent validator, plain and with exchangelib.
func validate(t *testing.T, body []byte) {
	t.Helper()
	testutil.Validate(t, "autodiscover.py", body, "autodiscover.xml")
	testutil.Validate(t, "autodiscover.py", body, "autodiscover.xml", "--exchangelib")
}

// TestDemoSettings: every demo domain, every path casing seen in the wild,
// on the autodiscover host and on the domain itself.
func TestDemoSettings(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	paths := []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/AutoDiscover/AutoDiscover.xml", "/AUTODISCOVER/AUTODISCOVER.XML"}
	for _, domain := range []string{"example.com", "example.net"} {
		for i, path := range paths {
			for _, host := range []string{"autodiscover." + domain, domain} {
				addr := "alice@" + domain
				t.Run(domain+path+"@"+host, func(t *testing.T) {
					r := post(t, srv.URL+path, host, strings.NewReader(requestBody(addr, autodiscover.NSOutlook)))
					resp := parse(t, r, autodiscover.NSOutlook)
					checkSettings(t, resp, addr, demoProtocols(addr))
					if i == 0 {
						validate(t, r.Body)
					}
				})
			}
		}
	}
}

// TestNormalisedAddress: the login name is the normalised address.
func TestNormalisedAddress(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	cases := []struct{ sent, want string }{
		{"  Bob.Smith@EXAMPLE.NET ", "Bob.Smith@example.net"},
		{"bob+tag@example.com", "bob+tag@example.com"},
		{"a&amp;b@example.com", "a&b@example.com"}, // escaped in the request, escaped again in the answer
		{"carol@example.com.", "carol@example.com"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			r := post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody(c.sent, autodiscover.NSOutlook)))
			checkSettings(t, parse(t, r, autodiscover.NSOutlook), c.want, demoProtocols(c.want))
			validate(t, r.Body)
		})
	}
}

// TestRequestVariants: what real clients send besides the textbook request.
func TestRequestVariants(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	const addr = "alice@example.com"
	cases := map[string]string{
		"textbook":         requestBody(addr, autodiscover.NSOutlook),
		"no namespace":     `<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>` + autodiscover.NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`,
		"EmailAddress":     `<Autodiscover xmlns="` + autodiscover.NSRequest + `"><Request><EmailAddress>alice@example.com</EmailAddress><AcceptableResponseSchema>` + autodiscover.NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`,
		"BOM":              "\xef\xbb\xbf" + requestBody(addr, autodiscover.NSOutlook),
		"blank before":     "\r\n  \n" + requestBody(addr, autodiscover.NSOutlook),
		"BOM and blank":    "\xef\xbb\xbf\n " + requestBody(addr, autodiscover.NSOutlook),
		"prefixed":         `<a:Autodiscover xmlns:a="` + autodiscover.NSRequest + `"><a:Request><a:EMailAddress>alice@example.com</a:EMailAddress><a:AcceptableResponseSchema>` + autodiscover.NSOutlook + `</a:AcceptableResponseSchema></a:Request></a:Autodiscover>`,
		"no schema":        `<Autodiscover xmlns="` + autodiscover.NSRequest + `"><Request><EMailAddress>alice@example.com</EMailAddress></Request></Autodiscover>`,
		"blank in text":    requestBody("\n   alice@example.com\n  ", "\n "+autodiscover.NSOutlook+" \n"),
		"LegacyDN as well": `<Autodiscover xmlns="` + autodiscover.NSRequest + `"><Request><LegacyDN>/o=x</LegacyDN><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>` + autodiscover.NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`,
		"ascii declared":   `<?xml version="1.0" encoding="us-ascii"?>` + `<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request></Autodiscover>`,
		"comment and CDATA": `<?xml version="1.0"?><!-- Outlook --><Autodiscover xmlns="` + autodiscover.NSRequest + `"><Request>` +
			`<EMailAddress><![CDATA[alice@example.com]]></EMailAddress></Request></Autodiscover>`,
		"upper-case schema": requestBody(addr, strings.ToUpper(autodiscover.NSOutlook)),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			r := post(t, srv.URL+autodiscover.POXPath, "autodiscover.example.com", strings.NewReader(body))
			checkSettings(t, parse(t, r, autodiscover.NSOutlook), addr, demoProtocols(addr))
		})
	}
}

var (
	timeRE = regexp.MustCompile(`^\d{2}:\d{2}:\d{2}\.\d{7}$`)
	idRE   = regexp.MustCompile(`^\d+$`)
)

// checkError checks an Error answer: Time and Id attributes, then exactly
// ErrorCode, Message and DebugData.
func checkError(t *testing.T, resp *etree.Element, code, message, debug string) {
	t.Helper()
	if n := len(resp.ChildElements()); n != 1 {
		t.Fatalf("Response has %d children, want only Error", n)
	}
	e := resp.SelectElement("Error")
	if e == nil {
		t.Fatal("no Error element")
	}
	if v := e.SelectAttrValue("Time", ""); !timeRE.MatchString(v) {
		t.Errorf("Time=%q", v)
	}
	if v := e.SelectAttrValue("Id", ""); !idRE.MatchString(v) {
		t.Errorf("Id=%q", v)
	}
	got := children(e)
	if len(got) != 3 || got[0] != "ErrorCode="+code || got[1] != "Message="+message ||
		!strings.HasPrefix(got[2], "DebugData=") || !strings.Contains(got[2], debug) {
		t.Errorf("Error children %q, want ErrorCode=%s, Message=%s, DebugData containing %q", got, code, message, debug)
	}
}

func TestErrors(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	cases := []struct {
		name, body, debug string
	}{
		{"unknown domain", requestBody("bob@unknown.example.org", autodiscover.NSOutlook), "no mail settings"},
		{"no at", requestBody("bob.example.com", autodiscover.NSOutlook), "no @"},
		{"CRLF in address", requestBody("bob&#13;&#10;x@example.com", autodiscover.NSOutlook), "control character"},
		{"angle brackets", requestBody("&lt;bob@example.com&gt;", autodiscover.NSOutlook), "invalid email address"},
		{"empty address", requestBody("", autodiscover.NSOutlook), "no EMailAddress"},
		{"no Request", `<Autodiscover xmlns="` + autodiscover.NSRequest + `"/>`, "no Autodiscover/Request"},
		{"LegacyDN only", `<Autodiscover><Request><LegacyDN>/o=First Organization/cn=bob</LegacyDN></Request></Autodiscover>`, "LegacyDN"},
		{"long local part", requestBody(strings.Repeat("b", 65)+"@example.com", autodiscover.NSOutlook), "64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, srv.URL+"/Autodiscover/Autodiscover.xml", "autodiscover.example.com", strings.NewReader(c.body))
			checkError(t, parse(t, r, autodiscover.NSResponse), "600", "Invalid Request", c.debug)
			for _, leak := range []string{"imap.example.com", "bob", "unknown.example"} {
				if bytes.Contains(r.Body, []byte(leak)) {
					t.Errorf("error answer contains %q:\n%s", leak, r.Body)
				}
			}
			validate(t, r.Body)
		})
	}

	// An unknown response schema is error 601.
	r := post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("alice@example.com", "http://example.org/other/schema")))
	checkError(t, parse(t, r, autodiscover.NSResponse), "601", "Provider is not available", "not supported")
	validate(t, r.Body)
}

// TestBrowserGet: administrators open the URL in a browser.
func TestBrowserGet(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		r := testutil.Get(t, srv.URL+path, "autodiscover.example.com")
		checkError(t, parse(t, r, autodiscover.NSResponse), "600", "Invalid Request", "POST")
		validate(t, r.Body)
	}
	// Other methods get a plain 405, not a 500.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+autodiscover.POXPath, strings.NewReader("x"))
	if r := testutil.Do(t, req); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d", r.StatusCode)
	}
	// Other routes keep their case-sensitive paths.
	if r := testutil.Get(t, srv.URL+"/Mail/Config-v1.1.xml?emailaddress=alice@example.com", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("/Mail/Config-v1.1.xml: status %d", r.StatusCode)
	}
}

const aliasYAML = `
providers:
  - id: mail.example.com
    domains: [example.com]
    aliases:
      Example.ORG: example.com
    activesync_url: https://eas.example.com/Microsoft-Server-ActiveSync
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com, port: 587}
  - id: mail.other.test
    domains: [other.test]
    username: "%EMAILLOCALPART%"
    servers:
      - {type: pop3, host: pop.other.test, security: starttls}
      - {type: smtp, host: smtp.other.test, authentication: client-IP-address}
`

func startAlias(t *testing.T) *testutil.Running {
	t.Helper()
	cfg, err := config.Parse("alias.yaml", []byte(aliasYAML))
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Start(t, cfg, server.Options{})
}

// TestAliasRedirect: an address at an alias domain is redirected to the
// canonical address, in both schemas.
func TestAliasRedirect(t *testing.T) {
	srv := startAlias(t)
	r := post(t, srv.URL+"/Autodiscover/Autodiscover.xml", "autodiscover.example.org", strings.NewReader(requestBody("Alice@example.org", autodiscover.NSOutlook)))
	resp := parse(t, r, autodiscover.NSOutlook)
	equal(t, "Response", children(resp), []string{"Account="})
	equal(t, "Account", children(resp.SelectElement("Account")),
		[]string{"AccountType=email", "Action=redirectAddr", "RedirectAddr=Alice@example.com"})
	validate(t, r.Body)

	// The canonical address gets the settings.
	r = post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("Alice@example.com", autodiscover.NSOutlook)))
	login := "Alice@example.com"
	checkSettings(t, parse(t, r, autodiscover.NSOutlook), login, [][]string{
		{"Type=IMAP", "Server=imap.example.com", "Port=993", "LoginName=" + login, "DomainRequired=off", "SPA=off", "SSL=on", "Encryption=SSL", "AuthRequired=on"},
		{"Type=SMTP", "Server=smtp.example.com", "Port=587", "LoginName=" + login, "DomainRequired=off", "SPA=off", "SSL=on", "Encryption=TLS", "AuthRequired=on", "UsePOPAuth=on"},
	})
	validate(t, r.Body)

	// mobilesync: Action/Redirect.
	r = post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("alice@example.org", autodiscover.NSMobile)))
	resp = parse(t, r, autodiscover.NSMobile)
	equal(t, "Response", children(resp), []string{"Culture=en:us", "Action="})
	equal(t, "Action", children(resp.SelectElement("Action")), []string{"Redirect=alice@example.com"})
}

// TestOtherProvider: a second provider's own login template, STARTTLS POP3
// and an SMTP relay without authentication.
func TestOtherProvider(t *testing.T) {
	srv := startAlias(t)
	r := post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("dave@other.test", autodiscover.NSOutlook)))
	checkSettings(t, parse(t, r, autodiscover.NSOutlook), "dave@other.test", [][]string{
		{"Type=POP3", "Server=pop.other.test", "Port=110", "LoginName=dave", "DomainRequired=off", "SPA=off", "SSL=on", "Encryption=TLS", "AuthRequired=on"},
		{"Type=SMTP", "Server=smtp.other.test", "Port=465", "LoginName=dave", "DomainRequired=off", "SPA=off", "SSL=on", "Encryption=SSL", "AuthRequired=off"},
	})
	validate(t, r.Body)
}

// TestMobileSync: error 601 in the mobilesync namespace without an
// ActiveSync URL, the MobileSync server with one.
func TestMobileSync(t *testing.T) {
	demo := testutil.Start(t, testutil.Demo(t), server.Options{})
	r := post(t, demo.URL+autodiscover.POXPath, "autodiscover.example.com", strings.NewReader(requestBody("alice@example.com", autodiscover.NSMobile)))
	checkError(t, parse(t, r, autodiscover.NSMobile), "601", "Provider is not available", "ActiveSync")

	r = post(t, demo.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("alice@unknown.example.org", autodiscover.NSMobile)))
	checkError(t, parse(t, r, autodiscover.NSMobile), "600", "Invalid Request", "no mail settings")

	srv := startAlias(t)
	r = post(t, srv.URL+"/AutoDiscover/AutoDiscover.xml", "", strings.NewReader(requestBody("alice@example.com", autodiscover.NSMobile)))
	resp := parse(t, r, autodiscover.NSMobile)
	equal(t, "Response", children(resp), []string{"Culture=en:us", "User=", "Action="})
	equal(t, "User", children(resp.SelectElement("User")), []string{"EMailAddress=alice@example.com"})
	const eas = "https://eas.example.com/Microsoft-Server-ActiveSync"
	srvs := resp.FindElements("Action/Settings/Server")
	if len(srvs) != 1 {
		t.Fatalf("%d Settings/Server elements:\n%s", len(srvs), r.Body)
	}
	equal(t, "Server", children(srvs[0]), []string{"Type=MobileSync", "Url=" + eas, "Name=" + eas})

	// The other provider has none.
	r = post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(requestBody("dave@other.test", autodiscover.NSMobile)))
	checkError(t, parse(t, r, autodiscover.NSMobile), "601", "Provider is not available", "ActiveSync")
}

// TestJSON covers Autodiscover v2.
func TestJSON(t *testing.T) {
	srv := startAlias(t)
	const eas = "https://eas.example.com/Microsoft-Server-ActiveSync"
	cases := []struct {
		name, path string
		status     int
		body       string
	}{
		{"query", "/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=AutodiscoverV1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"}`},
		{"path, Outlook's spelling", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=Autodiscoverv1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"}`},
		{"path casing", "/AutoDiscover/AutoDiscover.json/V1.0/Alice@Example.COM?protocol=autodiscoverv1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"}`},
		{"query casing", "/Autodiscover/Autodiscover.json?email=dave@other.test&PROTOCOL=AUTODISCOVERV1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.other.test/autodiscover/autodiscover.xml"}`},
		{"encoded @", "/autodiscover/autodiscover.json/v1.0/alice%40example.com?Protocol=AutodiscoverV1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"}`},
		{"alias domain", "/autodiscover/autodiscover.json/v1.0/alice@example.org?Protocol=AutodiscoverV1", 200,
			`{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.org/autodiscover/autodiscover.xml"}`},
		{"IDN", "/autodiscover/autodiscover.json?Email=alice@b%C3%BCcher.example&Protocol=AutodiscoverV1", 404,
			`{"ErrorCode":"NotFound","ErrorMessage":"no mail settings are published for this domain"}`},
		{"ActiveSync", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=ActiveSync", 200,
			`{"Protocol":"ActiveSync","Url":"` + eas + `"}`},
		{"ActiveSync not offered", "/autodiscover/autodiscover.json/v1.0/dave@other.test?Protocol=activesync", 400,
			`{"ErrorCode":"InvalidProtocol","ErrorMessage":"ActiveSync is not offered for this domain. Supported values are 'AutodiscoverV1'."}`},
		{"other protocol", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=Ews", 400,
			`{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'Ews' is invalid. Supported values are 'AutodiscoverV1,ActiveSync'."}`},
		{"hostile protocol", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=%3Cscript%3Ealert(1)%3C/script%3E%22%0D%0A", 400,
			`{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value '?script?alert?1???script????' is invalid. Supported values are 'AutodiscoverV1,ActiveSync'."}`},
		{"long protocol", "/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=" + strings.Repeat("x", 500), 400,
			`{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value '` + strings.Repeat("x", 40) + `…' is invalid. Supported values are 'AutodiscoverV1,ActiveSync'."}`},
		{"no protocol", "/autodiscover/autodiscover.json?Email=alice@example.com", 400,
			`{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value '' is invalid. Supported values are 'AutodiscoverV1,ActiveSync'."}`},
		{"no address", "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", 400,
			`{"ErrorCode":"InvalidUser","ErrorMessage":"missing Email parameter"}`},
		{"bad address", "/autodiscover/autodiscover.json/v1.0/alice%0D%0A@example.com?Protocol=AutodiscoverV1", 400,
			`{"ErrorCode":"InvalidUser","ErrorMessage":"invalid email address: contains U+000D, a control character"}`},
		{"unknown domain", "/autodiscover/autodiscover.json/v1.0/alice@unknown.example.org?Protocol=AutodiscoverV1", 404,
			`{"ErrorCode":"NotFound","ErrorMessage":"no mail settings are published for this domain"}`},
		{"unknown version", "/autodiscover/autodiscover.json/v2.0/alice@example.com?Protocol=AutodiscoverV1", 404,
			`{"ErrorCode":"NotFound","ErrorMessage":"use /autodiscover/autodiscover.json/v1.0/\u003caddress\u003e or /autodiscover/autodiscover.json?Email=\u003caddress\u003e"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testutil.Get(t, srv.URL+c.path, "autodiscover.example.com")
			if r.StatusCode != c.status || string(r.Body) != c.body {
				t.Errorf("got %d %s\nwant %d %s", r.StatusCode, r.Body, c.status, c.body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestCredentials: Outlook and Thunderbird send the user's password. It is
// never asked for, never echoed and never logged.
func TestCredentials(t *testing.T) {
	var logs testutil.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := testutil.Start(t, testutil.Demo(t), server.Options{Logger: logger})
	auth := "Basic YWxpY2VAZXhhbXBsZS5jb206U3VwM3JTZWNyZXQh" // alice@example.com:Sup3rSecret!
	reqs := []*http.Request{}
	for _, body := range []string{requestBody("alice@example.com", autodiscover.NSOutlook), requestBody("x@unknown.example.org", autodiscover.NSOutlook), "<broken"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/Autodiscover/Autodiscover.xml", strings.NewReader(body))
		reqs = append(reqs, req)
	}
	for _, p := range []string{"/Autodiscover/Autodiscover.xml", "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		reqs = append(reqs, req)
	}
	for _, req := range reqs {
		req.Header.Set("Authorization", auth)
		r := testutil.Do(t, req)
		if r.StatusCode == http.StatusUnauthorized || r.StatusCode >= 500 {
			t.Errorf("%s %s: status %d", req.Method, req.URL.Path, r.StatusCode)
		}
		if h := r.Header.Values("WWW-Authenticate"); len(h) > 0 {
			t.Errorf("%s %s: WWW-Authenticate %q", req.Method, req.URL.Path, h)
		}
		for _, s := range []string{"Sup3rSecret", "YWxpY2VAZXhhbXBsZS5jb206U3VwM3JTZWNyZXQh"} {
			if bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("%s %s: answer contains the credentials:\n%s", req.Method, req.URL.Path, r.Body)
			}
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no access log written: the log check below would prove nothing")
	}
	for _, s := range []string{"Sup3rSecret", "YWxpY2VAZXhhbXBsZS5jb206U3VwM3JTZWNyZXQh", "Authorization"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains %q:\n%s", s, logs.String())
		}
	}
}

// TestHostileBodies: hostile and odd bodies all get a well-formed Error
// answer, quickly, never a 500, a hang or someone's settings.
func TestHostileBodies(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	valid := requestBody("alice@example.com", autodiscover.NSOutlook)
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
		`<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">` +
		`<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>` +
		`<Autodiscover><Request><EMailAddress>&lol9;@example.com</EMailAddress></Request></Autodiscover>`
	type bodyCase struct {
		name    string
		body    func() io.Reader
		chunked bool   // send without Content-Length
		debug   string // expected in DebugData
	}
	str := func(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }
	big := func(n int) func() io.Reader {
		return func() io.Reader {
			return io.MultiReader(strings.NewReader("<Autodiscover><Request>"), strings.NewReader(strings.Repeat("<x/>", n/4)))
		}
	}
	cases := []bodyCase{
		{"empty", str(""), false, "empty"},
		{"blank only", str(" \r\n\t "), false, "empty"},
		{"billion laughs", str(laughs), false, "DTDs and entity"},
		{"external entity", str(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>`), false, "DTDs and entity"},
		{"parameter entity", str(`<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><Autodiscover/>`), false, "DTDs and entity"},
		{"doctype after comment", str(`<!-- x --><!doctype Autodiscover><Autodiscover/>`), false, "DTDs and entity"},
		{"undeclared entity", str(`<Autodiscover><Request><EMailAddress>&x;@example.com</EMailAddress></Request></Autodiscover>`), false, "not well-formed"},
		{"1 MiB", big(1 << 20), false, "larger than 16384"},
		{"1 MiB chunked", big(1 << 20), true, "larger than 16384"},
		{"16 KiB + 1", str(valid + strings.Repeat(" ", autodiscover.MaxBodyBytes+1-len(valid))), false, "larger than 16384"},
		{"10,000-deep", str(strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000)), false, "larger than"},
		{"deep within the size limit", str("<Autodiscover><Request>" + strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + "</Request></Autodiscover>"), false, "deeper than 16"},
		{"invalid UTF-8", str("<Autodiscover><Request><EMailAddress>al\xffce@example.com</EMailAddress></Request></Autodiscover>"), false, "not UTF-8"},
		{"UTF-16", str("\xff\xfe<\x00A\x00/\x00>\x00"), false, "not UTF-8"},
		{"latin-1 declared", str(`<?xml version="1.0" encoding="ISO-8859-1"?><Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request></Autodiscover>`), false, "ISO-8859-1"},
		{"SOAP", str(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover"><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>alice@example.com</a:Mailbox></a:User></a:Users></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>`), false, "SOAP"},
		{"not XML", str("alice@example.com"), false, "not well-formed"},
		{"JSON", str(`{"EMailAddress":"alice@example.com"}`), false, "not well-formed"},
		{"truncated", str(valid[:len(valid)/2]), false, "not well-formed"},
		{"mismatched tags", str(`<Autodiscover><Request><EMailAddress>alice@example.com</Request></EMailAddress></Autodiscover>`), false, "not well-formed"},
		{"NUL bytes", str("<Autodiscover>\x00<Request/></Autodiscover>"), false, "not well-formed"},
		{"unterminated comment", str("<!-- <Autodiscover/>"), false, "unterminated comment"},
		{"many attributes", str("<Autodiscover " + func() string {
			var b strings.Builder
			for i := range 1500 {
				fmt.Fprintf(&b, "a%d=\"1\" ", i)
			}
			return b.String()
		}() + "/>"), false, "no Autodiscover/Request"},
		{"long address", str(requestBody(strings.Repeat("a", 10000)+"@example.com", autodiscover.NSOutlook)), false, "longer than"},
		{"two roots", str(`<Autodiscover/><Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress></Request></Autodiscover>`), false, "no Autodiscover/Request"},
		{"processing instruction bomb", str(strings.Repeat("<?pi x?>", 1000) + "<Autodiscover/>"), false, "no Autodiscover/Request"},
	}
	if len(cases) < 15 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/Autodiscover/Autodiscover.xml", c.body())
			if err != nil {
				t.Fatal(err)
			}
			if c.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(c.body())
			}
			start := time.Now()
			r := testutil.Do(t, req)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			resp := parse(t, r, autodiscover.NSResponse)
			checkError(t, resp, "600", "Invalid Request", c.debug)
			if bytes.Contains(r.Body, []byte("imap.example.com")) || bytes.Contains(r.Body, []byte("root:")) {
				t.Errorf("answer leaks data:\n%s", r.Body)
			}
			if len(r.Body) > 2048 {
				t.Errorf("answer is %d bytes", len(r.Body))
			}
			testutil.Validate(t, "autodiscover.py", r.Body, "error.xml")
		})
	}
	// The server is still fine afterwards.
	r := post(t, srv.URL+autodiscover.POXPath, "", strings.NewReader(valid))
	checkSettings(t, parse(t, r, autodiscover.NSOutlook), "alice@example.com", demoProtocols("alice@example.com"))
}
