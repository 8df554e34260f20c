package e2e

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

const davConsistency = `
providers:
  - id: mail.example.com
    domains: [example.com, "*.kunden.example"]
    aliases: {example.org: example.com}
    username: "%EMAILLOCALPART%"
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
    caldav: {url: "https://dav.example.com/cal/%EMAILADDRESS%/", username: "%EMAILADDRESS%"}
    carddav: {url: "https://%EMAILDOMAIN%:8443/card/%EMAILLOCALPART%/"}
`

// davTold is where one format sends a person's calendar and contacts
// programs: URL and login name of each.
type davTold struct{ CalDAV, CalUser, CardDAV, CardUser string }

// TestDAVToldTheSame: autoconfig, the Apple profile (dav=1) and the
// settings page send calendars and contacts of an address to the same URL
// with the same login name, for plain, alias, wildcard and awkward
// addresses.
func TestDAVToldTheSame(t *testing.T) {
	cfg, err := config.Parse("dav.yaml", []byte(davConsistency))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{})
	for _, addr := range []string{"alice@example.com", "Bob.Smith@example.org", "x+y@shop.kunden.example", "a/b?c#d&e%f@example.com"} {
		t.Run(addr, func(t *testing.T) {
			q := url.Values{"emailaddress": {addr}}
			told := map[string]davTold{}

			r := testutil.Get(t, srv.URL+"/mail/config-v1.1.xml?"+q.Encode(), "")
			type dav struct {
				Username  string `xml:"username"`
				ServerURL string `xml:"serverURL"`
			}
			var ac struct {
				AddressBook dav `xml:"addressBook"`
				Calendar    dav `xml:"calendar"`
			}
			if err := xml.Unmarshal(r.Body, &ac); err != nil {
				t.Fatalf("autoconfig: %v", err)
			}
			told["autoconfig"] = davTold{ac.Calendar.ServerURL, ac.Calendar.Username, ac.AddressBook.ServerURL, ac.AddressBook.Username}

			q.Set("dav", "1")
			r = testutil.Get(t, srv.URL+"/mobileconfig?"+q.Encode(), "")
			var prof struct {
				PayloadContent []map[string]any `plist:"PayloadContent"`
			}
			if _, err := plist.Unmarshal(r.Body, &prof); err != nil {
				t.Fatalf("profile: %v\n%s", err, r.Body)
			}
			var p davTold
			for _, m := range prof.PayloadContent {
				s := func(k string) string { v, _ := m[k].(string); return v }
				switch s("PayloadType") {
				case "com.apple.caldav.account":
					p.CalDAV, p.CalUser = s("CalDAVPrincipalURL"), s("CalDAVUsername")
				case "com.apple.carddav.account":
					p.CardDAV, p.CardUser = s("CardDAVPrincipalURL"), s("CardDAVUsername")
				}
			}
			told["profile"] = p

			r = testutil.Get(t, srv.URL+"/settings?lang=en&emailaddress="+url.QueryEscape(addr), "")
			if r.StatusCode != http.StatusOK {
				t.Fatalf("page: %d", r.StatusCode)
			}
			told["page"] = pageDAV(t, r.Body)

			want := told["autoconfig"]
			if want.CalDAV == "" || want.CardDAV == "" || !strings.HasPrefix(want.CalDAV, "https://dav.example.com/cal/") {
				t.Fatalf("autoconfig: %+v", want)
			}
			for format, got := range told {
				if got != want {
					t.Errorf("%s: %+v, autoconfig: %+v", format, got, want)
				}
			}
		})
	}
}

// pageDAV reads the calendar and contacts rows of a settings page.
func pageDAV(t *testing.T, body []byte) davTold {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out davTold
	var walk func(*html.Node, string, string)
	walk = func(n *html.Node, service, class string) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch a.Key {
				case "data-service":
					service = a.Val
				case "class":
					class = a.Val
				}
			}
			if n.Data == "code" && n.FirstChild != nil {
				v := n.FirstChild.Data
				switch service + "/" + class {
				case "caldav/url":
					out.CalDAV = v
				case "caldav/login":
					out.CalUser = v
				case "carddav/url":
					out.CardDAV = v
				case "carddav/login":
					out.CardUser = v
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, service, class)
		}
	}
	walk(root, "", "")
	return out
}
