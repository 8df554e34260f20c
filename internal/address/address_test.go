package address

import (
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	cases := []struct{ in, local, domain string }{
		{"alice@example.com", "alice", "example.com"},
		{"  Alice@EXAMPLE.COM\t", "Alice", "example.com"},
		{"alice+tag@example.com", "alice+tag", "example.com"},
		{"alice tag@example.com", "alice+tag", "example.com"}, // '+' that arrived as a space
		{"alice@example.com.", "alice", "example.com"},
		{"a.b-c_d@sub.example.co.uk", "a.b-c_d", "sub.example.co.uk"},
		{"jürg@bücher.ch", "jürg", "xn--bcher-kva.ch"},
		{"info@BÜCHER.ch", "info", "xn--bcher-kva.ch"},
		{"x@xn--bcher-kva.ch", "x", "xn--bcher-kva.ch"},
		{"a&b@example.com", "a&b", "example.com"},
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64), "example.com"},
		{strings.Repeat("ü", 32) + "@example.com", strings.Repeat("ü", 32), "example.com"}, // 64 octets
		{"!#$%&*+/=?^_{|}~-@example.com", "!#$%&*+/=?^_{|}~-", "example.com"},
		{"用户@例子.广告", "用户", "xn--fsqu00a.xn--4rr70v"},
		{"δοκιμή@example.com", "δοκιμή", "example.com"},
		{"مستخدم@example.com", "مستخدم", "example.com"},
		{"e\u0301@example.com", "e\u0301", "example.com"}, // a combining accent is visible
		{"\u2764@example.com", "\u2764", "example.com"},   // an emoji without variation selector
		{"\U0001F600@example.com", "\U0001F600", "example.com"},
		{"\U0001D4B6@example.com", "\U0001D4B6", "example.com"}, // mathematical script a
		{"\U00030000@example.com", "\U00030000", "example.com"}, // CJK extension G
		{"\u0378@example.com", "\u0378", "example.com"},         // unassigned today
		{"\u00a0a@example.com\u00a0", "a", "example.com"},       // white space around is trimmed
		{"a@xn--Mnchen-3ya.example.com", "a", "xn--mnchen-3ya.example.com"},
		{"a@münchen.example.com", "a", "xn--mnchen-3ya.example.com"},
		{"a@xn--ls8h.example.com", "a", "xn--ls8h.example.com"},
	}
	for _, c := range cases {
		a, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if a.Local != c.local || a.Domain != c.domain {
			t.Errorf("Parse(%q) = %q @ %q, want %q @ %q", c.in, a.Local, a.Domain, c.local, c.domain)
		}
	}
}

