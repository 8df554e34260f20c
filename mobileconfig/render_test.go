package mobileconfig

import (
	"mime"
	"strings"
	"testing"

	"github.com/google/uuid"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

// identByHand is the PayloadIdentifier component, written the obvious way.
func identByHand(a string) string {
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-':
			b.WriteByte(c)
		default:
			b.WriteString("_" + "0123456789abcdef"[c>>4:c>>4+1] + "0123456789abcdef"[c&15:c&15+1])
		}
	}
	return b.String()
}

// fileNameByHand is FileName, written the obvious way.
func fileNameByHand(address string) string {
	var b strings.Builder
	for _, c := range address {
		if b.Len() >= 100 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if name == "" {
		name = "mail"
	}
	return name + ".mobileconfig"
}

// profileByHand renders a profile the slow, obvious way: the property list
// of Document, with every marker replaced by its value, UUIDs from the
// uuid package.
func profileByHand(t *testing.T, p *settings.Provider, proto string, a settings.Settings, name string) string {
	t.Helper()
	doc, err := Document(p, proto, name != "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := plist.MarshalIndent(doc, plist.XMLFormat, "\t")
	if err != nil {
		t.Fatal(err)
	}
	addr := a.Address.String()
	canon := strings.ToLower(addr)
	ns := uuid.NewSHA1(uuid.NameSpaceDNS, []byte(p.ID))
	return strings.NewReplacer(
		tmpl.Marker(slotAddress), tmpl.EscapeXML(addr),
		tmpl.Marker(slotLocal), tmpl.EscapeXML(a.Address.Local),
		tmpl.Marker(slotAddrDomain), a.Address.Domain,
		tmpl.Marker(slotIdent), identByHand(canon),
		tmpl.Marker(slotProfileUUID), strings.ToUpper(uuid.NewSHA1(ns, []byte("profile\x00"+canon)).String()),
		tmpl.Marker(slotMailUUID), strings.ToUpper(uuid.NewSHA1(ns, []byte("mail\x00"+canon)).String()),
		tmpl.Marker(slotName), tmpl.EscapeXML(name),
		// Login names: the mailbox's (for an alias, the canonical domain).
		tmpl.Marker(slotCanonAddress), tmpl.EscapeXML(a.Canonical().String()),
		tmpl.Marker(slotCanonLocal), tmpl.EscapeXML(a.Canonical().Local),
		tmpl.Marker(slotCanonDomain), a.Canonical().Domain,
	).Replace(string(b) + "\n")
}

const renderYAML = `
providers:
  - id: mail.example.com
    display_name: Example & Co <Mail>
    domains: [example.com, "*.example.net"]
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

// TestUnsignedMatchesDocument: profiles filled from the compiled templates,
// with identifiers and UUIDs derived on the stack, are byte for byte the
// documents Document describes, for addresses of every kind.
func TestUnsignedMatchesDocument(t *testing.T) {
	cfg, err := config.Parse("render.yaml", []byte(renderYAML))
	if err != nil {
		t.Fatal(err)
	}
	cat := settings.New(cfg)
	r, err := NewRenderer(cat)
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{
		"alice@example.com", "Alice.Smith@Example.COM", "a&b@example.com", "x+tag@sub.example.net",
		"a_b/c%d=e{f}g|h~i!j#k$l^m*n?o@example.com", "JÖRG@example.com", "İstanbul@example.com", "ǅemal@example.com",
		"dave@other.test", strings.Repeat("A", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 50) + ".example.net",
		"-x.y-@example.com",
	}
	buf := []byte("left over from the last request")
	for _, a := range addrs {
		s, err := cat.ForAddress(a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		for _, proto := range []string{"", "imap", "pop3"} {
			for _, name := range []string{"", "Ann & <Bob>", "\uE0000\uE001"} {
				req := Request{Settings: s, Protocol: proto, Name: name}
				got, err := r.Unsigned(buf[:0], req)
				want := proto
				if want == "" {
					want = protocols[r.first[s.Provider.Index]]
				}
				if err != nil {
					if _, derr := Document(s.Provider, want, false); derr == nil {
						t.Fatalf("%s %s: %v", a, proto, err)
					}
					continue
				}
				buf = got
				if exp := profileByHand(t, s.Provider, want, s, name); string(got) != exp {
					t.Fatalf("%s %s %q:\n%s\nwant\n%s", a, proto, name, got, exp)
				}
			}
		}
		addr := s.Address.String()
		if got, want := contentDisposition(s.Address.Local, s.Address.Domain),
			mime.FormatMediaType("attachment", map[string]string{"filename": fileNameByHand(addr)}); got != want {
			t.Errorf("%s: Content-Disposition %q, want %q", a, got, want)
		}
	}
}

// TestFileName compares appendFileName with the obvious implementation on
// strings no address parser would pass.
func TestFileName(t *testing.T) {
	for _, s := range []string{"", ".", "...", "..a", "a.b", "ä", strings.Repeat("ü", 150), strings.Repeat(".", 120) + "x",
		strings.Repeat("x", 99) + "ää", `a"b\c`, "a b\tc", "\xff\xfe", "mail"} {
		if got, want := FileName(s), fileNameByHand(s); got != want {
			t.Errorf("FileName(%q) = %q, want %q", s, got, want)
		}
		if got, want := string(appendFileName(nil, s, "@", s)), fileNameByHand(s+"@"+s); got != want {
			t.Errorf("parts %q: %q, want %q", s, got, want)
		}
		local, domain, _ := strings.Cut(s, "@")
		if got, want := contentDisposition(local, domain), mime.FormatMediaType("attachment", map[string]string{"filename": fileNameByHand(local + "@" + domain)}); got != want {
			t.Errorf("contentDisposition(%q, %q) = %q, want %q", local, domain, got, want)
		}
	}
}
