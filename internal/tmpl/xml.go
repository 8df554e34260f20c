package tmpl

import "strings"

var xmlReplacer = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;",
)

// EscapeXML escapes s for use in XML text or a quoted attribute: the form
// a value takes in a slot of an XML template. It returns s itself, without
// allocating, when nothing needs escaping (the usual case).
func EscapeXML(s string) string {
	if !strings.ContainsAny(s, `&<>"'`) {
		return s
	}
	return xmlReplacer.Replace(s)
}
