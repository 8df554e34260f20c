package autodiscover

import (
	"bytes"
	"strings"
	"testing"
)

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
