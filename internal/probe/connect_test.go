package probe_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/probe"
	"mailautoconf/internal/testutil"
)

// mailServer is a scripted IMAP, POP3 or SMTP server: enough of the
// protocol to greet, list capabilities and switch to TLS.
type mailServer struct {
	implicit bool   // TLS from the first byte
	greeting string // "" keeps silent
	// replies maps a command line (or its first word) to the answer.
	// An answer starting with "TLS " is sent without the prefix, and then
	// the connection switches to TLS.
	replies map[string]string
	cert    tls.Certificate
}

// start listens on a loopback port and serves every connection with the
// script, until the test ends.
func (m mailServer) start(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conf := &tls.Config{Certificates: []tls.Certificate{m.cert}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(c, conf)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func (m mailServer) serve(c net.Conn, conf *tls.Config) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if m.implicit {
		c = tls.Server(c, conf)
	}
	if m.greeting == "" {
		_, _ = c.Read(make([]byte, 1)) // until the client gives up
		return
	}
	fmt.Fprintf(c, "%s\r\n", m.greeting)
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		reply, ok := m.replies[line]
		if !ok {
			reply, ok = m.replies[strings.Fields(line + " x")[0]]
		}
		if !ok {
			fmt.Fprintf(c, "500 unknown command\r\n")
			continue
		}
		if rest, upgrade := strings.CutPrefix(reply, "TLS "); upgrade {
			fmt.Fprintf(c, "%s\r\n", rest)
			tc := tls.Server(c, conf)
			if tc.Handshake() != nil {
				return
			}
			_, _ = tc.Read(make([]byte, 1))
			return
		}
		fmt.Fprintf(c, "%s\r\n", reply)
	}
}

// Scripts of real servers' first exchanges.
var (
	imapStartTLS = map[string]string{
		"A1 CAPABILITY": "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nA1 OK done",
		"A2 STARTTLS":   "TLS A2 OK begin TLS",
	}
	pop3STLS = map[string]string{
		"CAPA": "+OK list follows\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\n.",
		"STLS": "TLS +OK begin TLS",
	}
	smtpStartTLS = map[string]string{
		"EHLO":     "250-mail.conn.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME",
		"STARTTLS": "TLS 220 go ahead",
	}
	smtpNoStartTLS = map[string]string{
		"EHLO": "250-mail.conn.test\r\n250-PIPELINING\r\n250 8BITMIME",
	}
	imapNoStartTLS = map[string]string{
		"A1 CAPABILITY": "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA1 OK done",
	}
)

