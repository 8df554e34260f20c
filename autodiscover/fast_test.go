package autodiscover

import (
	"strings"
	"testing"
)

// fastShapes builds the request shapes clients send, in every combination
// of declaration, layout, element-name case, namespace declarations and
// element order.
func fastShapes() []string {
	decls := []string{
		``,
		`<?xml version="1.0" encoding="utf-8"?>`,
		`<?xml version="1.0" encoding="UTF-8"?>` + "\r\n",
		`<?xml version='1.0' encoding='utf-8' standalone='yes'?>` + "\n",
		`<?xml version="1.0"?>`,
		`<?xml version="1.0" encoding="us-ascii"?>`,
		"\xef\xbb\xbf" + `<?xml version="1.0" encoding="utf-8"?>`,
		"\xef\xbb\xbf \r\n",
	}
	roots := []string{
		`<Autodiscover xmlns="` + NSRequest + `">`,
		`<Autodiscover xmlns="` + NSMobileReq + `">`,
		`<Autodiscover>`,
		`<autodiscover xmlns='` + NSRequest + `' >`,
		`<Autodiscover xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="` + NSRequest + `">`,
	}
	names := [][2]string{
		{"EMailAddress", "AcceptableResponseSchema"},
		{"EmailAddress", "AcceptableResponseSchema"},
		{"emailaddress", "acceptableresponseschema"},
	}
	layouts := []struct{ open, sep, close string }{
		{"", "", ""},
		{"\n  ", "\n  ", "\n"},
		{"\r\n\t", "\r\n\t", "\r\n"},
	}
	bodies := []struct{ email, schema string }{
		{"alice@example.com", NSOutlook},
		{" \n alice+tag@example.com\r\n ", "\n " + NSMobile + " \n"},
		{"Alice.O'Neil@example.com", ""},
		{`"quoted"@example.com`, strings.ToUpper(NSOutlook)},
	}
	var out []string
	for _, d := range decls {
		for _, r := range roots {
			for _, n := range names {
				for _, l := range layouts {
					for bi, b := range bodies {
						end := "</" + strings.Fields(strings.TrimPrefix(strings.TrimSuffix(r, ">"), "<"))[0] + ">"
						email := "<" + n[0] + ">" + b.email + "</" + n[0] + ">"
						schema := ""
						if b.schema != "" {
							schema = "<" + n[1] + ">" + b.schema + "</" + n[1] + ">"
						}
						inner := email + l.sep + schema
						if bi%2 == 1 && schema != "" {
							inner = schema + l.sep + email
						}
						out = append(out, d+r+l.open+"<Request>"+l.open+inner+l.close+"</Request>"+l.close+end+l.close)
					}
				}
			}
		}
	}
	return out
}

// TestParseFastAccepts: the fast path takes every common shape, and its
// result is the full parser's.
func TestParseFastAccepts(t *testing.T) {
	shapes := fastShapes()
	if len(shapes) < 1000 {
		t.Fatalf("only %d shapes", len(shapes))
	}
	for _, body := range shapes {
		fast, ok := parseFast([]byte(body))
		if !ok {
			t.Fatalf("fast path declined %q", body)
		}
		full, err := parseFull([]byte(body))
		if err != nil {
			t.Fatalf("full parser refused %q: %v", body, err)
		}
		if fast != full {
			t.Fatalf("%q: fast %+v, full %+v", body, fast, full)
		}
		if fast.Email == "" || strings.TrimSpace(fast.Email) != fast.Email {
			t.Fatalf("%q: email %q", body, fast.Email)
		}
	}
}

