package redact

import (
	"strings"
	"testing"
)

func TestAddresses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/mail/config-v1.1.xml", "/mail/config-v1.1.xml"},
		{"", ""},
		{"/autodiscover/autodiscover.json/v1.0/jane.doe@example.com", "/autodiscover/autodiscover.json/v1.0/*@example.com"},
		{"/autodiscover/autodiscover.json/v1.0/jane.doe%40example.com", "/autodiscover/autodiscover.json/v1.0/*@example.com"},
		{"/autodiscover/autodiscover.json/v1.0/jane.doe%2540example.com", "/autodiscover/autodiscover.json/v1.0/*@example.com"},
		{"/x/jane.doe%252540example.com", "/x/*@example.com"},
		{"/x/Jane.Doe%4Oexample.com", "/x/Jane.Doe%4Oexample.com"}, // no address: a bad escape
		{"/x/jane%zz.doe@example.com", "/x/*@example.com"},
		{"emailaddress=jane.doe@example.com&protocol=imap", "emailaddress=*@example.com&protocol=imap"},
		{"Email=jane.doe%40example.com&Protocol=AutodiscoverV1", "Email=*@example.com&Protocol=AutodiscoverV1"},
		{"emailaddress=jane.doe+tag@example.com", "emailaddress=*@example.com"},
		{"a%2Fjane.doe%40example.com", "*@example.com"},
		{"jane@doe@example.com", "*@example.com"},
		{"mailto:jane.doe@example.com", "mailto:*@example.com"},
		{"<jane.doe@example.com>, bob@example.net", "<*@example.com>, *@example.net"},
		{"100% sure", "100% sure"},
		{"@example.com", "*@example.com"},
		{"jane.doe@", "*@"},
		{"/x/jane.doe@example.com%2Fbob%40example.net", "/x/*@*@example.net"},
	} {
		if got := Addresses(c.in); got != c.want {
			t.Errorf("Addresses(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(AppendAddresses([]byte("line "), c.in)); got != "line "+c.want {
			t.Errorf("AppendAddresses(%q) = %q, want %q", c.in, got, "line "+c.want)
		}
		if strings.Contains(Addresses(c.in), "jane") && c.want != c.in {
			t.Errorf("Addresses(%q) keeps a local part", c.in)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Addresses("/mail/config-v1.1.xml") }); n != 0 {
		t.Errorf("a path without an address costs %v allocations", n)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendAddresses(buf[:0], "/autodiscover/autodiscover.json/v1.0/jane.doe@example.com")
	}); n != 0 {
		t.Errorf("appending a path with an address costs %v allocations", n)
	}
}
