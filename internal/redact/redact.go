// Package redact removes the local part of mailbox addresses from text
// that is about to be logged, such as a request's path.
//
// The access log names the domain of a request, not the person: a path
// like /autodiscover/autodiscover.json/v1.0/jane.doe@example.com (the form
// Outlook uses) or a made-up path that carries an address must not write
// "jane.doe" into the log when log.addresses is off. An address is found
// wherever an "@" is, also when it is percent-encoded once or more
// ("%40", "%2540"): the text is split into tokens at characters that do
// not occur in the addresses the service accepts, and a token that holds
// an "@" after decoding is written as "*@" and its domain.
package redact

import "strings"

// Mask stands for a removed local part.
const Mask = "*"

// maxDecode bounds the rounds of percent-decoding of one token: "%2540"
// is "@" after two; nobody encodes an address more often by mistake.
const maxDecode = 4

// Addresses returns s with the local part of every address replaced by
// Mask. Text without "@" or "%" is returned as it is, without allocating.
func Addresses(s string) string {
	if !suspect(s) {
		return s
	}
	return string(AppendAddresses(nil, s))
}

// AppendAddresses appends Addresses(s) to dst: the access log writes a
// path straight into its line, without a string for it.
func AppendAddresses(dst []byte, s string) []byte {
	if !suspect(s) {
		return append(dst, s...)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && !isDelimiter(s[i]) {
			continue
		}
		if start < i {
			dst = appendToken(dst, s[start:i])
		}
		if i < len(s) {
			dst = append(dst, s[i])
		}
		start = i + 1
	}
	return dst
}

// suspect reports whether s may hold an address. Two byte searches rather
// than strings.ContainsAny, which builds a set of its characters on every
// call (this runs for every access line).
func suspect(s string) bool {
	return strings.IndexByte(s, '@') >= 0 || strings.IndexByte(s, '%') >= 0
}

// isDelimiter reports whether c separates tokens: the separators of paths
// and query strings, blanks and the characters an accepted address never
// holds (quotes, angle brackets, backslashes, control characters: see
// internal/address).
func isDelimiter(c byte) bool {
	switch c {
	case '/', '?', '&', '=', ';', ',', ' ', '"', '<', '>', '\\', '(', ')', '[', ']', ':', '\'':
		return true
	}
	return c < 0x20 || c == 0x7f
}

// appendToken appends one token, redacted: "*@domain" when it holds an
// address, itself otherwise.
func appendToken(dst []byte, t string) []byte {
	d := t
	for range maxDecode {
		if strings.IndexByte(d, '@') >= 0 {
			break
		}
		next := unescape(d)
		if next == d {
			break
		}
		d = next
	}
	i := strings.LastIndexByte(d, '@')
	if i < 0 {
		return append(dst, t...)
	}
	dst = append(dst, Mask+"@"...)
	return AppendAddresses(dst, d[i+1:])
}

// unescape decodes the valid %XX sequences of s ("+" stays: in a path it
// is a plus sign) and leaves everything else as it is, so that one bad
// escape does not hide an address behind it.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
