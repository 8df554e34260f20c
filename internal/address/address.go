// Package address parses and normalises mailbox addresses and domain names.
//
// Every endpoint receives an address typed (or pasted) by a person into a mail
// client, so the input is often sloppy: surrounding blanks, an upper-case
// domain, a Unicode domain, or a '+' that a client forgot to percent-encode and
// that therefore arrived as a space. This package is the single place where such
// input is accepted or rejected, so that every protocol sees the same answer.
package address

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 section 4.5.3.1 and its errata: a local part of at most
// 64 octets, a domain of at most 255 octets, and a whole forward path of at
// most 256 octets including the angle brackets, that is 254 for the address.
const (
	MaxLocalPart = 64
	MaxDomain    = 255
	MaxAddress   = 254
	maxLabel     = 63
)

// Address is a normalised mailbox address. Domain is lower-case and in
// A-label (ASCII, punycode) form; Local keeps its case, as local parts are
// case-sensitive in principle (RFC 5321 section 2.4).
type Address struct {
	Local  string
	Domain string
}

// String returns local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Error explains why an input is not acceptable. Its message is safe to show
// to a client: it never repeats the input.
type Error struct{ Reason string }

func (e *Error) Error() string { return "invalid email address: " + e.Reason }

func invalid(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err (or an error it wraps) is an *Error.
func IsInvalid(err error) bool {
	if err == nil {
		return false // errors.As would move its target to the heap first
	}
	var e *Error
	return errors.As(err, &e)
}

// lookup converts Unicode domains to A-labels the way a resolver would
// (UTS #46 with the lookup profile: case folding, no strict bidi surprises).
var lookup = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// syntax is the ASCII punctuation that RFC 5322 gives a meaning to in an
// address (quoting, comments, display names, lists, domain literals), and
// the backquote: none of it is part of a plain mailbox address, and all of
// it would need quoting somewhere the address is written.
const syntax = "\"'<>\\()[],;:`"

// Parse parses and normalises a mailbox address.
//
// Accepted: surrounding white space; a space inside the local part, which is
// taken for a '+' that lost its percent-encoding on the way (Thunderbird and
// many web forms send "alice+tag@…" unencoded in a query string, and a query
// decoder turns '+' into ' '); an upper-case or Unicode domain; a trailing dot
// on the domain. Rejected with a reason: any character outside the address
// alphabet (see Allowed: controls, CR and LF included, noncharacters,
// invisible and direction-changing characters, white space other than the
// ASCII space), quotes, angle brackets, backslashes, quoted or commented
// local parts, A-labels that are not valid IDNA, and parts longer than RFC
// 5321 allows.
func Parse(s string) (Address, error) {
	if a, ok := parseSimple(s); ok {
		return a, nil
	}
	return parseFull(s)
}

// simpleLocal and simpleDomain are the bytes parseSimple accepts in the
// local part and the domain.
var simpleLocal, simpleDomain = func() (l, d [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		l[c] = strings.IndexByte(syntax, byte(c)) < 0 && c != '@'
	}
	for c := 'a'; c <= 'z'; c++ {
		d[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		d[c] = true
	}
	d['.'], d['-'] = true, true
	return l, d
}()

// parseSimple is Parse for the address nearly every client sends, in one
// pass: printable ASCII without blanks or syntax characters, one '@', a
// lower-case LDH domain that has no "xn--" label and does not end in a
// digit or a dot. For such an input it returns what parseFull returns (the
// input, split); anything else, valid or not, it leaves to parseFull
// (FuzzSimpleParse compares the two). Parsing the address was about a
// tenth of what the service adds to a request under load.
func parseSimple(s string) (Address, bool) {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at > MaxLocalPart || len(s) > MaxAddress || at == len(s)-1 {
		return Address{}, false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' {
		return Address{}, false
	}
	for i := 0; i < len(local); i++ {
		if !simpleLocal[local[i]] || local[i] == '.' && local[i+1] == '.' {
			return Address{}, false
		}
	}
	// Labels: 1 to 63 octets, no hyphen at either end, no "xn--".
	start := 0
	for i := 0; i <= len(domain); i++ {
		if i < len(domain) && domain[i] != '.' {
			if !simpleDomain[domain[i]] {
				return Address{}, false
			}
			continue
		}
		label := domain[start:i]
		if label == "" || len(label) > maxLabel || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.HasPrefix(label, "xn--") {
			return Address{}, false
		}
		start = i + 1
	}
	if last := domain[len(domain)-1]; last >= '0' && last <= '9' {
		return Address{}, false // perhaps an IP address
	}
	return Address{Local: local, Domain: domain}, true
}

// parseFull is Parse for any input.
func parseFull(s string) (Address, error) {
	if len(s) > 4*MaxAddress {
		// Do not even look at absurdly long input.
		return Address{}, invalid("longer than %d octets", MaxAddress)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, invalid("empty")
	}
	if !utf8.ValidString(s) {
		return Address{}, invalid("not valid UTF-8")
	}
	for _, r := range s {
		if r < utf8.RuneSelf && r >= 0x20 && r != 0x7f {
			if strings.IndexByte(syntax, byte(r)) >= 0 {
				return Address{}, invalid("contains the character %q", r)
			}
			continue
		}
		if why := refusal(r); why != "" {
			return Address{}, refused(r, why)
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, invalid("no @")
	}
	local, domain := s[:at], s[at+1:]
	if strings.IndexByte(local, '@') >= 0 {
		return Address{}, invalid("more than one @")
	}
	local = strings.ReplaceAll(local, " ", "+")
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	if len(local)+1+len(d) > MaxAddress {
		return Address{}, invalid("longer than %d octets", MaxAddress)
	}
	return Address{Local: local, Domain: d}, nil
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return invalid("empty local part")
	case len(local) > MaxLocalPart:
		return invalid("local part longer than %d octets", MaxLocalPart)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalid("misplaced dot in the local part")
	}
	for _, r := range local {
		if r == ' ' || r == '\t' {
			return invalid("white space in the local part")
		}
	}
	return nil
}

// ParseDomain normalises a domain name: lower case, A-labels, no trailing dot.
// It rejects names that are not valid host names (LDH labels of at most 63
// octets, at most 255 octets in all), IP literals, Unicode names holding a
// character outside the address alphabet, and xn-- labels that are not
// valid A-labels (see checkALabels).
func ParseDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return "", invalid("empty domain")
	}
	if len(s) > 4*MaxDomain {
		return "", invalid("domain longer than %d octets", MaxDomain)
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	var d string
	if ascii {
		d = strings.ToLower(s)
	} else {
		// The IDNA mapping would delete some invisible characters
		// (U+00AD, U+200B) and fold others: refused before, so that
		// a name that looks like another is not quietly made into it.
		if err := checkAlphabet(s); err != nil {
			return "", err
		}
		var err error
		d, err = lookup.ToASCII(s)
		if err != nil {
			return "", invalid("domain is not a valid internationalised name")
		}
	}
	if len(d) > MaxDomain {
		return "", invalid("domain longer than %d octets", MaxDomain)
	}
	// Only a name ending in a digit or with a colon can be an IP literal;
	// asking the parser about every other name would build (and box) an
	// error value per request.
	if d != "" && (d[len(d)-1] >= '0' && d[len(d)-1] <= '9' || strings.IndexByte(d, ':') >= 0) {
		if _, err := netip.ParseAddr(d); err == nil {
			// One shared value: a Host header that is an IP address
			// (a client or probe that connects by address) is
			// common, and asked on every such request.
			return "", errIPDomain
		}
	}
	if err := checkHostname(d); err != nil {
		return "", err
	}
	if strings.Contains(d, "xn--") {
		if err := checkALabels(d); err != nil {
			return "", err
		}
	}
	return d, nil
}

// errIPDomain is ParseDomain's error for an IP address.
var errIPDomain = &Error{Reason: "domain is an IP address"}

// strict checks A-labels the way a registry does (RFC 5891 section 4): valid
// Punycode that decodes to a valid U-label (NFC, no disallowed or mapped
// code points, hyphen, joiner and bidi rules).
var strict = idna.Registration

// checkALabels checks every label of a lower-case host name that starts with
// "xn--". Exact domains are configured names, but under a "*." domain any
// name a client invents is served and written back into the answer: a label
// such as "xn--zz" (not Punycode) or one that decodes to a noncharacter or an
// invisible character would be echoed in every document and shown on the
// settings page. Only an A-label that decodes to a valid U-label, re-encodes
// to itself (one spelling per name) and holds only characters of the
// address alphabet passes.
func checkALabels(d string) error {
	for label := range strings.SplitSeq(d, ".") {
		if !strings.HasPrefix(label, "xn--") {
			continue
		}
		u, err := strict.ToUnicode(label)
		if err != nil {
			return invalid("domain has an xn-- label that is not a valid internationalised name")
		}
		if a, err := strict.ToASCII(u); err != nil || a != label {
			return invalid("domain has an xn-- label that is not in its one valid spelling")
		}
		for _, r := range u {
			if why := refusal(r); why != "" {
				return invalid("domain has an xn-- label that decodes to U+%04X, %s", r, why)
			}
		}
	}
	return nil
}

// checkHostname checks an ASCII, lower-case name label by label.
func checkHostname(d string) error {
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return invalid("domain has an empty label")
		}
		if len(label) > maxLabel {
			return invalid("domain label longer than %d octets", maxLabel)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return invalid("domain label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return invalid("domain contains the character %q", rune(c))
			}
		}
	}
	return nil
}

// IsHostname reports whether s is a syntactically valid host name (ASCII LDH
// labels; case is not checked). It is used for configured server names.
func IsHostname(s string) bool {
	return len(s) <= MaxDomain && s != "" && checkHostname(strings.ToLower(strings.TrimSuffix(s, "."))) == nil
}

// HostDomain extracts the domain from an HTTP Host header, dropping the port.
func HostDomain(host string) (string, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return ParseDomain(host)
}
