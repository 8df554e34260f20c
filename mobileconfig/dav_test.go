package mobileconfig_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

const davProfileYAML = `
providers:
  - id: mail.example.com
    display_name: Example Mail
    domains: [example.com]
    aliases: {example.ch: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: pop3, host: pop.example.com}
      - {type: smtp, host: smtp.example.com}
    caldav:
      url: https://dav.example.com/calendars/%EMAILADDRESS%/
    carddav:
      url: https://%EMAILDOMAIN%:8443/card/%EMAILLOCALPART%/
      username: "%EMAILLOCALPART%"
    jmap:
      url: https://jmap.example.com/.well-known/jmap
  - id: mail.cal.test
    domains: [cal.test]
    servers:
      - {type: imap, host: imap.cal.test}
      - {type: smtp, host: smtp.cal.test}
    caldav: {url: "https://cal.cal.test/dav/"}
`

// davPayload is what a device takes from a CalDAV or CardDAV payload.
type davPayload struct {
	typ, host string
	port      int
	principal string
	ssl       bool
	user      string
}

// davPayloads decodes a profile and returns its mail payload count and
// its CalDAV and CardDAV payloads, in order.
func davPayloads(t *testing.T, body []byte) (mail int, dav []davPayload, uuids []string) {
	t.Helper()
	var top struct {
		PayloadContent []map[string]any `plist:"PayloadContent"`
		PayloadUUID    string           `plist:"PayloadUUID"`
	}
	if _, err := plist.Unmarshal(body, &top); err != nil {
		t.Fatalf("not a property list: %v\n%s", err, body)
	}
	uuids = append(uuids, top.PayloadUUID)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	for _, m := range top.PayloadContent {
		uuids = append(uuids, str(m, "PayloadUUID"))
		typ := str(m, "PayloadType")
		var pre string
		switch typ {
		case "com.apple.mail.managed":
			mail++
			continue
		case "com.apple.caldav.account":
			pre = "CalDAV"
		case "com.apple.carddav.account":
			pre = "CardDAV"
		default:
			t.Fatalf("payload type %q", typ)
		}
		port, _ := m[pre+"Port"].(uint64)
		ssl, _ := m[pre+"UseSSL"].(bool)
		dav = append(dav, davPayload{typ, str(m, pre+"HostName"), int(port), str(m, pre+"PrincipalURL"), ssl, str(m, pre+"Username")})
	}
	return mail, dav, uuids
}

