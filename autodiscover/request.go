package autodiscover

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Limits for request bodies. A real request is about 350 bytes; 16 KiB
// leaves room for clients that pad or add elements of their own. The depth
// of a real request is 3 (Autodiscover/Request/EMailAddress).
const (
	MaxBodyBytes = 16 << 10
	MaxDepth     = 16
)

// Request is what a client asks in a POX Autodiscover request.
type Request struct {
	// Email is the EMailAddress element's text, trimmed but otherwise as
	// sent; settings.Catalog.ForAddress parses and normalises it.
	Email string
	// Schema is the AcceptableResponseSchema, "" when the client sent
	// none.
	Schema string
}

// RequestError explains why a request body was refused. Its message never
// repeats the input, so it can go back to the client as DebugData.
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return "invalid Autodiscover request: " + e.Reason }

func badRequest(format string, args ...any) error {
	return &RequestError{Reason: fmt.Sprintf(format, args...)}
}

// IsRequestError reports whether err is (or wraps) a *RequestError.
func IsRequestError(err error) bool {
	var e *RequestError
	return errors.As(err, &e)
}

var utf8BOM = []byte("\xef\xbb\xbf")

// ParseRequest reads an Autodiscover request body.
//
// Tolerated, because real clients send it: a UTF-8 byte-order mark and
// white space before the XML declaration or root (some Outlook builds and
// scripted PowerShell requests), a missing or different namespace on any
// element (the request schema was never enforced by Exchange either), and
// the spelling EmailAddress for EMailAddress (eM Client, hand-written
// test requests). Element names are compared without regard to case.
//
// Refused before any XML parser sees it: anything but UTF-8, and every
// markup declaration (<!DOCTYPE, <!ENTITY, …): no client sends one, and
// they are the vehicle of entity-expansion ("billion laughs") and external
// entity attacks. The tree depth is bounded by the parser.
//
// The common request shape is read by parseFast without any XML parser;
// everything else goes through parseFull, with the same result.
func ParseRequest(body []byte) (Request, error) {
	if r, ok := parseFast(body); ok {
		return r, nil
	}
	return parseFull(body)
}

// parseFull reads any request with etree, after the checks above.
func parseFull(body []byte) (Request, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return Request{}, badRequest("the request body is empty")
	}
	if len(body) > MaxBodyBytes {
		return Request{}, badRequest("the request body is larger than %d bytes", MaxBodyBytes)
	}
	if !utf8.Valid(body) {
		return Request{}, badRequest("the request body is not UTF-8")
	}
	if err := checkDeclarations(body); err != nil {
		return Request{}, err
	}
	if err := checkCharRefs(body); err != nil {
		return Request{}, err
	}
	if m := encodingDecl.FindSubmatch(body); m != nil && !asciiCompatible(string(m[1])) {
		return Request{}, badRequest("encoding %q is not supported; send UTF-8", sanitize(string(m[1])))
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{
		CharsetReader: refuseCharset,
		MaxDepth:      MaxDepth,
	}
	if err := doc.ReadFromBytes(body); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return Request{}, badRequest("the XML is nested deeper than %d levels", MaxDepth)
		}
		// The parser's message may quote the input: not passed on.
		return Request{}, badRequest("the request body is not well-formed XML")
	}
	root := doc.Root()
	if root == nil {
		return Request{}, badRequest("the request body is not well-formed XML (no root element)")
	}
	if !strings.EqualFold(root.Tag, "Autodiscover") {
		// A SOAP envelope lands here: SOAP Autodiscover (GetUserSettings)
		// is Exchange's EWS protocol, not offered by this service.
		return Request{}, badRequest("the root element is not Autodiscover (SOAP Autodiscover is not supported)")
	}
	req := child(root, "Request")
	if req == nil {
		return Request{}, badRequest("no Autodiscover/Request element")
	}
	var r Request
	if e := child(req, "EMailAddress"); e != nil {
		r.Email = strings.TrimSpace(e.Text())
	}
	if r.Email == "" {
		if child(req, "LegacyDN") != nil {
			return Request{}, badRequest("a LegacyDN names an Exchange mailbox; send EMailAddress")
		}
		return Request{}, badRequest("no EMailAddress in the request")
	}
	if e := child(req, "AcceptableResponseSchema"); e != nil {
		r.Schema = strings.TrimSpace(e.Text())
	}
	return r, nil
}