// TestConnect: --connect opens every advertised port and checks the TLS
// handshake, or the STARTTLS capability and upgrade, with timeouts.
func TestConnect(t *testing.T) {
	ca := testutil.NewCA(t)
	good := keyPair(t, ca, time.Time{}, "mail.conn.test")
	expired := keyPair(t, ca, time.Now().Add(-time.Minute), "mail.conn.test")
	wrongName := keyPair(t, ca, time.Time{}, "other.test")

	cases := []struct {
		name       string
		server     *mailServer // nil: a closed port
		protocol   string      // imap, pop3, smtp
		socketType string      // SSL or STARTTLS, as in autoconfig
		wantOK     bool
		wantDetail string
		wantCode   string
	}{
		{"imap implicit TLS", &mailServer{implicit: true, greeting: "* OK IMAP4rev1 ready", cert: good}, "imap", "SSL", true, "implicit TLS", ""},
		{"imap STARTTLS", &mailServer{greeting: "* OK IMAP4rev1 ready", replies: imapStartTLS, cert: good}, "imap", "STARTTLS", true, "STARTTLS offered and upgraded", ""},
		{"pop3 STLS", &mailServer{greeting: "+OK POP3 ready", replies: pop3STLS, cert: good}, "pop3", "STARTTLS", true, "STARTTLS offered and upgraded", ""},
		{"smtp implicit TLS", &mailServer{implicit: true, greeting: "220 mail.conn.test ESMTP", cert: good}, "smtp", "SSL", true, "implicit TLS", ""},
		{"smtp STARTTLS", &mailServer{greeting: "220 mail.conn.test ESMTP", replies: smtpStartTLS, cert: good}, "smtp", "STARTTLS", true, "STARTTLS offered and upgraded", ""},
		{"smtp without STARTTLS", &mailServer{greeting: "220 mail.conn.test ESMTP", replies: smtpNoStartTLS, cert: good}, "smtp", "STARTTLS", false, "does not offer STARTTLS", probe.CodeConnect},
		{"imap without STARTTLS", &mailServer{greeting: "* OK ready", replies: imapNoStartTLS, cert: good}, "imap", "STARTTLS", false, "does not offer STARTTLS", probe.CodeConnect},
		{"imap expired certificate", &mailServer{implicit: true, greeting: "* OK ready", cert: expired}, "imap", "SSL", false, "certificate has expired", probe.CodeCertificate},
		{"smtp STARTTLS wrong name", &mailServer{greeting: "220 mail.conn.test ESMTP", replies: smtpStartTLS, cert: wrongName}, "smtp", "STARTTLS", false, "not mail.conn.test", probe.CodeCertificate},
		{"imap silent", &mailServer{cert: good}, "imap", "STARTTLS", false, "timeout", probe.CodeConnect},
		{"pop3 TLS to a plaintext port", &mailServer{greeting: "+OK POP3 ready", replies: pop3STLS, cert: good}, "pop3", "SSL", false, "TLS handshake", probe.CodeConnect},
		{"closed port", nil, "imap", "SSL", false, "refused", probe.CodeConnect},
	}

	var in, out strings.Builder
	ports := make([]int, len(cases))
	for i, c := range cases {
		if c.server != nil {
			ports[i] = c.server.start(t)
		} else {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ports[i] = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
		}
		b, el := &in, "incomingServer"
		if c.protocol == "smtp" {
			b, el = &out, "outgoingServer"
		}
		fmt.Fprintf(b, `<%s type="%s"><hostname>mail.conn.test</hostname><port>%d</port><socketType>%s</socketType>`+
			`<authentication>password-cleartext</authentication><username>%%EMAILADDRESS%%</username></%s>`,
			el, c.protocol, ports[i], c.socketType, el)
	}
	doc := `<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="conn.test"><domain>conn.test</domain>` +
		in.String() + out.String() + `</emailProvider></clientConfig>`
	resolver := startDNS(t,
		"autoconfig.conn.test. 300 IN A 127.0.0.1",
		"mail.conn.test. 300 IN A 127.0.0.1",
	)
	web := startHTTPS(t, site{"autoconfig.conn.test/mail/config-v1.1.xml": {contentType: "application/xml", body: doc}},
		nil, keyPair(t, ca, time.Time{}, "autoconfig.conn.test"))

	start := time.Now()
	rep, err := probe.Run(context.Background(), "alice@conn.test", probe.Options{
		Resolver:  resolver,
		ConnectTo: map[string]string{":443": web},
		RootCAs:   ca.Pool(),
		Connect:   true,
		// Long enough for a loaded CI machine; the silent server
		// costs exactly one timeout.
		Timeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 12*time.Second {
		t.Errorf("probe with a silent server took %v", d)
	}
	if got := len(rep.Connections); got != len(cases) {
		t.Fatalf("%d connections, want %d: %+v", got, len(cases), rep.Connections)
	}
	for i, c := range cases {
		var conn *probe.Connection
		for j := range rep.Connections {
			if rep.Connections[j].Endpoint.Port == ports[i] {
				conn = &rep.Connections[j]
			}
		}
		if conn == nil {
			t.Errorf("%s: port %d not connected", c.name, ports[i])
			continue
		}
		if conn.OK != c.wantOK || !strings.Contains(conn.Detail, c.wantDetail) {
			t.Errorf("%s: ok=%v %q, want ok=%v with %q", c.name, conn.OK, conn.Detail, c.wantOK, c.wantDetail)
		}
		if c.wantOK && conn.TLSVersion == "" {
			t.Errorf("%s: no TLS version", c.name)
		}
		port := ":" + strconv.Itoa(ports[i])
		found := false
		for _, f := range rep.Findings {
			if strings.Contains(f.Message, port+" ") {
				found = true
				if f.Code != c.wantCode {
					t.Errorf("%s: finding %s, want %q", c.name, f.Code, c.wantCode)
				}
			}
		}
		if !found && c.wantCode != "" {
			t.Errorf("%s: no %s finding", c.name, c.wantCode)
		}
	}
	if rep.OK {
		t.Error("failing connections judged OK")
	}
	if testing.Verbose() {
		var b strings.Builder
		probe.WriteText(&b, rep, false)
		t.Log("\n" + b.String())
	}
}
