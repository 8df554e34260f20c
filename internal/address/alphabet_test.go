package address

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestAlphabetFitsEveryFormat runs through every code point: whatever the
// alphabet allows must be an XML 1.0 Char that encoding/xml reads back, a
// JSON string character that encoding/json reads back, and none of the
// classes the alphabet promises to refuse (Unicode's own property tables
// decide, not the code under test).
func TestAlphabetFitsEveryFormat(t *testing.T) {
	var all strings.Builder
	allowed := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !Allowed(r) {
			continue
		}
		allowed++
		switch {
		case !xmlChar(r):
			t.Fatalf("%U is allowed but is no XML 1.0 Char", r)
		case r < 0x20, r >= 0x7f && r < 0xa0:
			t.Fatalf("%U is allowed but is a control character", r)
		case unicode.Is(unicode.Noncharacter_Code_Point, r):
			t.Fatalf("%U is allowed but is a noncharacter", r)
		case unicode.In(r, unicode.Cs, unicode.Co, unicode.Cf):
			t.Fatalf("%U is allowed but is a surrogate, private-use or format character", r)
		case unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Bidi_Control):
			t.Fatalf("%U is allowed but is default-ignorable or a bidi control", r)
		case r != ' ' && unicode.Is(unicode.White_Space, r):
			t.Fatalf("%U is allowed but is white space", r)
		case r == utf8.RuneError:
			t.Fatalf("%U is allowed but is the replacement character", r)
		}
		all.WriteRune(r)
	}
	if allowed < 960000 { // of 1,114,112: the private-use planes alone are 131,068
		t.Fatalf("only %d code points allowed: the alphabet refuses far more than it says", allowed)
	}
	s := all.String()

	var esc strings.Builder
	if err := xml.EscapeText(&esc, []byte(s)); err != nil {
		t.Fatal(err)
	}
	var back string
	if err := xml.Unmarshal([]byte("<a>"+esc.String()+"</a>"), &back); err != nil {
		t.Fatalf("encoding/xml refuses the alphabet: %v", err)
	}
	if back != s {
		t.Fatal("encoding/xml reads the alphabet back differently")
	}

	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("encoding/json reads the alphabet back differently: %v", err)
	}
}

// xmlChar is production [2] of XML 1.0 (fifth edition).
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xa || r == 0xd || r >= 0x20 && r <= 0xd7ff ||
		r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// TestAlphabetRefuses lists, range by range, what the alphabet is
// documented to refuse.
func TestAlphabetRefuses(t *testing.T) {
	ranges := []struct {
		lo, hi rune
		why    string
	}{
		{0x00, 0x1f, "control"},
		{0x7f, 0x9f, "control"},
		{0xad, 0xad, "invisible"},
		{0x34f, 0x34f, "invisible"},
		{0x61c, 0x61c, "direction"},
		{0x115f, 0x1160, "invisible"},
		{0x180b, 0x180f, "invisible"},
		{0x2000, 0x200a, "white space"},
		{0x200b, 0x200d, "invisible"},
		{0x200e, 0x200f, "direction"},
		{0x2028, 0x2029, "white space"},
		{0x202a, 0x202e, "direction"},
		{0x202f, 0x202f, "white space"},
		{0x205f, 0x205f, "white space"},
		{0x2060, 0x2064, "invisible"},
		{0x2066, 0x2069, "direction"},
		{0x206a, 0x206f, "invisible"},
		{0x3000, 0x3000, "white space"},
		{0x3164, 0x3164, "invisible"},
		{0xd800, 0xdfff, "surrogate"},
		{0xe000, 0xf8ff, "private-use"},
		{0xfdd0, 0xfdef, "noncharacter"},
		{0xfe00, 0xfe0f, "invisible"},
		{0xfeff, 0xfeff, "invisible"},
		{0xffa0, 0xffa0, "invisible"},
		{0xfff9, 0xfffb, "invisible"},
		{0xfffd, 0xfffd, "replacement"},
		{0xfffe, 0xffff, "noncharacter"},
		{0xe0000, 0xe007f, "invisible"},
		{0xe0100, 0xe01ef, "invisible"},
		{0xf0000, 0xffffd, "private-use"},
		{0x100000, 0x10fffd, "private-use"},
	}
	for _, rg := range ranges {
		for r := rg.lo; r <= rg.hi; r++ {
			if why := refusal(r); !strings.Contains(why, rg.why) {
				t.Errorf("%U: refusal %q, want %q", r, why, rg.why)
			}
		}
	}
	for plane := rune(0); plane <= 0x10; plane++ {
		for _, r := range []rune{plane<<16 | 0xfffe, plane<<16 | 0xffff} {
			if why := refusal(r); why != "a noncharacter" {
				t.Errorf("%U: refusal %q, want a noncharacter", r, why)
			}
		}
	}
	for _, r := range "aZ09.-+_&!#$%*/=?^{|}~ üßéЖΩ中文ا😀\u0301\u2764\U0001D4B6" {
		if !Allowed(r) {
			t.Errorf("%U (%c) is refused: %s", r, r, refusal(r))
		}
	}
}

func TestDisplayable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Jürg Öçal@bücher.ch", "Jürg Öçal@bücher.ch"},
		{"a\ufffeb@example.com", "a\ufffdb@example.com"},
		{"\u202emoc.elpmaxe@ecila", "\ufffdmoc.elpmaxe@ecila"},
		{"a\u200b\u200db\U000E0041@example.com", "a\ufffd\ufffdb\ufffd@example.com"},
		{"a\xed\xa0\x80b\xff@example.com", "a\ufffd\ufffd\ufffdb\ufffd@example.com"},
		{"a\r\n\tb\x00\x7f\u0085@example.com", "a\r\n\tb\ufffd\ufffd\ufffd@example.com"},
	} {
		got := Displayable(c.in)
		if got != c.want {
			t.Errorf("Displayable(%q) = %q, want %q", c.in, got, c.want)
		}
		for _, r := range got {
			if !Allowed(r) && !strings.ContainsRune("\ufffd\t\r\n", r) {
				t.Errorf("Displayable(%q) holds %U", c.in, r)
			}
		}
	}
}
