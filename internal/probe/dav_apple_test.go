package probe_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/probe"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// appleDAVYAML is a provider with calendars and contacts; %s: the TLS
// certificate and key.
const appleDAVYAML = `tls:
  certificates:
    - {cert: %s, key: %s}
dns:
  nameservers: [ns1.example.org]
  service_addresses: [127.0.0.1]
  hosts:
    ns1.example.org: [127.0.0.1]
    imap.example.org: [192.0.2.11]
    smtp.example.org: [192.0.2.13]
providers:
  - id: mail.example.org
    domains: [example.org]
    servers:
      - {type: imap, host: imap.example.org}
      - {type: smtp, host: smtp.example.org}
    caldav: {url: "https://dav.example.org/calendars/%%EMAILADDRESS%%/"}
    carddav: {url: "https://dav.example.org:8443/card/%%EMAILLOCALPART%%/"}
`

// TestOwnServerDAVProfile: the probe asks the running service for the
// profile with calendars and contacts, reads its CalDAV and CardDAV
// payloads, and finds them where autoconfig sends clients.
func TestOwnServerDAVProfile(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	cert, key := ca.IssueFiles(t, dir, "web", time.Time{}, "autoconfig.example.org", "autodiscover.example.org", "example.org")
	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, fmt.Appendf(nil, appleDAVYAML, cert, key))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0"})
	rep, err := probe.Run(context.Background(), "alice@example.org", probe.Options{
		Resolver:  srv.DNSAddr().String(),
		ConnectTo: map[string]string{":80": srv.Addr().String(), ":443": srv.HTTPSAddr().String()},
		RootCAs:   ca.Pool(),
		Timeout:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	probe.WriteText(&text, rep, false)
	dav := map[string]probe.DAVView{}
	for _, d := range rep.DAV {
		dav[d.Source] = d
	}
	want := probe.DAVView{CalDAV: "https://dav.example.org/calendars/alice@example.org/", CardDAV: "https://dav.example.org:8443/card/alice/"}
	for _, source := range []string{"Apple profile", "autoconfig"} {
		if d := dav[source]; d.CalDAV != want.CalDAV || d.CardDAV != want.CardDAV {
			t.Errorf("%s: %+v, want %+v\n%s", source, d, want, text.String())
		}
	}
	for _, f := range rep.Findings {
		if f.Code == probe.CodeDAVDisagree {
			t.Errorf("disagreement on our own server: %+v\n%s", f, text.String())
		}
	}
}
