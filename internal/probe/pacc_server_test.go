package probe_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/probe"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// davServerYAML is a provider with mail, calendars, contacts and JMAP, all
// of which the running service publishes in PACC and (CalDAV, CardDAV) in
// the RFC 6764 records. %s: the TLS certificate and key; %s: the provider's
// display name; %s: the CalDAV host; %s: servers listed before the usual
// ones.
const davServerYAML = `tls:
  certificates:
    - {cert: %s, key: %s}
dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1]
  hosts:
    ns1.example.com: [127.0.0.1]
    dav.example.com: [192.0.2.80]
    imap.example.com: [192.0.2.11]
    smtp.example.com: [192.0.2.13]
providers:
  - id: mail.example.com
    display_name: %s
    domains: [example.com]
    caldav: {url: "https://%s/calendars/%%EMAILADDRESS%%/"}
    carddav: {url: "https://dav.example.com/addressbooks/"}
    jmap: {url: "https://jmap.example.com/.well-known/jmap"}
    servers:%s
      - {type: imap, host: imap.example.com, security: tls}
      - {type: smtp, host: smtp.example.com, security: tls}
`

// davServer starts the service for davServerYAML with HTTP, HTTPS and DNS
// on loopback.
func davServer(t *testing.T, ca *testutil.CA, name, first string) *testutil.Running {
	return davServerAt(t, ca, name, "dav.example.com", first)
}

// davServerAt is davServer with another CalDAV host.
func davServerAt(t *testing.T, ca *testutil.CA, name, caldav, first string) *testutil.Running {
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.IssueFiles(t, dir, "web", time.Time{},
		"autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com", "example.com")
	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, fmt.Appendf(nil, davServerYAML, cert, key, name, caldav, first))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0"})
}

