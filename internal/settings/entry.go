package settings

import "strings"

// Entry returns the configured domain that serves a normalised domain: the
// domain itself for an exact entry or an alias domain, "*.parent" for a
// name that a wildcard entry covers, "" for a domain nobody serves. It
// answers like Lookup.
//
// Per-domain metrics count by it: under a wildcard, the name is whatever a
// client made up, and a label per invented name would grow the metrics
// without bound.
func (c *Catalog) Entry(domain string) string {
	if _, ok := c.exact[domain]; ok {
		return domain
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return ""
		}
		d = d[i+1:]
		if _, ok := c.wildcard[d]; ok {
			return "*." + d
		}
	}
}
