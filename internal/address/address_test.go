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
		{"line separator", "a\u2028@example.com", "line separator"},
		{"BOM", "\ufeffa@example.com", "line separator"},
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
		{"private use", "a\ue000@example.com", "private-use"},
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
