package autodiscover

import "bytes"

// parseFast reads the request nearly every client sends without building an
// XML tree:
//
//	<?xml version="1.0" encoding="utf-8"?>
//	<Autodiscover xmlns="…/requestschema/2006">
//	  <Request>
//	    <EMailAddress>alice@example.com</EMailAddress>
//	    <AcceptableResponseSchema>…/responseschema/2006a</AcceptableResponseSchema>
//	  </Request>
//	</Autodiscover>
//
// The full parser (etree on encoding/xml) costs about fifty times as much,
// most of it for generality no client uses. What is read here: an optional
// byte-order mark and leading white space, an optional XML declaration
// (version 1.0; an encoding that reads UTF-8 as it is; standalone), white
// space between elements, element names in any case (Outlook writes
// EMailAddress, eM Client EmailAddress, scripts often lower case), namespace
// declarations on Autodiscover and Request (.NET's XmlSerializer adds
// xmlns:xsi and xmlns:xsd), EMailAddress and AcceptableResponseSchema each
// at most once and in either order, and printable ASCII text with blanks
// around it.
//
// Anything else is left to the full parser, which keeps every protection
// against hostile XML: ok is false for a DOCTYPE or any other "<!", a
// processing instruction other than the declaration, comments, CDATA,
// entity and character references, prefixed names, attributes other than
// namespace declarations, self-closing or unknown elements, non-ASCII text,
// and text outside the two elements. Whenever ok is true, the result is
// exactly what the full parser returns for the same body; FuzzFastRequest
// checks that. Printable ASCII is all in the address alphabet
// (internal/address), so every character that alphabet refuses, written as
// it is or as a reference (&#xFFFE;, &#xD800;), takes the full parser's
// way: a reference to a non-character is refused there as ill-formed, the
// rest by the address parser.
func parseFast(body []byte) (r Request, ok bool) {
	p := bytes.TrimPrefix(body, utf8BOM)
	p = bytes.TrimLeft(p, " \t\r\n")
	if len(p) == 0 || len(p) > MaxBodyBytes {
		return Request{}, false
	}
	if bytes.HasPrefix(p, []byte("<?xml")) {
		if p, ok = declaration(p[len("<?xml"):]); !ok {
			return Request{}, false
		}
		p = skipSpace(p)
	}
	root, p, ok := startTag(p, "Autodiscover")
	if !ok {
		return Request{}, false
	}
	req, p, ok := startTag(skipSpace(p), "Request")
	if !ok {
		return Request{}, false
	}
	var email, schema []byte
	var haveEmail, haveSchema bool
	for {
		p = skipSpace(p)
		if bytes.HasPrefix(p, []byte("</")) {
			break
		}
		var name, text []byte
		if name, text, p, ok = textElement(p); !ok {
			return Request{}, false
		}
		switch {
		case !haveEmail && asciiEqualFold(name, "EMailAddress"):
			email, haveEmail = text, true
		case !haveSchema && asciiEqualFold(name, "AcceptableResponseSchema"):
			schema, haveSchema = text, true
		default:
			// LegacyDN, a second address, anything unknown: the full
			// parser decides what it means.
			return Request{}, false
		}
	}
	if p, ok = endTag(p, req); !ok {
		return Request{}, false
	}
	if p, ok = endTag(skipSpace(p), root); !ok {
		return Request{}, false
	}
	if len(skipSpace(p)) != 0 {
		return Request{}, false
	}
	// The full parser reads the text with \r\n and \r turned into \n,
	// then trims it; both agree unless a \r is left inside.
	email = bytes.TrimSpace(email)
	schema = bytes.TrimSpace(schema)
	if len(email) == 0 || bytes.IndexByte(email, '\r') >= 0 || bytes.IndexByte(schema, '\r') >= 0 {
		return Request{}, false
	}
	return Request{Email: string(email), Schema: internSchema(schema)}, true
}

// internSchema returns the schema as a string, without allocating for the
// two namespaces clients ask for.
func internSchema(b []byte) string {
	switch string(b) {
	case NSOutlook:
		return NSOutlook
	case NSMobile:
		return NSMobile
	case "":
		return ""
	}
	return string(b)
}

// isSpace reports whether c is XML white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipSpace(p []byte) []byte {
	for len(p) > 0 && isSpace(p[0]) {
		p = p[1:]
	}
	return p
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// letters returns the leading ASCII letters of p.
func letters(p []byte) []byte {
	i := 0
	for i < len(p) && isLetter(p[i]) {
		i++
	}
	return p[:i]
}

