// Package tmpl keeps a rendered document as bytes with a few holes.
//
// Renderers build a provider's whole document once per configuration load,
// with markers where request-specific values go (the address, the domain, a
// UUID), and compile it here. A request then only appends the literal pieces
// and the already-escaped values: no XML tree, no reflection, no allocation
// beyond the output buffer.
package tmpl

import (
	"fmt"
	"strings"
)

// Marker returns the marker for slot i. It is made of private-use characters,
// which the configuration validator refuses in every configured string, so it
// can never collide with real content. XML and JSON encoders pass them
// through unchanged.
func Marker(i int) string { return fmt.Sprintf("\uE000%d\uE001", i) }

// Template is a compiled document.
type Template struct {
	lits  [][]byte // len(slots)+1 literal pieces
	slots []int
	size  int
}

// Compile splits a rendered document at the markers of slots 0..n-1.
func Compile(doc string, n int) (*Template, error) {
	t := &Template{}
	for {
		i := strings.Index(doc, "\uE000")
		if i < 0 {
			break
		}
		j := strings.Index(doc[i:], "\uE001")
		if j < 0 {
			return nil, fmt.Errorf("unterminated template marker")
		}
		var slot int
		if _, err := fmt.Sscanf(doc[i+len("\uE000"):i+j], "%d", &slot); err != nil || slot < 0 || slot >= n {
			return nil, fmt.Errorf("bad template marker %q", doc[i:i+j])
		}
		t.lits = append(t.lits, []byte(doc[:i]))
		t.size += i
		t.slots = append(t.slots, slot)
		doc = doc[i+j+len("\uE001"):]
	}
	t.lits = append(t.lits, []byte(doc))
	t.size += len(doc)
	return t, nil
}

// Size is the length of the literal pieces, a good buffer capacity.
func (t *Template) Size() int { return t.size }

// Append appends the document to dst with values[i] in place of slot i.
// Values must already be escaped for the document's syntax.
func (t *Template) Append(dst []byte, values ...string) []byte {
	for i, s := range t.slots {
		dst = append(dst, t.lits[i]...)
		dst = append(dst, values[s]...)
	}
	return append(dst, t.lits[len(t.lits)-1]...)
}

// Login replaces the %EMAILADDRESS%, %EMAILLOCALPART% and %EMAILDOMAIN%
// placeholders of a login-name template by the markers of the given slots,
// so that every renderer fills login names the same way.
func Login(template string, address, local, domain int) string {
	return strings.NewReplacer(
		"%EMAILADDRESS%", Marker(address),
		"%EMAILLOCALPART%", Marker(local),
		"%EMAILDOMAIN%", Marker(domain),
	).Replace(template)
}
