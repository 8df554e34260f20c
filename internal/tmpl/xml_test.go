package tmpl

import (
	"encoding/xml"
	"strings"
	"testing"
)

// TestEscapeXML: what an XML parser reads back from an escaped value, in
// text and in a quoted attribute, is the value itself.
func TestEscapeXML(t *testing.T) {
	for _, s := range []string{
		"alice@example.com",
		`"a<b>"&'c'@example.com`,
		"&amp; already escaped",
		"üñí©ødé",
		"",
	} {
		doc := `<a v="` + EscapeXML(s) + `" w='` + EscapeXML(s) + `'>` + EscapeXML(s) + `</a>`
		var got struct {
			V    string `xml:"v,attr"`
			W    string `xml:"w,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.NewDecoder(strings.NewReader(doc)).Decode(&got); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if got.V != s || got.W != s || got.Text != s {
			t.Errorf("%q read back as %+v", s, got)
		}
	}
	if s := "plain"; EscapeXML(s) != s {
		t.Error("a value without special characters changed")
	}
}