// asciiEqualFold compares an ASCII name with a constant, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// declaration reads the rest of an XML declaration after "<?xml": version,
// encoding and standalone pseudo-attributes, each at most once, written
// name="value" or name='value'.
func declaration(p []byte) ([]byte, bool) {
	var seen [3]bool
	for {
		rest := skipSpace(p)
		if bytes.HasPrefix(rest, []byte("?>")) {
			return rest[2:], true
		}
		if len(rest) == len(p) {
			return nil, false // no white space before a pseudo-attribute
		}
		name := letters(rest)
		rest = rest[len(name):]
		if len(rest) < 2 || rest[0] != '=' || (rest[1] != '"' && rest[1] != '\'') {
			return nil, false
		}
		end := bytes.IndexByte(rest[2:], rest[1])
		if end < 0 {
			return nil, false
		}
		value := rest[2 : 2+end]
		p = rest[2+end+1:]
		var i int
		switch string(name) {
		case "version":
			i = 0
			if string(value) != "1.0" {
				return nil, false
			}
		case "encoding":
			i = 1
			// Only the names asciiCompatible accepts, spelt in
			// letters, digits and '-': nothing a regular expression
			// or the decoder could read differently.
			for _, c := range value {
				if !isLetter(c) && (c < '0' || c > '9') && c != '-' {
					return nil, false
				}
			}
			if !asciiCompatible(string(value)) {
				return nil, false
			}
		case "standalone":
			i = 2
			if string(value) != "yes" && string(value) != "no" {
				return nil, false
			}
		default:
			return nil, false
		}
		if seen[i] {
			return nil, false
		}
		seen[i] = true
	}
}

// startTag reads <name …> where the element name equals want without
// regard to case. The only attributes read are namespace declarations
// (xmlns="…", xmlns:prefix="…"), whose values do not matter: names are
// compared without namespaces. It returns the name as written, for the end
// tag.
func startTag(p []byte, want string) (name, rest []byte, ok bool) {
	if len(p) == 0 || p[0] != '<' {
		return nil, nil, false
	}
	name = letters(p[1:])
	if !asciiEqualFold(name, want) {
		return nil, nil, false
	}
	p = p[1+len(name):]
	for {
		rest := skipSpace(p)
		if len(rest) > 0 && rest[0] == '>' {
			return name, rest[1:], true
		}
		if len(rest) == len(p) {
			return nil, nil, false // '/', a longer name, or no blank before an attribute
		}
		if p, ok = nsAttr(rest); !ok {
			return nil, nil, false
		}
	}
}

// nsAttr reads one xmlns="…" or xmlns:prefix="…" attribute. The value may
// hold printable ASCII except '<' and '&' (no references).
func nsAttr(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("xmlns")) {
		return nil, false
	}
	p = p[len("xmlns"):]
	if len(p) > 0 && p[0] == ':' {
		p = p[1:]
		n := 0
		for n < len(p) && (isLetter(p[n]) || p[n] == '_' || n > 0 && (p[n] >= '0' && p[n] <= '9' || p[n] == '-' || p[n] == '.')) {
			n++
		}
		if n == 0 {
			return nil, false
		}
		p = p[n:]
	}
	if len(p) < 2 || p[0] != '=' || (p[1] != '"' && p[1] != '\'') {
		return nil, false
	}
	q := p[1]
	i := 2
	for i < len(p) && attrByte[p[i]] && p[i] != q {
		i++
	}
	if i < len(p) && p[i] == q {
		return p[i+1:], true
	}
	return nil, false
}

// attrByte and textByte are the bytes an attribute value (besides its
// quote) and element text may hold here: printable ASCII without '<' and
// '&' (no references), and for text also without '>' and with XML white
// space. Tables rather than comparisons: these loops read most of a
// request's bytes.
var attrByte, textByte = func() (a, t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		a[c] = c != '<' && c != '&'
		t[c] = a[c] && c != '>'
	}
	for _, c := range []byte{' ', '\t', '\r', '\n'} {
		t[c] = true
	}
	return a, t
}()

// endTag reads </name> with exactly the name of the start tag.
func endTag(p, name []byte) ([]byte, bool) {
	if len(p) < len(name)+3 || p[0] != '<' || p[1] != '/' ||
		!bytes.Equal(p[2:2+len(name)], name) || p[2+len(name)] != '>' {
		return nil, false
	}
	return p[len(name)+3:], true
}

// textElement reads <name>text</name>: no attributes, no child elements,
// and text of printable ASCII and XML white space, without '&', '<' or '>'.
func textElement(p []byte) (name, text, rest []byte, ok bool) {
	if len(p) < 2 || p[0] != '<' {
		return nil, nil, nil, false
	}
	name = letters(p[1:])
	if len(name) == 0 || len(p) < 2+len(name) || p[1+len(name)] != '>' {
		return nil, nil, nil, false
	}
	p = p[2+len(name):]
	i := 0
	for i < len(p) && textByte[p[i]] {
		i++
	}
	if i < len(p) && p[i] != '<' {
		return nil, nil, nil, false
	}
	text = p[:i]
	if rest, ok = endTag(p[i:], name); !ok {
		return nil, nil, nil, false
	}
	return name, text, rest, true
}
