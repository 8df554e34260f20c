package address

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The address alphabet: the characters an address may hold, decided once,
// here, for every document the service puts an address into.
//
// An accepted address goes, unchanged, into XML (autoconfig, Autodiscover,
// the XML property list of an Apple profile, itself inside a CMS signature),
// JSON, an HTML page and its links, a QR code, a Content-Disposition header
// and the access log. The alphabet is what all of them can carry and what a
// person can read, so that no renderer has to refuse or repair anything:
//
//   - XML 1.0 (section 2.2, Char) excludes the C0 controls but tab, CR and
//     LF, the surrogates and U+FFFE/U+FFFF. Apple's and Python's property
//     list parsers reject a document holding U+FFFE, and libxml2 one holding
//     any of these. The C0 and C1 controls and DEL are refused altogether
//     (C1 controls are "discouraged" by XML 1.0 and HTML; CR and LF split a
//     header or a log line).
//   - All 66 noncharacters (U+FDD0–U+FDEF and the last two code points of
//     every plane, U+xFFFE and U+xFFFF): Unicode reserves them for a
//     program's internal use, HTML makes them parse errors, and XML 1.0's
//     "characters to be avoided" list names every one.
//   - Surrogate code points cannot be in valid UTF-8, which is checked
//     first; they are listed so that Allowed answers for any rune, e.g. one
//     decoded from a character reference.
//   - Private-use characters (U+E000–U+F8FF and planes 15 and 16) mean
//     nothing outside the program that assigned them.
//   - U+FFFD, the replacement character, stands for something a decoder
//     could not read: no mailbox has it in its name, and an address holding
//     it was damaged on the way (it is also what some XML parsers make of a
//     character reference to a surrogate).
//   - White space other than the ASCII space (U+00A0, U+2000–U+200A,
//     U+2028, U+2029, U+3000, …) inside an address: it makes one address
//     look like two words or like another address. (Around the address it
//     is trimmed; an ASCII space inside the local part is a '+' that lost
//     its encoding, see Parse.)
//   - Characters that change the text direction (Bidi_Control: U+061C,
//     U+200E, U+200F, U+202A–U+202E, U+2066–U+2069): "alice@evil.example"
//     with a U+202E in front shows on the settings page and in a profile as
//     something else than what it is.
//   - Invisible characters: every format character (general category Cf:
//     U+00AD soft hyphen, U+200B–U+200D zero-width space and joiners,
//     U+2060–U+2064 word joiner and invisible operators, U+FEFF, U+180E,
//     the tags U+E0001 and U+E0020–U+E007F, …) and every other
//     Default_Ignorable_Code_Point (U+034F, the Hangul fillers U+115F,
//     U+1160, U+3164, U+FFA0, the unassigned rest of the tag block
//     U+E0000–U+E0FFF, and the variation selectors U+180B–U+180F,
//     U+FE00–U+FE0F, U+E0100–U+E01EF). Two addresses that differ only by
//     them look the same but name different mailboxes. This is the rule of
//     PRECIS (RFC 8264, section 9.13: Default_Ignorable_Code_Point and
//     noncharacters are disallowed in both its string classes), stricter in
//     one point: the zero-width joiners, which PRECIS allows where a script
//     needs them, are refused too, since in an address they only make two
//     mailbox names that render alike. The cost is that an emoji written with a
//     variation selector (U+2764 U+FE0F) is refused while the same emoji
//     without it is accepted; addresses with emoji are rare, and a
//     mailbox's name must not depend on an invisible difference.
//
// Everything else is accepted, unassigned code points included (XML 1.0
// fifth edition, JSON, property lists and HTML carry them, and refusing them
// would refuse tomorrow's letters). The ASCII punctuation that RFC 5322
// gives a meaning to (quotes, angle brackets, …) is refused by Parse as
// address syntax, not as a matter of the alphabet.

// Allowed reports whether r may appear in an address (before the domain is
// converted to A-labels). Every character of an address that Parse accepts
// is Allowed.
func Allowed(r rune) bool { return refusal(r) == "" }

// refusal says why r is not in the alphabet, "" when it is.
func refusal(r rune) string {
	if r < 0x80 {
		if r < 0x20 || r == 0x7f {
			return "a control character"
		}
		return ""
	}
	switch {
	case r < 0xa0:
		return "a control character"
	case r > unicode.MaxRune:
		return "not a character"
	case r >= 0xd800 && r <= 0xdfff:
		return "a surrogate code point"
	case r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe:
		return "a noncharacter"
	case r == unicode.ReplacementChar:
		return "the replacement character (the text was damaged on the way)"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	case unicode.Is(unicode.White_Space, r):
		return "white space"
	case unicode.Is(unicode.Bidi_Control, r):
		return "a character that changes the text direction"
	case unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r):
		return "an invisible character"
	}
	return ""
}

// checkAlphabet refuses a string holding a character outside the alphabet,
// naming the character by its code point (never quoting it: it may be
// invisible, or break the line the message is shown on).
func checkAlphabet(s string) error {
	for _, r := range s {
		if why := refusal(r); why != "" {
			return refused(r, why)
		}
	}
	return nil
}

func refused(r rune, why string) error {
	return &Error{Reason: fmt.Sprintf("contains U+%04X, %s", r, why)}
}

// Displayable returns s for showing a refused input back to the person who
// typed it (the settings page does, so that a typo can be corrected in
// place): every character outside the alphabet, and every byte that is not
// UTF-8, becomes U+FFFD, except tab, CR and LF, which every document format
// holds and a page shows as blanks. The person sees where the problem was,
// and nothing in it can turn the text around it, hide part of it, or make
// the page an ill-formed document.
func Displayable(s string) string {
	if strings.IndexFunc(s, replaced) < 0 { // an invalid byte is read as U+FFFD
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		// An invalid byte ranges as utf8.RuneError, which is replaced
		// as well.
		if replaced(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

func replaced(r rune) bool { return !Allowed(r) && r != '\t' && r != '\n' && r != '\r' }
