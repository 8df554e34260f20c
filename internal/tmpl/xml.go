package tmpl

import "strings"

var xmlReplacer = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;",
)

// EscapeXML escapes s for use in XML text or a quoted attribute: the form
// a value takes in a slot of an XML template. It returns s itself, without
// allocating, when nothing needs escaping (the usual case).
func EscapeXML(s string) string {
	// A table rather than strings.ContainsAny, which builds a set of
	// its characters on every call: this runs for every value filled
	// into every document.
	i := 0
	for i < len(s) && !xmlSpecial[s[i]] {
		i++
	}
	if i == len(s) {
		return s
	}
	return xmlReplacer.Replace(s)
}

// xmlSpecial marks the bytes EscapeXML replaces.
var xmlSpecial = [256]bool{'&': true, '<': true, '>': true, '"': true, '\'': true}