// child finds the first child element called name, in any namespace and
// any case.
func child(e *etree.Element, name string) *etree.Element {
	for _, c := range e.ChildElements() {
		if strings.EqualFold(c.Tag, name) {
			return c
		}
	}
	return nil
}

// checkDeclarations refuses every "<!" construct except comments and CDATA
// sections: DOCTYPE, ENTITY, ELEMENT, ATTLIST and friends.
func checkDeclarations(body []byte) error {
	rest := body
	for {
		i := bytes.Index(rest, []byte("<!"))
		if i < 0 {
			return nil
		}
		rest = rest[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return badRequest("unterminated comment")
			}
			rest = rest[4+end+3:]
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end := bytes.Index(rest, []byte("]]>"))
			if end < 0 {
				return badRequest("unterminated CDATA section")
			}
			rest = rest[end+3:]
		default:
			return badRequest("DTDs and entity declarations are not accepted")
		}
	}
}

// checkCharRefs refuses a character reference to anything that is not an
// XML character (XML 1.0 section 4.1, well-formedness constraint "Legal
// Character"). encoding/xml checks every reference but one kind: a
// reference to a surrogate (&#xD800;) is read as U+FFFD, so the request
// would be taken to hold a character it does not. Comments, CDATA sections
// and processing instructions hold no references and are skipped; a
// reference the parser cannot read at all (no digits, no ';', too large) is
// left to it.
func checkCharRefs(body []byte) error {
	rest := body
	for {
		i := bytes.IndexAny(rest, "&<")
		if i < 0 {
			return nil
		}
		rest = rest[i:]
		skip := func(open, end string) bool {
			if !bytes.HasPrefix(rest, []byte(open)) {
				return false
			}
			if j := bytes.Index(rest[len(open):], []byte(end)); j >= 0 {
				rest = rest[len(open)+j+len(end):]
			} else {
				rest = nil
			}
			return true
		}
		switch {
		case skip("<!--", "-->"), skip("<![CDATA[", "]]>"), skip("<?", "?>"):
		case bytes.HasPrefix(rest, []byte("&#")):
			r, n, ok := charRef(rest[2:])
			if ok && !xmlChar(r) {
				return badRequest("the request holds a character reference to U+%04X, which is not an XML character", r)
			}
			rest = rest[2+n:]
		default:
			rest = rest[1:]
		}
	}
}

// charRef reads the number of a character reference after "&#": decimal,
// or hexadecimal after 'x', up to ';'. ok is false when there is no valid
// reference; n is how much was read.
func charRef(p []byte) (r rune, n int, ok bool) {
	base := rune(10)
	if len(p) > 0 && p[0] == 'x' {
		base, n = 16, 1
	}
	digits, any := 0, false
	for ; n < len(p) && p[n] != ';'; n++ {
		d := rune(-1)
		switch c := p[n]; {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		}
		if d < 0 || digits == 7 {
			// Seven significant digits hold any code point
			// (U+10FFFF, 1114111) and do not overflow a rune.
			return 0, n, false
		}
		if r > 0 || d > 0 {
			digits++
		}
		r = r*base + d
		any = true
	}
	if n == len(p) || !any || r > utf8.MaxRune {
		return 0, n, false
	}
	return r, n + 1, true
}

// xmlChar is production [2] of XML 1.0 (fifth edition): the characters a
// document may hold.
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xa || r == 0xd || r >= 0x20 && r <= 0xd7ff ||
		r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= utf8.MaxRune
}

// encodingDecl finds the encoding of an XML declaration at the start.
var encodingDecl = regexp.MustCompile(`\A<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']`)

// asciiCompatible reports whether a declared encoding reads a UTF-8 body
// the same way: UTF-8 itself, or US-ASCII, which some scripts declare for
// plain-ASCII requests.
func asciiCompatible(enc string) bool {
	switch strings.ToLower(enc) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// refuseCharset is called by the XML decoder for an encoding declaration
// other than UTF-8. The body has been checked to be UTF-8, so it passes
// ASCII through and refuses the rest, which would make the parser misread
// the body.
func refuseCharset(charset string, r io.Reader) (io.Reader, error) {
	if asciiCompatible(charset) {
		return r, nil
	}
	return nil, badRequest("encoding is not supported; send UTF-8")
}

// sanitize keeps a client-supplied token printable and short before it goes
// into an answer: letters, digits and ". _ -" only, at most 40 characters.
func sanitize(s string) string {
	const limit = 40
	var b strings.Builder
	for i, r := range s {
		if i >= limit {
			b.WriteString("…")
			break
		}
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
