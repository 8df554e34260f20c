package probe_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/probe"
	"mailautoconf/internal/testutil"
)

// startDNS serves the given zone-file records on a loopback UDP port, as
// an authoritative server: other types of an existing name get NODATA,
// other names NXDOMAIN.
func startDNS(t *testing.T, records ...string) string {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		rrs = append(rrs, rr)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		exists := false
		for _, rr := range rrs {
			if strings.EqualFold(rr.Header().Name, q.Name) {
				exists = true
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// answer is one canned HTTP answer.
type answer struct {
	status      int
	contentType string
	body        string
	location    string
}

// site answers by host and path (the query string is ignored); anything
// else is 404.
type site map[string]answer

func (s site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	a, ok := s[strings.ToLower(host)+r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	if a.status == 0 {
		a.status = 200
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// keyPair issues a certificate from ca.
func keyPair(t *testing.T, ca *testutil.CA, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	c, k := ca.Issue(t, notAfter, names...)
	kp, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// startHTTPS serves s over TLS, choosing the certificate by SNI from certs
// (the first one for any other name).
func startHTTPS(t *testing.T, s site, certs map[string]tls.Certificate, fallback tls.Certificate) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(s)
	// The probe's refused handshakes are expected here.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, ok := certs[hello.ServerName]; ok {
			return &c, nil
		}
		return &fallback, nil
	}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func startHTTP(t *testing.T, s site) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// Documents of the inconsistent fixtures.
const (
	// Plaintext IMAP on 143 only, no SMTP, a placeholder as provider id.
	badAutoconfig = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="%EMAILDOMAIN%">
    <domain>bad.test</domain>
    <displayName>Bad</displayName>
    <incomingServer type="imap">
      <hostname>mail.%EMAILDOMAIN%</hostname>
      <port>143</port>
      <socketType>plain</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
  </emailProvider>
</clientConfig>`
	// What the https host would say: TLS, but SMTP on 587 while SRV says 465.
	goodAutoconfig = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="bad.test">
    <domain>bad.test</domain>
    <displayName>Bad</displayName>
    <incomingServer type="imap">
      <hostname>mail.bad.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>mail.bad.test</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>`
	// Outlook gets IMAP over TLS and SMTP in plaintext.
	badPOX = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol><Type>IMAP</Type><Server>mail.bad.test</Server><Port>993</Port><SSL>on</SSL></Protocol>
      <Protocol><Type>SMTP</Type><Server>mail.bad.test</Server><Port>25</Port><SSL>off</SSL></Protocol>
    </Account>
  </Response>
</Autodiscover>`
	errorPOX = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response><Error Time="12:00:00" Id="1"><ErrorCode>500</ErrorCode><Message>The e-mail address cannot be found.</Message><DebugData/></Error></Response>
</Autodiscover>`
)

// badFixture starts DNS and HTTP(S) servers that disagree with each
// other in every way the probe must notice.
func badFixture(t *testing.T) probe.Options {
	t.Helper()
	ca := testutil.NewCA(t)
	resolver := startDNS(t,
		"_imaps._tcp.bad.test. 300 IN SRV 0 0 993 mail.bad.test.",
		"_submissions._tcp.bad.test. 300 IN SRV 0 0 465 mail.bad.test.",
		"_submission._tcp.bad.test. 300 IN SRV 0 0 0 .",
		"bad.test. 300 IN A 127.0.0.1",
		"autoconfig.bad.test. 300 IN A 127.0.0.1",
		"autodiscover.bad.test. 300 IN A 127.0.0.1",
		"mail.bad.test. 300 IN A 127.0.0.1",
	)
	plain := startHTTP(t, site{
		// Wrong Content-Type, and the documents disagree with SRV.
		"autoconfig.bad.test/mail/config-v1.1.xml":             {contentType: "text/html", body: badAutoconfig},
		"bad.test/.well-known/autoconfig/mail/config-v1.1.xml": {contentType: "application/xml", body: "<clientConfig><emailProvider"},
		"autodiscover.bad.test/autodiscover/autodiscover.xml":  {contentType: "text/xml", body: errorPOX},
	})
	secure := startHTTPS(t, site{
		"autoconfig.bad.test/mail/config-v1.1.xml":            {contentType: "application/xml", body: goodAutoconfig},
		"bad.test/autodiscover/autodiscover.xml":              {contentType: "text/xml", body: errorPOX},
		"autodiscover.bad.test/autodiscover/autodiscover.xml": {contentType: "text/xml", body: badPOX},
	}, map[string]tls.Certificate{
		// Expired.
		"autoconfig.bad.test": keyPair(t, ca, time.Now().Add(-time.Minute), "autoconfig.bad.test"),
	}, keyPair(t, ca, time.Time{}, "other.test")) // for any other name: the wrong name
	return probe.Options{
		Resolver:  resolver,
		ConnectTo: map[string]string{":80": plain, ":443": secure},
		RootCAs:   ca.Pool(),
		Timeout:   3 * time.Second,
	}
}

// finding is a (code, client) pair of a report.
func findings(rep *probe.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.Code+"/"+f.Client)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func endpoint(e *probe.Endpoint) string {
	if e == nil {
		return "none"
	}
	return e.String()
}

// TestInconsistentFixtures probes servers that contradict each other and
// checks every finding and what each client ends up with.
func TestInconsistentFixtures(t *testing.T) {
	for _, c := range []struct {
		name     string
		insecure bool
		views    map[string][2]string // client -> incoming, outgoing
		want     []string             // code/client
		messages []string             // substrings of some finding's message
	}{
		{
			name: "verified",
			views: map[string][2]string{
				// The https answer has an expired certificate, so
				// Thunderbird falls back to the plaintext document.
				probe.Thunderbird: {"imap mail.bad.test:143 plain", "none"},
				probe.Outlook:     {"none", "none"},
				probe.AppleMail:   {"none", "none"},
				probe.SRVClients:  {"imap mail.bad.test:993 tls", "smtp mail.bad.test:465 tls"},
			},
			want: []string{
				// The profile is on the autoconfig host, with the
				// expired certificate.
				"certificate/Apple Mail", "certificate/Outlook", "certificate/Thunderbird",
				"content-type/Thunderbird",
				"disagreement/",
				"http-only/Thunderbird",
				"malformed/Thunderbird",
				"no-config/Apple Mail", "no-config/Outlook",
				"no-outgoing/Thunderbird",
				"no-redirect/Outlook",
				"plaintext/Thunderbird",
				"strict-reject/Thunderbird",
			},
			messages: []string{
				"certificate has expired",
				"other.test",
				`emailProvider id "%EMAILDOMAIN%" contains a placeholder`,
				`socketType "plain"`,
				"imap mail.bad.test:143 plain",
				"Thunderbird: imap mail.bad.test:143 plain; SRV clients: imap mail.bad.test:993 tls",
				"only plaintext is offered",
			},
		},
		{
			name:     "insecure",
			insecure: true,
			views: map[string][2]string{
				probe.Thunderbird: {"imap mail.bad.test:993 tls", "smtp mail.bad.test:587 starttls"},
				probe.Outlook:     {"imap mail.bad.test:993 tls", "smtp mail.bad.test:25 plain"},
				probe.AppleMail:   {"none", "none"},
				probe.SRVClients:  {"imap mail.bad.test:993 tls", "smtp mail.bad.test:465 tls"},
			},
			want: []string{
				"answer-error/Outlook",
				"certificate/Apple Mail", "certificate/Outlook", "certificate/Thunderbird",
				// Every answer is checked, not only the one used.
				"content-type/Thunderbird",
				"disagreement/",
				"malformed/Thunderbird",
				"no-config/Apple Mail",
				"no-redirect/Outlook",
				"plaintext/Outlook",
			},
			messages: []string{
				"answers error 500",
				"smtp mail.bad.test:25 plain",
				"Thunderbird: smtp mail.bad.test:587 starttls; Outlook: smtp mail.bad.test:25 plain; SRV clients: smtp mail.bad.test:465 tls",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := badFixture(t)
			opts.Insecure = c.insecure
			rep, err := probe.Run(context.Background(), "alice@bad.test", opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Error("inconsistent fixtures judged OK")
			}
			if got := findings(rep); !slices.Equal(got, c.want) {
				t.Errorf("findings\n got %q\nwant %q\n%+v", got, c.want, rep.Findings)
			}
			for client, want := range c.views {
				v := rep.View(client)
				if got := [2]string{endpoint(v.Incoming), endpoint(v.Outgoing)}; got != want {
					t.Errorf("%s: got %q, want %q", client, got, want)
				}
			}
			for _, m := range c.messages {
				found := false
				for _, f := range rep.Findings {
					found = found || strings.Contains(f.Message, m)
				}
				if !found {
					t.Errorf("no finding says %q: %+v", m, rep.Findings)
				}
			}
		})
	}
}

// TestTextOutput: the human output is aligned, coloured only when asked,
// and the colours do not shift the columns.
func TestTextOutput(t *testing.T) {
	rep, err := probe.Run(context.Background(), "alice@bad.test", badFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	var plain, coloured strings.Builder
	probe.WriteText(&plain, rep, false)
	probe.WriteText(&coloured, rep, true)
	if ansi.MatchString(plain.String()) {
		t.Errorf("colour codes without colour:\n%q", plain.String())
	}
	if !ansi.MatchString(coloured.String()) {
		t.Fatal("no colour codes with colour")
	}
	if got := ansi.ReplaceAllString(coloured.String(), ""); got != plain.String() {
		t.Errorf("coloured output differs from plain beyond the colours:\n%s\n---\n%s", got, plain.String())
	}
	// In the client table every column starts at the same offset.
	lines := strings.Split(plain.String(), "\n")
	var header int
	for i, l := range lines {
		if strings.Contains(l, "CLIENT") && strings.Contains(l, "SECURITY") {
			header = i
		}
	}
	col := strings.Index(lines[header], "SECURITY")
	for _, l := range lines[header+1 : header+9] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("misaligned row (SECURITY at %d): %q", col, l)
		}
	}
	for _, want := range []string{
		"Thunderbird  incoming   imap      mail.bad.test  143   plain",
		"ERROR    plaintext",
		"WARNING  disagreement",
		"problem(s): not every client gets a working TLS configuration.",
		"(issued by mailautoconf test CA, expires ", // a failing certificate: which one
	} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, plain.String())
		}
	}
}

// TestOutlookSRV: when neither the domain nor autodiscover.DOMAIN answers,
// Outlook follows _autodiscover._tcp to a hoster's name, and so does the
// probe; the other clients get nothing.
func TestOutlookSRV(t *testing.T) {
	ca := testutil.NewCA(t)
	resolver := startDNS(t,
		"_autodiscover._tcp.srv.test. 300 IN SRV 0 0 443 ad.hoster.test.",
		"ad.hoster.test. 300 IN A 127.0.0.1",
	)
	secure := startHTTPS(t, site{
		"ad.hoster.test/autodiscover/autodiscover.xml": {contentType: "text/xml", body: strings.ReplaceAll(badPOX, "<Port>25</Port><SSL>off</SSL>", "<Port>587</Port><Encryption>TLS</Encryption>")},
	}, nil, keyPair(t, ca, time.Time{}, "srv.test", "autodiscover.srv.test", "ad.hoster.test", "autoconfig.srv.test"))
	plain := startHTTP(t, site{})
	rep, err := probe.Run(context.Background(), "alice@srv.test", probe.Options{
		Resolver:  resolver,
		ConnectTo: map[string]string{":80": plain, ":443": secure},
		RootCAs:   ca.Pool(),
		Timeout:   3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	v := rep.View(probe.Outlook)
	if v.Source != "https://ad.hoster.test/autodiscover/autodiscover.xml" {
		t.Errorf("Outlook source %q", v.Source)
	}
	if got, want := [2]string{endpoint(v.Incoming), endpoint(v.Outgoing)}, [2]string{"imap mail.bad.test:993 tls", "smtp mail.bad.test:587 starttls"}; got != want {
		t.Errorf("Outlook: %q, want %q", got, want)
	}
	want := []string{"no-address/Outlook", "no-address/Thunderbird", "no-config/Apple Mail", "no-config/SRV clients", "no-config/Thunderbird", "no-redirect/Outlook"}
	if got := findings(rep); !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
}
