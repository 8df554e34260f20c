package mobileconfig

import (
	"crypto/sha1"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"mailautoconf/internal/address"
)

// uuidLen is the length of a UUID in its text form.
const uuidLen = 36

// derive returns, in one string, the address's PayloadIdentifier component
// followed by the profile's and the mail payload's UUIDs: SHA-1 name-based
// (version 5) UUIDs in the provider's namespace, of "profile\x00" and
// "mail\x00" and the lower-cased address, in upper case. Both are computed
// in a buffer on the stack; the string is the only allocation.
func derive(ns uuid.UUID, local, domain string) string {
	const maxPrefix = len("profile\x00")
	var scratch [len(ns) + maxPrefix + 2*address.MaxAddress]byte
	in := append(scratch[:0], ns[:]...)
	in = append(in, "profile\x00"...)
	start := len(in)
	// A mailbox is practically never case-sensitive: Alice@ and alice@
	// are the same account on the device and must replace each other.
	in = appendLower(in, local)
	in = append(in, '@')
	in = appendLower(in, domain)
	canon := in[start:]

	var out [4*address.MaxAddress + 2*uuidLen]byte
	ids := appendIdent(out[:0], canon)
	ids = appendUUID(ids, sha1.Sum(in))
	in = append(append(in[:len(ns)], "mail\x00"...), canon...)
	ids = appendUUID(ids, sha1.Sum(in))
	return string(ids)
}

// appendLower appends strings.ToLower(s), without allocating when s is
// ASCII.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(dst, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUUID appends the version 5 UUID of a SHA-1 sum, as
// uuid.NewSHA1(…).String() in upper case writes it.
func appendUUID(dst []byte, sum [sha1.Size]byte) []byte {
	const hex = "0123456789ABCDEF"
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	for i, b := range sum[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[b>>4], hex[b&15])
	}
	return dst
}

// appendIdent appends an address as a PayloadIdentifier component. Letters,
// digits and ".@+-" stay; every other byte becomes "_xx" (hex), '_'
// included, so that two addresses never share an identifier and nothing
// that a file system or an XML parser might mind gets through.
func appendIdent(dst, a []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range a {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-':
			dst = append(dst, c)
		default:
			dst = append(dst, '_', hex[c>>4], hex[c&15])
		}
	}
	return dst
}
