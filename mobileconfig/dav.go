package mobileconfig

import (
	"crypto/sha1"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

// Calendars and contacts. A profile carries them only when the request
// asks (Request.DAV; the settings page lets people choose "mail only" or
// "mail, calendars and contacts"), and only for a provider with CalDAV or
// CardDAV: everyone else gets the mail profile, byte for byte.
//
// What the devices do with the payloads (Apple's com.apple.caldav.account
// and com.apple.carddav.account): the host name, port and UseSSL make the
// server's address; the principal URL is "the base URL to the user's
// calendar" (address book), where the device starts its discovery
// (current-user-principal, then the home set, RFC 6764 section 6). The
// mailbox's own URL is given, absolute, so that a URL with another port or
// a per-domain host name needs no guessing. Apple's payloads know only
// passwords: for an OAuth2-only service the device asks for one, as for
// mail. The payloads share the profile's identifier, so the profile with
// calendars replaces the mail-only one of the same address and the other
// way round.

// Template slots of the calendar and contacts payloads, after the mail
// profile's.
const (
	slotCalDAVUUID  = numSlots + iota // the CalDAV payload's PayloadUUID
	slotCardDAVUUID                   // the CardDAV payload's PayloadUUID
	// The canonical mailbox (an alias's provider domain), for the URL:
	// the DAV server, like the mail server, knows the mailbox. Address
	// and local part are percent-encoded as one path segment each
	// (config.ServiceURL.Expand), then escaped for XML; the domain is an
	// A-label and needs neither.
	slotPathAddress
	slotPathLocal
	slotCanonDomain
	// The canonical mailbox for the login names, escaped for XML.
	slotCanonAddress
	slotCanonLocal
	numDAVSlots
)

// CalDAVPayload is a com.apple.caldav.account payload.
type CalDAVPayload struct {
	CalDAVAccountDescription string `plist:"CalDAVAccountDescription"`
	CalDAVHostName           string `plist:"CalDAVHostName"`
	CalDAVPort               int    `plist:"CalDAVPort"`
	CalDAVPrincipalURL       string `plist:"CalDAVPrincipalURL"`
	CalDAVUseSSL             bool   `plist:"CalDAVUseSSL"`
	CalDAVUsername           string `plist:"CalDAVUsername"`
	PayloadDescription       string `plist:"PayloadDescription"`
	PayloadDisplayName       string `plist:"PayloadDisplayName"`
	PayloadIdentifier        string `plist:"PayloadIdentifier"`
	PayloadOrganization      string `plist:"PayloadOrganization"`
	PayloadType              string `plist:"PayloadType"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadVersion           int    `plist:"PayloadVersion"`
}

// CardDAVPayload is a com.apple.carddav.account payload.
type CardDAVPayload struct {
	CardDAVAccountDescription string `plist:"CardDAVAccountDescription"`
	CardDAVHostName           string `plist:"CardDAVHostName"`
	CardDAVPort               int    `plist:"CardDAVPort"`
	CardDAVPrincipalURL       string `plist:"CardDAVPrincipalURL"`
	CardDAVUseSSL             bool   `plist:"CardDAVUseSSL"`
	CardDAVUsername           string `plist:"CardDAVUsername"`
	PayloadDescription        string `plist:"PayloadDescription"`
	PayloadDisplayName        string `plist:"PayloadDisplayName"`
	PayloadIdentifier         string `plist:"PayloadIdentifier"`
	PayloadOrganization       string `plist:"PayloadOrganization"`
	PayloadType               string `plist:"PayloadType"`
	PayloadUUID               string `plist:"PayloadUUID"`
	PayloadVersion            int    `plist:"PayloadVersion"`
}

// hasDAV reports whether a profile of p can carry calendars or contacts.
func hasDAV(p *settings.Provider) bool { return p.CalDAV != nil || p.CardDAV != nil }

// davURL is a service's URL with markers for the canonical mailbox.
func davURL(s *settings.Service) string {
	return strings.NewReplacer(
		settings.PlaceholderAddress, tmpl.Marker(slotPathAddress),
		settings.PlaceholderLocal, tmpl.Marker(slotPathLocal),
		settings.PlaceholderDomain, tmpl.Marker(slotCanonDomain),
	).Replace(s.URL.Template)
}

// davHost is a service's host name with a marker for the canonical domain.
func davHost(s *settings.Service) string {
	return strings.ReplaceAll(s.URL.Host, settings.PlaceholderDomain, tmpl.Marker(slotCanonDomain))
}

// addDAV adds the provider's calendar and contacts payloads to a mail
// profile and names them in its description.
func addDAV(prof *Profile, p *settings.Provider, ident, addr string) {
	// The login name, like the URL, is the canonical mailbox's (as in
	// autoconfig and on the settings page): for an alias address the DAV
	// server knows the mailbox, not the alias.
	login := func(s *settings.Service) string {
		return tmpl.Login(s.Username, slotCanonAddress, slotCanonLocal, slotCanonDomain)
	}
	apps := "Mail"
	if s := p.CalDAV; s != nil {
		apps += ", Calendar"
		prof.PayloadContent = append(prof.PayloadContent, CalDAVPayload{
			CalDAVAccountDescription: addr,
			CalDAVHostName:           davHost(s),
			CalDAVPort:               s.URL.Port,
			CalDAVPrincipalURL:       davURL(s),
			CalDAVUseSSL:             true, // service URLs are https only
			CalDAVUsername:           login(s),
			PayloadDescription:       "Calendar account " + addr + " at " + p.DisplayName,
			PayloadDisplayName:       "Calendar: " + addr,
			PayloadIdentifier:        ident + ".caldav",
			PayloadOrganization:      p.DisplayName,
			PayloadType:              "com.apple.caldav.account",
			PayloadUUID:              tmpl.Marker(slotCalDAVUUID),
			PayloadVersion:           1,
		})
	}
	if s := p.CardDAV; s != nil {
		apps += ", Contacts"
		prof.PayloadContent = append(prof.PayloadContent, CardDAVPayload{
			CardDAVAccountDescription: addr,
			CardDAVHostName:           davHost(s),
			CardDAVPort:               s.URL.Port,
			CardDAVPrincipalURL:       davURL(s),
			CardDAVUseSSL:             true,
			CardDAVUsername:           login(s),
			PayloadDescription:        "Contacts account " + addr + " at " + p.DisplayName,
			PayloadDisplayName:        "Contacts: " + addr,
			PayloadIdentifier:         ident + ".carddav",
			PayloadOrganization:       p.DisplayName,
			PayloadType:               "com.apple.carddav.account",
			PayloadUUID:               tmpl.Marker(slotCardDAVUUID),
			PayloadVersion:            1,
		})
	}
	if i := strings.LastIndex(apps, ", "); i >= 0 {
		apps = apps[:i] + " and" + apps[i+1:]
	}
	prof.PayloadDescription = "Sets up the mailbox " + addr + " in " + apps + ". You will be asked for its password."
}

// davValues are the values of the calendar and contacts slots for an
// address: the payloads' UUIDs (name-based in the provider's namespace,
// like the mail payload's, of "caldav\x00" and "carddav\x00" and the
// lower-cased address) and the canonical mailbox for the URLs.
func davValues(ns uuid.UUID, s settings.Settings) [numDAVSlots - numSlots]string {
	canon := strings.ToLower(s.Address.Local) + "@" + strings.ToLower(s.Address.Domain)
	id := func(kind string) string {
		return strings.ToUpper(uuid.NewHash(sha1.New(), ns, []byte(kind+"\x00"+canon), 5).String())
	}
	c := s.Canonical()
	return [...]string{
		slotCalDAVUUID - numSlots:   id("caldav"),
		slotCardDAVUUID - numSlots:  id("carddav"),
		slotPathAddress - numSlots:  tmpl.EscapeXML(url.PathEscape(c.String())),
		slotPathLocal - numSlots:    tmpl.EscapeXML(url.PathEscape(c.Local)),
		slotCanonDomain - numSlots:  c.Domain,
		slotCanonAddress - numSlots: tmpl.EscapeXML(c.String()),
		slotCanonLocal - numSlots:   tmpl.EscapeXML(c.Local),
	}
}
