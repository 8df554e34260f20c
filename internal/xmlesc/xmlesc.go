// Package xmlesc escapes text for XML character data and attribute values.
package xmlesc

import "strings"

var replacer = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;",
)

// String escapes s for use in XML text or a quoted attribute. It returns s
// itself, without allocating, when nothing needs escaping (the usual case).
func String(s string) string {
	if !strings.ContainsAny(s, `&<>"'`) {
		return s
	}
	return replacer.Replace(s)
}
