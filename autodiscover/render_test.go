package autodiscover

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

const renderYAML = `
providers:
  - id: mail.example.com
    display_name: Example & Co <Mail>
    domains: [example.com, "*.example.net"]
    aliases:
      example.org: example.com
    activesync_url: https://eas.example.com/Microsoft-Server-ActiveSync
    username: "%EMAILADDRESS%"
    servers:
      - {type: imap, host: imap.example.com}
      - {type: pop3, host: pop.example.com, username: "%EMAILLOCALPART%"}
      - {type: smtp, host: smtp.example.com, port: 587, username: "%EMAILDOMAIN%\\%EMAILLOCALPART%"}
  - id: mail.other.test
    domains: [other.test]
    username: "u-%EMAILLOCALPART%-%EMAILDOMAIN%"
    servers:
      - {type: pop3, host: pop.other.test, security: starttls}
      - {type: smtp, host: smtp.other.test, authentication: client-IP-address}
`

// fillByHand renders doc the slow, obvious way: serialise the tree and
// replace each marker by its escaped value.
func fillByHand(t *testing.T, doc *etree.Document, local, domain string) []byte {
	t.Helper()
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(
		tmpl.Marker(slotAddress), tmpl.EscapeXML(local+"@"+domain),
		tmpl.Marker(slotLocal), tmpl.EscapeXML(local),
		tmpl.Marker(slotAddrDomain), domain,
	).Replace(s))
}

// TestRenderMatchesDocument: the compiled answers, filled into reused
// buffers, are byte for byte the documents the tree builders describe.
func TestRenderMatchesDocument(t *testing.T) {
	cfg, err := config.Parse("render.yaml", []byte(renderYAML))
	if err != nil {
		t.Fatal(err)
	}
	cat := settings.New(cfg)
	r, err := NewRenderer(cat)
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{"alice@example.com", "Alice.Smith@Example.COM", "a&b@example.com", "x+tag@sub.example.net",
		"bob@example.org", "b&o@example.org", "dave@other.test", "d{a}v|e~!#$%^*=?@other.test", " carol @ other.test "}
	var buf []byte
	for _, a := range addrs {
		s, err := cat.ForAddress(a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		p := s.Provider
		want := fillByHand(t, Document(p), s.Address.Local, s.Address.Domain)
		wantMobile := []byte(nil)
		if p.ActiveSyncURL != "" {
			wantMobile = fillByHand(t, MobileDocument(p.ActiveSyncURL), s.Address.Local, s.Address.Domain)
		}
		if s.CanonicalDomain != "" {
			c := s.Canonical()
			want = fillByHand(t, RedirectDocument(), c.Local, c.Domain)
			wantMobile = fillByHand(t, MobileRedirectDocument(), c.Local, c.Domain)
		}
		if got := r.Settings(s); string(got) != string(want) {
			t.Errorf("%s: Settings\n%s\nwant\n%s", a, got, want)
		}
		buf = append(buf[:0], "left over from the last request"...)
		if buf = r.AppendSettings(buf[:0], s); string(buf) != string(want) {
			t.Errorf("%s: AppendSettings\n%s\nwant\n%s", a, buf, want)
		}
		got, ok := r.AppendMobile(buf[:0], s)
		if ok != (wantMobile != nil) || (ok && string(got) != string(wantMobile)) {
			t.Errorf("%s: AppendMobile %v\n%s\nwant\n%s", a, ok, got, wantMobile)
		}
	}
	now := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("x", 3600))
	for k, spec := range errorSpecs {
		doc, err := ErrorDocument(spec.ns, spec.code, spec.message, serverID(cat)).WriteToString()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.NewReplacer(tmpl.Marker(slotTime), "22:59:58.1234567", tmpl.Marker(slotDebug), "a &lt;b&gt; &amp; c").Replace(doc)
		if got := r.AppendError(buf[:0], errorKind(k), now, "a <b> & c"); string(got) != want {
			t.Errorf("error %d:\n%s\nwant\n%s", k, got, want)
		}
	}
}

// TestV1JSON: the pre-rendered v2 answer is what encoding/json writes, and
// anything JSON would escape is left to encoding/json.
func TestV1JSON(t *testing.T) {
	for _, d := range []string{"autodiscover.example.com", "autodiscover.xn--bcher-kva.ch", "a-b.c0.example", "x", "", "EXAMPLE.com", "a<b>.example", `a"b`, "a&b", "a\u2028b", "a\\b", "a_b.example", "a\x00b"} {
		want, err := json.Marshal(jsonAnswer{ProtocolV1, "https://" + d + POXPath})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendV1JSON([]byte("keep:"), d)
		if !ok {
			if string(got) != "keep:" {
				t.Errorf("%q: declined but wrote %q", d, got)
			}
			if strings.Trim(d, "abcdefghijklmnopqrstuvwxyz0123456789.-") == "" {
				t.Errorf("%q: declined", d)
			}
			continue
		}
		if string(got) != "keep:"+string(want) {
			t.Errorf("%q: %s, want %s", d, got, want)
		}
	}
}