// TestDAVProfile: with dav=1 a provider's calendars and contacts come as
// CalDAV and CardDAV payloads beside the mail payload (the canonical
// mailbox's URL, percent-encoded; host and port from the URL), unsigned
// and signed, and Apple's schema (mobileconfig.py) accepts them; without
// the parameter, or with dav=0, the profile is the mail profile. The
// profile with calendars keeps the mail profile's identifier, so one
// replaces the other on the device.
func TestDAVProfile(t *testing.T) {
	dir := t.TempDir()
	pk := newPKI(t, false)
	pk.write(t, dir)
	root := filepath.Join(dir, "root.pem")
	cfgPlain, err := config.Parse(filepath.Join(dir, "plain.yaml"), []byte(davProfileYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfgSigned, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(davProfileYAML+"signing:\n"+relativeSigning))
	if err != nil {
		t.Fatal(err)
	}
	plain := testutil.Start(t, cfgPlain, server.Options{})
	signed := testutil.Start(t, cfgSigned, server.Options{})

	cases := []struct {
		name, addr, proto string
		want              []davPayload
		expect            []string // validator arguments
		// warnings the validator is expected to give (then it runs
		// without --strict); none for the others.
		warnings int
	}{
		{"imap", "alice@example.com", "", []davPayload{
			{"com.apple.caldav.account", "dav.example.com", 443, "https://dav.example.com/calendars/alice@example.com/", true, "alice@example.com"},
			{"com.apple.carddav.account", "example.com", 8443, "https://example.com:8443/card/alice/", true, "alice"},
		}, []string{"--expect-caldav", "dav.example.com", "--expect-carddav", "example.com"}, 0},
		{"pop3", "alice@example.com", "pop3", []davPayload{
			{"com.apple.caldav.account", "dav.example.com", 443, "https://dav.example.com/calendars/alice@example.com/", true, "alice@example.com"},
			{"com.apple.carddav.account", "example.com", 8443, "https://example.com:8443/card/alice/", true, "alice"},
		}, []string{"--expect-caldav", "dav.example.com", "--expect-carddav", "example.com"}, 0},
		// The DAV server knows the mailbox, not the alias: URL and login
		// name are the canonical mailbox's.
		{"alias", "Bob@example.ch", "", []davPayload{
			{"com.apple.caldav.account", "dav.example.com", 443, "https://dav.example.com/calendars/Bob@example.com/", true, "Bob@example.com"},
			{"com.apple.carddav.account", "example.com", 8443, "https://example.com:8443/card/Bob/", true, "Bob"},
		}, []string{"--expect-caldav", "dav.example.com", "--expect-carddav", "example.com"},
			// The validator's policy warns that the CalDAV login is an
			// address other than the one the profile is for.
			1},
		{"hostile local part", "a/b?c#d&e@example.com", "", []davPayload{
			{"com.apple.caldav.account", "dav.example.com", 443, "https://dav.example.com/calendars/a%2Fb%3Fc%23d&e@example.com/", true, "a/b?c#d&e@example.com"},
			{"com.apple.carddav.account", "example.com", 8443, "https://example.com:8443/card/a%2Fb%3Fc%23d&e/", true, "a/b?c#d&e"},
		}, []string{"--expect-caldav", "dav.example.com", "--expect-carddav", "example.com"}, 0},
		{"calendar only", "carol@cal.test", "", []davPayload{
			{"com.apple.caldav.account", "cal.cal.test", 443, "https://cal.cal.test/dav/", true, "carol@cal.test"},
		}, []string{"--expect-caldav", "cal.cal.test"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := query("emailaddress", c.addr, "dav", "1")
			if c.proto != "" {
				q.Set("protocol", c.proto)
			}
			r := fetch(t, plain, "/mobileconfig", q, http.StatusOK)
			mail, got, uuids := davPayloads(t, r.Body)
			if mail != 1 || len(got) != len(c.want) {
				t.Fatalf("%d mail payloads, DAV payloads %+v, want %+v\n%s", mail, got, c.want, r.Body)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("payload %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
			seen := map[string]bool{}
			for _, u := range uuids {
				if u == "" || seen[u] {
					t.Errorf("PayloadUUIDs not unique: %q", uuids)
				}
				seen[u] = true
			}
			args := append([]string{"--content-type", r.Header.Get("Content-Type"), "--for-address", c.addr}, c.expect...)
			if c.warnings == 0 {
				args = append(args, "--strict")
			}
			out := testutil.Validate(t, "mobileconfig.py", r.Body, "dav.mobileconfig", args...)
			if n := strings.Count(out, "WARNING:"); out != "" && n != c.warnings {
				t.Errorf("%d warnings, want %d:\n%s", n, c.warnings, out)
			}

			// The same, signed: the content is the unsigned profile.
			s := fetch(t, signed, "/mobileconfig", q, http.StatusOK)
			out = testutil.Validate(t, "mobileconfig.py", s.Body, "signed.mobileconfig", append(args, "--ca", root)...)
			if out != "" && !strings.Contains(out, "signature verified") {
				t.Errorf("validator did not verify a signature:\n%s", out)
			}
			p7, err := pkcs7.Parse(s.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p7.Content, r.Body) {
				t.Errorf("signed content differs from the unsigned profile")
			}

			// Mail only: asked for, or by default.
			mailOnly := query("emailaddress", c.addr)
			if c.proto != "" {
				mailOnly.Set("protocol", c.proto)
			}
			m := fetch(t, plain, "/mobileconfig", mailOnly, http.StatusOK)
			if n, d, _ := davPayloads(t, m.Body); n != 1 || len(d) != 0 {
				t.Errorf("without dav: %d mail payloads, %d DAV payloads", n, len(d))
			}
			mailOnly.Set("dav", "0")
			if m0 := fetch(t, plain, "/mobileconfig", mailOnly, http.StatusOK); !bytes.Equal(m0.Body, m.Body) {
				t.Errorf("dav=0 differs from no dav parameter")
			}
			testutil.Validate(t, "mobileconfig.py", m.Body, "mail.mobileconfig", "--strict", "--for-address", c.addr)

			// One profile replaces the other: same identifiers.
			var a, b struct {
				PayloadIdentifier string `plist:"PayloadIdentifier"`
				PayloadUUID       string `plist:"PayloadUUID"`
			}
			if _, err := plist.Unmarshal(r.Body, &a); err != nil {
				t.Fatal(err)
			}
			if _, err := plist.Unmarshal(m.Body, &b); err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Errorf("identifiers differ: %+v and %+v", a, b)
			}
		})
	}

	for _, bad := range []string{"2", "maybe", "yes please"} {
		r := fetch(t, plain, "/mobileconfig", query("emailaddress", "alice@example.com", "dav", bad), http.StatusBadRequest)
		if !strings.Contains(string(r.Body), "dav must be") {
			t.Errorf("dav=%s: %s", bad, r.Body)
		}
	}
}