func TestParseRejects(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	cases := []struct{ name, in, reason string }{
		{"empty", "", "empty"},
		{"blank", "   ", "empty"},
		{"no at", "alice.example.com", "no @"},
		{"two at", "a@b@example.com", "more than one @"},
		{"CRLF", "a\r\nb@example.com", "control"},
		{"LF in domain", "a@example.com\nBcc: x", "control"},
		{"NUL", "a\x00@example.com", "control"},
		{"DEL", "a\x7f@example.com", "control"},
		{"C1", "a\u0085@example.com", "control"},
		{"line separator", "a\u2028@example.com", "U+2028, white space"},
		{"BOM", "\ufeffa@example.com", "U+FEFF, an invisible character"},
		{"double quote", `"a"@example.com`, "character"},
		{"single quote", `a'b@example.com`, "character"},
		{"angle", "<a@example.com>", "character"},
		{"display name", "Alice <a@example.com>", "character"},
		{"backslash", `a\b@example.com`, "character"},
		{"comment", "a(x)@example.com", "character"},
		{"literal", "a@[127.0.0.1]", "character"},
		{"comma", "a@example.com,b@example.com", "character"},
		{"semicolon", "a;b@example.com", "character"},
		{"empty local", "@example.com", "empty local"},
		{"empty domain", "a@", "empty domain"},
		{"leading dot", ".a@example.com", "dot"},
		{"double dot", "a..b@example.com", "dot"},
		{"trailing dot local", "a.@example.com", "dot"},
		{"local too long", strings.Repeat("a", 65) + "@example.com", "64"},
		{"label too long", "a@" + strings.Repeat("b", 64) + ".com", "63"},
		{"domain too long", "a@" + strings.Repeat(long63+".", 4) + "com", "255"},
		{"address too long", strings.Repeat("a", 64) + "@" + strings.Repeat(long63[:50]+".", 4) + "com", "254"},
		{"absurdly long", strings.Repeat("a", 10000) + "@example.com", "254"},
		{"empty label", "a@example..com", "empty label"},
		{"hyphen label", "a@-example.com", "hyphen"},
		{"underscore domain", "a@ex_ample.com", "character"},
		{"space in domain", "a@exa mple.com", "character"},
		{"IP domain", "a@127.0.0.1", "IP"},
		{"percent domain", "a@exa%41mple.com", "character"},
		{"slash domain", "a@example.com/../x", "character"},
		{"invalid UTF-8", "a\xff@example.com", "UTF-8"},
		{"bad IDN", "a@xn--.com", "domain"},
		{"tab in local", "a\tb@example.com", "control"},
		{"private use", "a\ue000@example.com", "U+E000, a private-use"},
		{"private use, plane 15", "a\U000F0000@example.com", "U+F0000, a private-use"},
		{"private use, plane 16", "a\U0010FFFD@example.com", "U+10FFFD, a private-use"},

		// Noncharacters: not XML characters (U+FFFE, U+FFFF) or to be
		// avoided in every document format.
		{"U+FFFE", "a\ufffeb@example.com", "U+FFFE, a noncharacter"},
		{"U+FFFF", "a\uffffb@example.com", "U+FFFF, a noncharacter"},
		{"U+FDD0", "a\ufdd0@example.com", "U+FDD0, a noncharacter"},
		{"U+FDEF", "a\ufdef@example.com", "U+FDEF, a noncharacter"},
		{"U+1FFFE", "a\U0001FFFE@example.com", "U+1FFFE, a noncharacter"},
		{"U+EFFFF", "a\U000EFFFF@example.com", "U+EFFFF, a noncharacter"},
		{"U+10FFFF", "a\U0010FFFF@example.com", "U+10FFFF, a noncharacter"},
		{"U+FFFE in the domain", "a@exam\ufffeple.com", "U+FFFE, a noncharacter"},
		{"replacement character", "a\ufffd@example.com", "U+FFFD, the replacement"},
		{"surrogate as UTF-8", "a\xed\xa0\x80@example.com", "UTF-8"},

		// White space inside the address.
		{"no-break space", "a\u00a0b@example.com", "U+00A0, white space"},
		{"ideographic space", "a\u3000b@example.com", "U+3000, white space"},
		{"en quad", "a\u2000b@example.com", "U+2000, white space"},
		{"narrow no-break space", "a\u202fb@example.com", "U+202F, white space"},

		// Characters that change the direction of the text.
		{"right-to-left override", "\u202ealice@example.com", "U+202E, a character that changes the text direction"},
		{"left-to-right embedding", "a\u202ab@example.com", "U+202A, a character that changes"},
		{"pop directional formatting", "a\u202cb@example.com", "U+202C, a character that changes"},
		{"right-to-left isolate", "a\u2067b@example.com", "U+2067, a character that changes"},
		{"pop directional isolate", "a\u2069b@example.com", "U+2069, a character that changes"},
		{"left-to-right mark", "a\u200eb@example.com", "U+200E, a character that changes"},
		{"right-to-left mark", "a\u200fb@example.com", "U+200F, a character that changes"},
		{"Arabic letter mark", "a\u061cb@example.com", "U+061C, a character that changes"},
		{"right-to-left mark in the domain", "a@example\u200f.com", "U+200F, a character that changes"},

		// Invisible characters.
		{"zero-width space", "a\u200bb@example.com", "U+200B, an invisible character"},
		{"zero-width non-joiner", "a\u200cb@example.com", "U+200C, an invisible character"},
		{"zero-width joiner", "a\u200db@example.com", "U+200D, an invisible character"},
		{"soft hyphen", "ali\u00adce@example.com", "U+00AD, an invisible character"},
		{"soft hyphen in the domain", "alice@exam\u00adple.com", "U+00AD, an invisible character"},
		{"zero-width space in the domain", "alice@exam\u200bple.com", "U+200B, an invisible character"},
		{"word joiner", "a\u2060b@example.com", "U+2060, an invisible character"},
		{"invisible plus", "a\u2064b@example.com", "U+2064, an invisible character"},
		{"Mongolian vowel separator", "a\u180eb@example.com", "U+180E, an invisible character"},
		{"combining grapheme joiner", "a\u034fb@example.com", "U+034F, an invisible character"},
		{"Hangul filler", "a\u3164b@example.com", "U+3164, an invisible character"},
		{"halfwidth Hangul filler", "a\uffa0b@example.com", "U+FFA0, an invisible character"},
		{"variation selector 16", "\u2764\ufe0f@example.com", "U+FE0F, an invisible character"},
		{"variation selector 17", "a\U000E0100@example.com", "U+E0100, an invisible character"},
		{"Mongolian free variation selector", "a\u180bb@example.com", "U+180B, an invisible character"},
		{"tag letter A", "a\U000E0041@example.com", "U+E0041, an invisible character"},
		{"language tag", "a\U000E0001@example.com", "U+E0001, an invisible character"},
		{"cancel tag", "a\U000E007F@example.com", "U+E007F, an invisible character"},
		{"unassigned tag", "a\U000E0002@example.com", "U+E0002, an invisible character"},
		{"interlinear annotation", "a\ufff9b@example.com", "U+FFF9, an invisible character"},

		// A-labels that are not valid IDNA: not echoed as they are.
		{"A-label that is not Punycode", "a@xn--zz.example.com", "xn-- label that is not a valid"},
		{"A-label of a control character", "a@xn--a.example.com", "xn-- label that is not a valid"},
		{"A-label of a zero-width joiner", "a@xn--1ug.example.com", "xn-- label that is not a valid"},
		{"A-label of a noncharacter", "a@xn--a-s10i.example.com", "xn-- label"},
		{"A-label with a disallowed character", "a@xn--a-ecp.example.com", "xn-- label that is not a valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", c.in, a)
			}
			if !IsInvalid(err) {
				t.Errorf("error %v is not an *Error", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %q does not say %q", err, c.reason)
			}
			// The message never reflects the input (it could carry markup
			// or header-injection attempts).
			if len(c.in) > 3 && strings.Contains(err.Error(), c.in) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

func TestHostDomain(t *testing.T) {
	cases := []struct{ in, want string }{
		{"autoconfig.example.com", "autoconfig.example.com"},
		{"Autoconfig.Example.COM:8080", "autoconfig.example.com"},
		{"example.com.", "example.com"},
		{"bücher.ch", "xn--bcher-kva.ch"},
	}
	for _, c := range cases {
		got, err := HostDomain(c.in)
		if err != nil || got != c.want {
			t.Errorf("HostDomain(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "[::1]:80", "a b", strings.Repeat("x", 300)} {
		if got, err := HostDomain(bad); err == nil {
			t.Errorf("HostDomain(%q) = %q, want an error", bad, got)
		}
	}
}

func TestIsHostname(t *testing.T) {
	for _, ok := range []string{"imap.example.com", "IMAP.Example.com", "localhost", "mail.example.com."} {
		if !IsHostname(ok) {
			t.Errorf("IsHostname(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "imap example.com", "%EMAILDOMAIN%", "-a.com", "a..b", "a_b.com"} {
		if IsHostname(bad) {
			t.Errorf("IsHostname(%q) = true", bad)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("Alice.Example+tag@Example.COM"); err != nil {
			b.Fatal(err)
		}
	}
}
