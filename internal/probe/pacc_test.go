package probe_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/probe"
	"mailautoconf/internal/testutil"
)

const davAutoconfig = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="dav.test">
    <domain>dav.test</domain>
    <displayName>DAV</displayName>
    <incomingServer type="imap">
      <hostname>mail.dav.test</hostname><port>993</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>mail.dav.test</hostname><port>465</port><socketType>SSL</socketType>
      <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
  <calendar type="caldav">
    <username>%EMAILADDRESS%</username><authentication>http-basic</authentication>
    <serverURL>https://dav.dav.test/calendars/%EMAILADDRESS%/</serverURL>
  </calendar>
  <addressBook type="carddav">
    <username>%EMAILADDRESS%</username><authentication>http-basic</authentication>
    <serverURL>CARDDAV</serverURL>
  </addressBook>
</clientConfig>`

const davPACC = `{"protocols":{"jmap":{"url":"https://jmap.dav.test/.well-known/jmap"},"imap":{"host":"mail.dav.test"},` +
	`"submit":{"host":"SUBMIT"},"caldav":{"url":"https://dav.dav.test/calendars/"},"carddav":{"url":"https://dav.dav.test/addressbooks/"}},` +
	`"authentication":{"password":true},"info":{"provider":{"name":"DAV"}}}`

func digest(b string) string {
	s := sha256.Sum256([]byte(b))
	return base64.StdEncoding.EncodeToString(s[:])
}

// TestPACCAndDAV probes fixtures that publish PACC and calendars and
// contacts, consistent or not.
func TestPACCAndDAV(t *testing.T) {
	cases := []struct {
		name     string
		txt      string // TXT record at _ua-auto-config; "" for none; DIGEST is replaced
		submit   string // host of protocols.submit in the PACC document
		carddav  string // serverURL of the autoconfig addressBook
		paccCert []string
		want     []string // code/client
		pacc     [2]string
		messages []string
	}{
		{
			name: "consistent", txt: `"v=UAAC1; a=sha256; " "d=DIGEST"`, submit: "mail.dav.test",
			carddav: "https://dav.dav.test/addressbooks/%EMAILADDRESS%/",
			pacc:    [2]string{"imap mail.dav.test:993 tls", "smtp mail.dav.test:465 tls"},
		},
		{
			name: "stale digest", txt: `"v=UAAC1; a=sha256; d=` + digest("old") + `"`, submit: "mail.dav.test",
			carddav:  "https://dav.dav.test/addressbooks/%EMAILADDRESS%/",
			want:     []string{"pacc/PACC clients"},
			pacc:     [2]string{"none", "none"},
			messages: []string{"has the digest of the"},
		},
		{
			name: "no record", submit: "mail.dav.test", carddav: "https://dav.dav.test/addressbooks/%EMAILADDRESS%/",
			want:     []string{"pacc/PACC clients"},
			pacc:     [2]string{"none", "none"},
			messages: []string{"has no TXT record"},
		},
		{
			name: "disagreements", txt: `"v=UAAC1; a=sha256; d=DIGEST"`, submit: "smtp.elsewhere.test",
			carddav: "https://contacts.elsewhere.test/card/",
			want:    []string{"dav-disagreement/", "disagreement/"},
			pacc:    [2]string{"imap mail.dav.test:993 tls", "smtp smtp.elsewhere.test:465 tls"},
			messages: []string{
				"different CardDAV servers: autoconfig: https://contacts.elsewhere.test/card/; DNS (RFC 6764): https://dav.dav.test/addressbooks/",
				"PACC clients: smtp smtp.elsewhere.test:465 tls",
			},
		},
		{
			name: "certificate for another name", txt: `"v=UAAC1; a=sha256; d=DIGEST"`, submit: "mail.dav.test",
			carddav: "https://dav.dav.test/addressbooks/%EMAILADDRESS%/", paccCert: []string{"other.test"},
			want: []string{"certificate/PACC clients", "pacc/PACC clients"},
			pacc: [2]string{"none", "none"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca := testutil.NewCA(t)
			doc := strings.Replace(davPACC, "SUBMIT", c.submit, 1)
			records := []string{
				"_imaps._tcp.dav.test. 300 IN SRV 0 0 993 mail.dav.test.",
				"_submissions._tcp.dav.test. 300 IN SRV 0 0 465 mail.dav.test.",
				"_caldavs._tcp.dav.test. 300 IN SRV 0 0 443 dav.dav.test.",
				`_caldavs._tcp.dav.test. 300 IN TXT "path=/calendars/"`,
				"_carddavs._tcp.dav.test. 300 IN SRV 10 0 443 dav.dav.test.",
				"_carddavs._tcp.dav.test. 300 IN SRV 20 0 443 backup.dav.test.",
				`_carddavs._tcp.dav.test. 300 IN TXT "txtvers=1" "path=/addressbooks/"`,
				"autoconfig.dav.test. 300 IN A 127.0.0.1",
				"autodiscover.dav.test. 300 IN A 127.0.0.1",
				"ua-auto-config.dav.test. 300 IN A 127.0.0.1",
			}
			if c.txt != "" {
				records = append(records, "_ua-auto-config.dav.test. 300 IN TXT "+strings.Replace(c.txt, "DIGEST", digest(doc), 1))
			}
			resolver := startDNS(t, records...)
			names := []string{"autoconfig.dav.test", "autodiscover.dav.test", "dav.test"}
			certs := map[string]tls.Certificate{}
			if c.paccCert != nil {
				certs["ua-auto-config.dav.test"] = keyPair(t, ca, time.Time{}, c.paccCert...)
			} else {
				names = append(names, "ua-auto-config.dav.test")
			}
			secure := startHTTPS(t, site{
				"autoconfig.dav.test/mail/config-v1.1.xml":                          {contentType: "text/xml", body: strings.Replace(davAutoconfig, "CARDDAV", c.carddav, 1)},
				"ua-auto-config.dav.test/.well-known/user-agent-configuration.json": {contentType: "application/json", body: doc},
			}, certs, keyPair(t, ca, time.Time{}, names...))
			rep, err := probe.Run(context.Background(), "alice@dav.test", probe.Options{
				Resolver:  resolver,
				ConnectTo: map[string]string{":80": startHTTP(t, site{}), ":443": secure},
				RootCAs:   ca.Pool(),
				Timeout:   3 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range findings(rep) {
				// Outlook and Apple Mail get nothing from these
				// fixtures; that is not what is tested here.
				if !strings.HasSuffix(f, "/Outlook") && !strings.HasSuffix(f, "/Apple Mail") {
					got = append(got, f)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("findings\n got %q\nwant %q\n%+v", got, c.want, rep.Findings)
			}
			v := rep.View(probe.PACCClients)
			if g := [2]string{endpoint(v.Incoming), endpoint(v.Outgoing)}; g != c.pacc {
				t.Errorf("PACC clients: %q, want %q", g, c.pacc)
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
			dav := map[string]probe.DAVView{}
			for _, d := range rep.DAV {
				dav[d.Source] = d
			}
			if d := dav["DNS (RFC 6764)"]; d.CalDAV != "https://dav.dav.test/calendars/" || d.CardDAV != "https://dav.dav.test/addressbooks/" {
				t.Errorf("DNS view %+v: the lowest priority wins, path= is one of the strings", d)
			}
			if d := dav["autoconfig"]; d.CalDAV != "https://dav.dav.test/calendars/alice@dav.test/" {
				t.Errorf("autoconfig view %+v", d)
			}
			if d, ok := dav["PACC"]; ok != (c.pacc[0] != "none") || (ok && d.JMAP != "https://jmap.dav.test/.well-known/jmap") {
				t.Errorf("PACC view %+v (present %v)", d, ok)
			}
		})
	}
}