// TestParseFastDeclines: everything unusual is left to the full parser,
// whose answer ParseRequest then gives.
func TestParseFastDeclines(t *testing.T) {
	req := func(inner string) string {
		return `<Autodiscover xmlns="` + NSRequest + `"><Request>` + inner + `</Request></Autodiscover>`
	}
	email := `<EMailAddress>alice@example.com</EMailAddress>`
	cases := map[string]string{
		"DOCTYPE":                  `<!DOCTYPE Autodiscover>` + req(email),
		"internal entity":          `<!DOCTYPE a [<!ENTITY e "x">]>` + req(`<EMailAddress>&e;@example.com</EMailAddress>`),
		"predefined entity":        req(`<EMailAddress>a&amp;b@example.com</EMailAddress>`),
		"character reference":      req(`<EMailAddress>alice&#64;example.com</EMailAddress>`),
		"CDATA":                    req(`<EMailAddress><![CDATA[alice@example.com]]></EMailAddress>`),
		"comment before root":      `<!-- x -->` + req(email),
		"comment inside":           req(`<!-- x -->` + email),
		"comment in text":          req(`<EMailAddress>alice@example.com<!-- x --></EMailAddress>`),
		"processing instruction":   `<?xml-stylesheet href="x"?>` + req(email),
		"latin-1 declared":         `<?xml version="1.0" encoding="ISO-8859-1"?>` + req(email),
		"version 1.1":              `<?xml version="1.1"?>` + req(email),
		"spaces around =":          `<?xml version = "1.0"?>` + req(email),
		"duplicate pseudo-attr":    `<?xml version="1.0" version="1.0"?>` + req(email),
		"declaration not first":    ` x<?xml version="1.0"?>` + req(email),
		"other attribute":          `<Autodiscover foo="bar"><Request>` + email + `</Request></Autodiscover>`,
		"attribute on address":     req(`<EMailAddress xmlns="x">alice@example.com</EMailAddress>`),
		"reference in xmlns":       `<Autodiscover xmlns="a&amp;b"><Request>` + email + `</Request></Autodiscover>`,
		"prefixed":                 `<a:Autodiscover xmlns:a="` + NSRequest + `"><a:Request>` + email + `</a:Request></a:Autodiscover>`,
		"prefixed address":         req(`<a:EMailAddress xmlns:a="x">alice@example.com</a:EMailAddress>`),
		"LegacyDN":                 req(`<LegacyDN>/o=x</LegacyDN>` + email),
		"two addresses":            req(email + `<EMailAddress>bob@example.com</EMailAddress>`),
		"unknown element":          req(email + `<Other>x</Other>`),
		"self-closing schema":      req(email + `<AcceptableResponseSchema/>`),
		"self-closing root":        `<Autodiscover/>`,
		"nested element":           req(`<EMailAddress><b>alice@example.com</b></EMailAddress>`),
		"no address":               req(`<AcceptableResponseSchema>` + NSOutlook + `</AcceptableResponseSchema>`),
		"blank address":            req(`<EMailAddress> </EMailAddress>`),
		"non-ASCII address":        req(`<EMailAddress>jörg@bücher.example</EMailAddress>`),
		"reference to a surrogate": req(`<EMailAddress>a&#xD800;@example.com</EMailAddress>`),
		"U+FFFE in the address":    req("<EMailAddress>a\uFFFEb@example.com</EMailAddress>"),
		"U+FFFF in the address":    req("<EMailAddress>a\uFFFFb@example.com</EMailAddress>"),
		"zero-width space":         req("<EMailAddress>a\u200Bb@example.com</EMailAddress>"),
		"right-to-left override":   req("<EMailAddress>\u202Ealice@example.com</EMailAddress>"),
		"DEL in the address":       req("<EMailAddress>a\x7fb@example.com</EMailAddress>"),
		"CR inside the address":    req("<EMailAddress>al\rice@example.com</EMailAddress>"),
		"NUL in the address":       req("<EMailAddress>al\x00ice@example.com</EMailAddress>"),
		"'>' in the address":       req(`<EMailAddress>alice>@example.com</EMailAddress>`),
		"mismatched end tag":       `<Autodiscover><Request>` + email + `</request></Autodiscover>`,
		"blank in end tag":         `<Autodiscover><Request>` + email + `</Request ></Autodiscover>`,
		"text in Request":          req(`x` + email),
		"text after the root":      req(email) + `x`,
		"second root":              req(email) + `<Autodiscover/>`,
		"truncated":                req(email)[:60],
		"unterminated attribute":   `<Autodiscover xmlns="x><Request>` + email + `</Request></Autodiscover>`,
		"SOAP":                     `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`,
		"other root":               `<Autodiscoverx><Request>` + email + `</Request></Autodiscoverx>`,
		"long s in a name":         `<Autodiscover><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponse` + "\u017f" + `chema>x</AcceptableResponse` + "\u017f" + `chema></Request></Autodiscover>`,
		"over the size limit":      req(email) + strings.Repeat(" ", MaxBodyBytes),
		"empty":                    "",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if r, ok := parseFast([]byte(body)); ok {
				t.Fatalf("fast path accepted %q as %+v", body, r)
			}
			r1, err1 := ParseRequest([]byte(body))
			r2, err2 := parseFull([]byte(body))
			if r1 != r2 || (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
				t.Fatalf("ParseRequest %+v, %v; full parser %+v, %v", r1, err1, r2, err2)
			}
		})
	}
}

// FuzzFastRequest: whenever the fast path accepts a body, the full parser
// accepts it too, with exactly the same result.
func FuzzFastRequest(f *testing.F) {
	for i, s := range fastShapes() {
		if i%37 == 0 {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`<?xml version="1.0" encoding="utf8" standalone="no"?><Autodiscover xmlns:a_b.c-d='x'><Request><EmailAddress>a@b</EmailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<?xml?><Autodiscover><Request><EMailAddress>a@b</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a&amp;b@c</EMailAddress></Request></Autodiscover>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseFast(body)
		if !ok {
			return
		}
		full, err := parseFull(body)
		if err != nil {
			t.Fatalf("fast path accepted %q as %+v; the full parser refuses it: %v", body, fast, err)
		}
		if fast != full {
			t.Fatalf("%q: fast path %+v, full parser %+v", body, fast, full)
		}
	})
}
