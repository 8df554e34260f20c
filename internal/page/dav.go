package page

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/url"
	"strings"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// Calendars, contacts and JMAP. For a provider with any of them the page
// lists their URLs and login names, each URL with a copy button, and lets
// people choose whether the Apple profile sets up mail only or mail,
// calendars and contacts. A provider without them gets the page it always
// got, byte for byte, with a policy that runs no script.
//
// The copy buttons need a script. It is embedded, inlined and allowed by
// its hash in the Content-Security-Policy of these pages only: no other
// script can run, no inline handler exists, and the page keeps working
// without it (the URLs can be selected; the choice is a plain form).

//go:embed assets/copy.js
var copyJS string

var (
	// copyScript is the element that carries the script; its text is
	// exactly copyJS, whose hash the policy names.
	copyScript = template.HTML("<script>" + copyJS + "</script>")
	copyHash   = func() string {
		sum := sha256.Sum256([]byte(copyJS))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}()
)

// davRow is one service on the page; URL and Login are filled per request.
type davRow struct {
	Kind  string // config.ServiceCalDAV, ServiceCardDAV or ServiceJMAP
	Name  string // filled per language
	URL   string
	Login string
	svc   *settings.Service
}

// davRows prepares the provider's services, in the order CalDAV, CardDAV,
// JMAP.
func davRows(p *settings.Provider) []davRow {
	var out []davRow
	for _, s := range p.Services() {
		out = append(out, davRow{Kind: s.Kind, svc: s})
	}
	return out
}

// localizedDAV fills the rows for one address and language: the
// mailbox's own URLs and login names (the canonical mailbox for an alias,
// as in every other answer).
func localizedDAV(rows []davRow, m *Messages, s settings.Settings) []davRow {
	if len(rows) == 0 {
		return nil
	}
	out := make([]davRow, len(rows))
	for i, r := range rows {
		switch r.Kind {
		case config.ServiceCalDAV:
			r.Name = m.DAVCalDAV
		case config.ServiceCardDAV:
			r.Name = m.DAVCardDAV
		default:
			r.Name = m.DAVJMAP
		}
		r.URL = s.URLFor(r.svc)
		r.Login = s.Expand(r.svc.Username)
		out[i] = r
	}
	return out
}

// profileChoice reports whether the provider's profile can carry
// calendars or contacts, so that the page offers the choice.
func profileChoice(p *settings.Provider) bool { return p.CalDAV != nil || p.CardDAV != nil }

// withDAV is the profile or QR code URL that asks for calendars and
// contacts too (mobileconfig's dav parameter).
func withDAV(path, address string) string {
	return path + "?" + url.Values{"emailaddress": {address}, "dav": {"1"}}.Encode()
}

// scriptCSP is the policy of a page that runs the copy script: the page's
// policy with the script's hash as the only source of scripts.
func scriptCSP(policy string) string {
	return strings.Replace(policy, "default-src 'none'; ", "default-src 'none'; script-src "+copyHash+"; ", 1)
}