// probeSplit probes alice@example.com with DNS from one server and HTTP(S)
// from another (the same server for a consistent domain).
func probeSplit(t *testing.T, ca *testutil.CA, dnsFrom, httpFrom *testutil.Running) (*probe.Report, string) {
	t.Helper()
	rep, err := probe.Run(context.Background(), "alice@example.com", probe.Options{
		Resolver:  dnsFrom.DNSAddr().String(),
		ConnectTo: map[string]string{":80": httpFrom.Addr().String(), ":443": httpFrom.HTTPSAddr().String()},
		RootCAs:   ca.Pool(),
		Timeout:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	probe.WriteText(&b, rep, false)
	return rep, b.String()
}

// TestOwnServerPACC probes the running service for a provider with
// calendars, contacts and JMAP: the PACC document is fetched over HTTPS
// from ua-auto-config.<domain>, its digest matches the TXT record of the
// built-in DNS server, PACC clients get the same mail servers as everybody
// else, the RFC 6764 records and the document send clients to the same
// DAV servers, and nothing is reported. What the probe fetched passes
// pacc.py against the same DNS server.
func TestOwnServerPACC(t *testing.T) {
	ca := testutil.NewCA(t)
	srv := davServer(t, ca, "Example Mail", "")
	rep, text := probeSplit(t, ca, srv, srv)
	if !rep.OK {
		t.Fatalf("probe of our own server is not OK:\n%s", text)
	}
	for _, f := range rep.Findings {
		if f.Severity != probe.SevInfo {
			t.Errorf("finding on our own server: %+v\n%s", f, text)
		}
	}
	v := rep.View(probe.PACCClients)
	if v.Incoming == nil || v.Incoming.String() != "imap imap.example.com:993 tls" ||
		v.Outgoing == nil || v.Outgoing.String() != "smtp smtp.example.com:465 tls" {
		t.Errorf("PACC clients: %+v\n%s", v, text)
	}
	dav := map[string]probe.DAVView{}
	for _, d := range rep.DAV {
		dav[d.Source] = d
	}
	want := probe.DAVView{CalDAV: "https://dav.example.com/calendars/", CardDAV: "https://dav.example.com/addressbooks/"}
	if d := dav["DNS (RFC 6764)"]; d.CalDAV != want.CalDAV || d.CardDAV != want.CardDAV {
		t.Errorf("DAV from DNS: %+v\n%s", d, text)
	}
	var fromPACC *probe.DAVView
	for i := range rep.DAV {
		if rep.DAV[i].JMAP != "" {
			fromPACC = &rep.DAV[i]
		}
	}
	if fromPACC == nil || fromPACC.CalDAV != want.CalDAV || fromPACC.CardDAV != want.CardDAV || fromPACC.JMAP != "https://jmap.example.com/.well-known/jmap" {
		t.Errorf("DAV from PACC: %+v\n%s", fromPACC, text)
	}
	var validated bool
	for _, c := range rep.Checks {
		if c.Kind == "http" && strings.Contains(c.Target, "https://ua-auto-config.example.com/.well-known/user-agent-configuration.json") {
			if c.Status != probe.StatusOK || c.Certificate == nil || !c.Certificate.Valid {
				t.Errorf("%s: %+v", c.Target, c)
			}
			testutil.Validate(t, "pacc.py", c.Body, "user-agent-configuration.json", "--content-type", c.ContentType,
				"--resolver", srv.DNSAddr().String(), "--domain", "example.com",
				"--expect-imap", "imap.example.com", "--expect-smtp", "smtp.example.com")
			validated = true
		}
	}
	if !validated {
		t.Errorf("the probe did not fetch the PACC document:\n%s", text)
	}
}

// TestProbePACCDisagreement: two running services that disagree, one
// answering DNS and the other HTTP, as when a hoster changed one and not
// the other. A document whose digest no TXT record has is not used; RFC 6764
// records that name another CalDAV server than autoconfig and the profile
// are a DAV disagreement; and a document PACC clients do use that names
// other servers than the other formats is a disagreement.
func TestProbePACCDisagreement(t *testing.T) {
	ca := testutil.NewCA(t)
	dnsSrv := davServer(t, ca, "Example Mail", "")

	t.Run("digest", func(t *testing.T) {
		// Another display name: other bytes, another digest.
		rep, text := probeSplit(t, ca, dnsSrv, davServer(t, ca, "Example Mail Renamed", ""))
		if !rep.Has(probe.CodePACC, probe.PACCClients) || !strings.Contains(text, "no v=UAAC1 record at _ua-auto-config.example.com has the digest") {
			t.Errorf("a document DNS does not vouch for is not reported:\n%s", text)
		}
		if v := rep.View(probe.PACCClients); v.Incoming != nil {
			t.Errorf("PACC clients use a document DNS does not vouch for: %+v", v)
		}
	})
	t.Run("calendars", func(t *testing.T) {
		// The calendars moved on the web side only: autoconfig and
		// the profile name the new host, DNS (RFC 6764) the old one.
		rep, text := probeSplit(t, ca, dnsSrv, davServerAt(t, ca, "Example Mail", "caldav.example.com", ""))
		if !rep.Has(probe.CodeDAVDisagree, "") || !strings.Contains(text, "https://dav.example.com/calendars/") || !strings.Contains(text, "caldav.example.com") {
			t.Errorf("DNS and autoconfig send clients to different CalDAV servers, not reported:\n%s", text)
		}
	})
	t.Run("servers", func(t *testing.T) {
		// The same document (PACC cannot describe a STARTTLS server),
		// but autoconfig, Autodiscover and the profile lead with
		// another IMAP server.
		rep, text := probeSplit(t, ca, dnsSrv, davServer(t, ca, "Example Mail", `
      - {type: imap, host: imap-legacy.example.com, port: 143, security: starttls}`))
		if rep.Has(probe.CodePACC, "") {
			t.Errorf("the document is the one DNS vouches for, yet:\n%s", text)
		}
		if v := rep.View(probe.PACCClients); v.Incoming == nil || v.Incoming.Host != "imap.example.com" {
			t.Errorf("PACC clients: %+v\n%s", v, text)
		}
		if !rep.Has(probe.CodeDisagree, "") || !strings.Contains(text, "imap-legacy.example.com") {
			t.Errorf("PACC and Thunderbird configure different servers, not reported:\n%s", text)
		}
	})
}
