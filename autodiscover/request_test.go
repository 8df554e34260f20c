package autodiscover

import (
	"bytes"
	"strings"
	"testing"
)

// addr is a request with the given EMailAddress content.
func addr(inner string) string {
	return `<Autodiscover xmlns="` + NSRequest + `"><Request><EMailAddress>` + inner + `</EMailAddress></Request></Autodiscover>`
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, body   string
		email, error string
		schema       string
	}{
		{name: "textbook", body: `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + NSRequest + `"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>` + NSOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`,
			email: "a@b.example", schema: NSOutlook},
		{name: "mobilesync request namespace", body: `<Autodiscover xmlns="` + NSMobileReq + `"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>` + NSMobile + `</AcceptableResponseSchema></Request></Autodiscover>`,
			email: "a@b.example", schema: NSMobile},
		{name: "lower-case names", body: `<autodiscover><request><emailaddress> a@b.example </emailaddress></request></autodiscover>`, email: "a@b.example"},
		{name: "escaped text", body: `<Autodiscover><Request><EMailAddress>a&amp;b@c.example</EMailAddress></Request></Autodiscover>`, email: "a&b@c.example"},
		{name: "single-quoted utf8 declaration", body: `<?xml version='1.0' encoding='UTF-8'?><Autodiscover><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`, email: "a@b.example"},
		{name: "windows-1252", body: `<?xml version="1.0" encoding="windows-1252"?><Autodiscover/>`, error: `encoding "windows-1252" is not supported`},
		{name: "hostile encoding name", body: `<?xml version="1.0" encoding="<x>&amp;"?><Autodiscover/>`, error: `encoding "?x??amp?" is not supported`},
		{name: "ELEMENT declaration", body: `<!ELEMENT a ANY><Autodiscover/>`, error: "DTDs and entity declarations"},
		{name: "DOCTYPE inside CDATA is text", body: `<Autodiscover><Request><EMailAddress><![CDATA[<!DOCTYPE x>]]></EMailAddress></Request></Autodiscover>`, email: "<!DOCTYPE x>"},
		{name: "unterminated CDATA", body: `<Autodiscover><![CDATA[`, error: "unterminated CDATA"},
		{name: "depth 16 is fine", body: `<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress>` + strings.Repeat("<x>", 14) + strings.Repeat("</x>", 14) + `</Request></Autodiscover>`, email: "a@b.example"},
		{name: "depth 17 is not", body: `<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress>` + strings.Repeat("<x>", 15) + strings.Repeat("</x>", 15) + `</Request></Autodiscover>`, error: "deeper than 16"},

		// Character references: XML 1.0's "Legal Character" constraint,
		// which encoding/xml does not apply to surrogates (it reads
		// &#xD800; as U+FFFD).
		{name: "reference to a surrogate", body: addr("a&#xD800;b@example.com"), error: "character reference to U+D800, which is not an XML character"},
		{name: "reference to the last surrogate", body: addr("a&#xdfff;b@example.com"), error: "U+DFFF"},
		{name: "decimal reference to a surrogate", body: addr("a&#55296;b@example.com"), error: "U+D800"},
		{name: "reference to a surrogate, leading zeros", body: addr("a&#x000D800;b@example.com"), error: "U+D800"},
		{name: "reference to U+FFFE", body: addr("a&#xFFFE;b@example.com"), error: "U+FFFE"},
		{name: "reference to U+FFFF", body: addr("a&#65535;b@example.com"), error: "U+FFFF"},
		{name: "reference to NUL", body: addr("a&#0;b@example.com"), error: "U+0000"},
		{name: "reference to a C0 control", body: addr("a&#x1;b@example.com"), error: "U+0001"},
		{name: "reference to a surrogate in an attribute", body: `<Autodiscover xmlns="&#xD800;"><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`, error: "U+D800"},
		{name: "reference to a surrogate in the schema", body: `<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>&#xD800;</AcceptableResponseSchema></Request></Autodiscover>`, error: "U+D800"},
		{name: "reference beyond U+10FFFF", body: addr("a&#x110000;b@example.com"), error: "not well-formed"},
		{name: "reference of nine digits", body: addr("a&#x1000000041;b@example.com"), error: "not well-formed"},
		{name: "reference without digits", body: addr("a&#x;b@example.com"), error: "not well-formed"},
		{name: "reference without semicolon", body: addr("a&#x41b@example.com"), error: "not well-formed"},
		{name: "references to letters", body: addr("&#x61;&#108;ice@example.com"), email: "alice@example.com"},
		{name: "reference with leading zeros", body: addr("&#x0000000061;lice@example.com"), email: "alice@example.com"},
		{name: "reference to a plane-16 character", body: addr("&#x10FFFD;@example.com"), email: "\U0010FFFD@example.com"},
		{name: "reference to U+FFFD is a character", body: addr("a&#xFFFD;@example.com"), email: "a\ufffd@example.com"},
		{name: "surrogate reference inside CDATA is text", body: addr("<![CDATA[a&#xD800;]]>@example.com"), email: "a&#xD800;@example.com"},
		{name: "surrogate reference inside a comment", body: `<!-- &#xD800; -->` + addr("a@b.example"), email: "a@b.example"},
		{name: "surrogate reference inside a processing instruction", body: `<?pi &#xD800;?>` + addr("a@b.example"), email: "a@b.example"},
		{name: "exactly 16 KiB", body: func() string {
			b := `<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`
			return b + strings.Repeat("\n", MaxBodyBytes-len(b))
		}(), email: "a@b.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRequest([]byte(c.body))
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) || !IsRequestError(err) {
					t.Fatalf("error %v, want one containing %q", err, c.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Email != c.email || r.Schema != c.schema {
				t.Errorf("got %+v, want email %q schema %q", r, c.email, c.schema)
			}
		})
	}
}

// FuzzParseRequest: no input panics, and every refusal is a RequestError
// whose message is safe to send back.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`))
	f.Add([]byte("\xef\xbb\xbf <?xml version='1.0' encoding='latin1'?><x/>"))
	f.Add([]byte(`<a:Autodiscover xmlns:a="x"><a:Request><a:EmailAddress>q</a:EmailAddress></a:Request></a:Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a&#xD800;@b.example</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a&#65534;&#x0000000000041;&#x;@b.example</EMailAddress></Request></Autodiscover>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			if !IsRequestError(err) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.Email == "" || len(bytes.TrimLeft(bytes.TrimPrefix(body, utf8BOM), " \t\r\n")) > MaxBodyBytes {
			t.Fatalf("accepted %q as %+v", body, r)
		}
	})
}
