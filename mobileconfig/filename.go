package mobileconfig

import "bytes"

// FileName is the download's file name for an address: only characters
// that are safe in a quoted header parameter and in every file system, so
// that no address can change the Content-Disposition header or the place
// the file is saved to.
func FileName(address string) string { return string(appendFileName(nil, address)) }

// maxFileName bounds the characters of a file name taken from the address.
const maxFileName = 100

// appendFileName appends FileName of the concatenated parts to dst: every
// character but letters, digits and ".@+-_" becomes '_', at most
// maxFileName of them, without leading dots, "mail" if nothing is left, and
// ".mobileconfig". The parts are valid UTF-8 (a parsed address), so taking
// them one after the other reads the same characters as their
// concatenation.
func appendFileName(dst []byte, parts ...string) []byte {
	start, n := len(dst), 0
	for _, p := range parts {
		for _, c := range p {
			if n >= maxFileName {
				break
			}
			n++
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '@' || c == '+' || c == '-' || c == '_' {
				dst = append(dst, byte(c))
			} else {
				dst = append(dst, '_')
			}
		}
	}
	dots := 0
	for start+dots < len(dst) && dst[start+dots] == '.' {
		dots++
	}
	dst = append(dst[:start], dst[start+dots:]...)
	if len(dst) == start {
		dst = append(dst, "mail"...)
	}
	return append(dst, ".mobileconfig"...)
}

// contentDisposition is the Content-Disposition header of a profile for
// local@domain, as mime.FormatMediaType writes "attachment" with the
// filename parameter: the file name is a MIME token unless it holds an
// '@', the only one of its characters that must be quoted, and never holds
// a quote or backslash. Built on the stack; the string is the only
// allocation.
func contentDisposition(local, domain string) string {
	const head = "attachment; filename="
	var b [len(head) + 2 + maxFileName + len("mail.mobileconfig")]byte
	out := append(b[:0], head...)
	out = append(out, '"')
	out = appendFileName(out, local, "@", domain)
	name := out[len(head)+1:]
	if bytes.IndexByte(name, '@') >= 0 {
		return string(append(out, '"'))
	}
	copy(out[len(head):], name)
	return string(out[:len(out)-1])
}
