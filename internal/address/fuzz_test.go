package address

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"

	"mailautoconf/internal/tmpl"
)

// FuzzParse checks the properties every other package relies on when it
// puts a parsed address into a document or a header: every character of an
// accepted address is in the address alphabet (Allowed), the normal form
// parses to itself, holds nothing that could break out of XML text, a plist
// string, a query string or an HTTP header, keeps within RFC 5321's
// lengths, and survives XML escaping unchanged. A refusal is always an
// *Error with a short, single-line reason.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", " Alice+tag@Example.COM. ", "alice tag@example.com",
		"bücher@bücher.example", "a@xn--bcher-kva.example", "a@exаmple.com", "a@ｅｘａｍｐｌｅ.com",
		"a\r\nSet-Cookie: x@example.com", "a\x00@example.com", "<a>@example.com", "a@[192.0.2.1]",
		"a@192.0.2.1", "a@b@example.com", ".a@example.com", "a..b@example.com", "a@-x.example",
		"a@" + strings.Repeat("x", 64) + ".example", strings.Repeat("l", 65) + "@example.com",
		"a@\u2028example.com", "a@exam\xffple.com", "a&b@example.com", "a@example.com\u202e",
		"\ufeffa@example.com", "a@xn--.example", "a@xn--zz.example",
		"a\ufffeb@example.com", "a\uffffb@example.com", "a@exam\uffffple.com", "a\U0010FFFF@example.com",
		"a\ufdd0@example.com", "a\u200bb@example.com", "a\u00adb@example.com", "a\U000E0041@example.com",
		"a@xn--a-s10i.wild.example", "a@xn--1ug.example", "a\u2764\ufe0f@example.com", "a\ufffd@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := Parse(raw)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("Parse(%q): error of type %T: %v", raw, err, err)
			}
			msg := err.Error()
			if len(msg) > 120 || strings.ContainsAny(msg, "\r\n") || !utf8.ValidString(msg) {
				t.Fatalf("Parse(%q): unsafe error message %q", raw, msg)
			}
			return
		}
		s := a.String()
		for _, r := range s {
			if !Allowed(r) {
				t.Fatalf("Parse(%q) = %q: holds %U, which is not in the alphabet", raw, s, r)
			}
		}
		// What was accepted held nothing outside the alphabet either,
		// apart from the blanks trimmed around it and the spaces that
		// stand for '+': nothing was silently dropped or mapped away.
		for _, r := range strings.TrimSpace(raw) {
			if r != ' ' && !Allowed(r) {
				t.Fatalf("Parse(%q) accepted an input holding %U", raw, r)
			}
		}
		if len(a.Local) == 0 || len(a.Local) > MaxLocalPart || len(s) > MaxAddress {
			t.Fatalf("Parse(%q) = %q: lengths out of range", raw, s)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Parse(%q) = %q: not UTF-8", raw, s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || strings.ContainsRune("\"'<>\\()[],;:` \t", r) {
				t.Fatalf("Parse(%q) = %q: holds %q", raw, s, r)
			}
		}
		if !IsHostname(a.Domain) || a.Domain != strings.ToLower(a.Domain) || strings.HasSuffix(a.Domain, ".") {
			t.Fatalf("Parse(%q): domain %q is not a lower-case host name", raw, a.Domain)
		}
		for i := 0; i < len(a.Domain); i++ {
			if a.Domain[i] >= utf8.RuneSelf {
				t.Fatalf("Parse(%q): domain %q is not ASCII", raw, a.Domain)
			}
		}
		again, err := Parse(s)
		if err != nil || again != a {
			t.Fatalf("Parse(%q) = %q, which parses to %+v, %v", raw, s, again, err)
		}
		if d, err := ParseDomain(a.Domain); err != nil || d != a.Domain {
			t.Fatalf("ParseDomain(%q) = %q, %v", a.Domain, d, err)
		}
		// The address as a document carries it: escaped text in an element
		// must decode to exactly the address again.
		doc := "<EMailAddress>" + tmpl.EscapeXML(s) + "</EMailAddress>"
		var got string
		if err := xml.Unmarshal([]byte(doc), &got); err != nil || got != s {
			t.Fatalf("address %q escaped as %q decodes to %q, %v", s, doc, got, err)
		}
	})
}

// FuzzSimpleParse checks that the one-pass parser accepts only inputs the
// full parser accepts, with the same result: whatever parseSimple takes,
// parseFull returns the same address for.
func FuzzSimpleParse(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Alice@example.com", "alice@Example.com", "a.b@example.com", "a..b@example.com",
		".a@example.com", "a.@example.com", "a@example.com.", "a@example..com", "a@.example.com",
		"a@-x.example", "a@x-.example", "a@xn--bcher-kva.example", "a@xn--zz.example", "a@192.0.2.1",
		"a@example.c0m", "a@example.123", "a@b@example.com", "@example.com", "a@", "a b@example.com",
		"a\"b@example.com", "a(b)@example.com", "a%b+c@example.com", "!#$&*/=?^_{|}~-@example.com",
		"a@" + strings.Repeat("x", 63) + ".example", "a@" + strings.Repeat("x", 64) + ".example",
		strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 65) + "@example.com",
		strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 58) + ".com",
		"a@e_x.com", "a@exam\x00ple.com", "a\x7f@example.com", " a@example.com", "a@example.com ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fast, ok := parseSimple(raw)
		if !ok {
			return
		}
		full, err := parseFull(raw)
		if err != nil {
			t.Fatalf("parseSimple(%q) accepted what parseFull refuses: %v", raw, err)
		}
		if fast != full {
			t.Fatalf("parseSimple(%q) = %+v, parseFull = %+v", raw, fast, full)
		}
	})
}
