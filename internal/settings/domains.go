package settings

import "iter"

// Suffixes walks up the domain tree: it yields name itself and then each
// domain above it, longest first, with the offset at which each starts in
// name. For "a.example.com" that is (0, "a.example.com"), (2,
// "example.com"), (10, "com"). A trailing dot, if any, stays on every
// suffix.
//
// It is the one walk behind every "closest enclosing domain" question: the
// "*.parent" wildcard that serves a name, the DNS zone a query falls in,
// the served domain a host name of dns.hosts belongs to. It works on
// strings and on byte slices alike (the DNS server asks with the query
// name as it came off the wire) and allocates nothing.
func Suffixes[S ~string | ~[]byte](name S) iter.Seq2[int, S] {
	return func(yield func(int, S) bool) {
		for off := 0; off < len(name); off = Parent(name, off) {
			if !yield(off, name[off:]) {
				return
			}
		}
	}
}

// Parent returns the offset in name of the domain above the one that
// starts at off: one past the next dot, or len(name) when there is none.
// It is the step of Suffixes, for loops that must not capture name in a
// closure (the DNS server's query path, which keeps the name on the
// stack).
func Parent[S ~string | ~[]byte](name S, off int) int {
	for off < len(name) && name[off] != '.' {
		off++
	}
	return off + 1
}

// Closest returns the longest of name and its parent domains for which
// has is true, and false when there is none.
func Closest(name string, has func(string) bool) (string, bool) {
	for _, s := range Suffixes(name) {
		if has(s) {
			return s, true
		}
	}
	return "", false
}
