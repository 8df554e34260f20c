// Package autoconfig publishes Mozilla's autoconfig format ("clientConfig"
// version 1.1), read by Thunderbird, Thunderbird for Android (ex K-9 Mail),
// Evolution, KMail, Geary, FairEmail and others.
//
// How the clients find it (all checked against their behaviour):
//   - Thunderbird asks https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>
//     first, then https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=…,
//     then the same over plain http, then its own ISPDB. It fills %EMAILADDRESS% and
//     friends itself, so a placeholder answer works for it too.
//   - Thunderbird for Android, KMail and Geary ask the autoconfig host without
//     the emailaddress parameter, so the domain can only come from the Host
//     header. They get placeholders.
//   - Thunderbird for Android's parser is the strictest: it rejects the whole
//     document when any server says socketType "plain", and when the provider
//     id is not a plain host name. Plain servers are therefore left out unless
//     the configuration asks for them (publish_plain).
//   - The format has no schema; Thunderbird ignores the version attribute and
//     unknown elements, but wants booleans spelled exactly true/false.
//
// This package is part of the mailautoconf service, not a library: its
// renderers and handlers take the service's own model (internal/settings:
// a Catalog built from the service's configuration, the Settings of one
// request), which Go does not let code outside this module import, and its
// API changes with the service. It lives at the top of the module so that
// the client protocols are found in one look; other programs get the same
// documents from a running service over HTTP.
package autoconfig

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	"github.com/labstack/echo/v4"

	"mailautoconf/internal/bufpool"
	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
	"mailautoconf/internal/web"
)

// Template slots, filled per request.
const (
	slotDomain = iota // the domain asked for
	slotAddress
	slotLocal
	slotAddrDomain
	// The local part and the address percent-encoded as a path segment,
	// for the %EMAIL…% placeholders in the path of a calendar or address
	// book URL (config.ServiceURL.Expand): an address may hold "/", "?"
	// or "#". Used only by providers with CalDAV or CardDAV.
	slotPathAddress
	slotPathLocal
	numSlots
)

// socketType maps the configuration's security to the format's names.
var socketType = map[string]string{
	config.SecurityTLS:      "SSL",
	config.SecurityStartTLS: "STARTTLS",
	config.SecurityPlain:    "plain",
}

// Document builds the clientConfig document of a provider with template
// markers for the request's values. It is a pure function of the provider.
func Document(p *settings.Provider) *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("clientConfig")
	root.CreateAttr("version", "1.1")
	ep := root.CreateElement("emailProvider")
	ep.CreateAttr("id", p.ID)
	// Only the domain asked for is listed: a hoster's other customers are
	// nobody else's business, and with thousands of domains the answer
	// would be huge. Clients do not check this list.
	ep.CreateElement("domain").SetText(tmpl.Marker(slotDomain))
	ep.CreateElement("displayName").SetText(p.DisplayName)
	ep.CreateElement("displayShortName").SetText(p.ShortName)
	// The servers each client is told about, plain ones only with
	// publish_plain (settings.Provider.Servers).
	for _, s := range p.Servers {
		var e *etree.Element
		if s.Type == config.TypeSMTP {
			e = ep.CreateElement("outgoingServer")
		} else {
			e = ep.CreateElement("incomingServer")
		}
		e.CreateAttr("type", s.Type)
		e.CreateElement("hostname").SetText(s.Host)
		e.CreateElement("port").SetText(fmt.Sprint(s.Port))
		e.CreateElement("socketType").SetText(socketType[s.Security])
		e.CreateElement("username").SetText(tmpl.Login(s.Username, slotAddress, slotLocal, slotAddrDomain))
		for _, a := range s.Authentication {
			e.CreateElement("authentication").SetText(a)
		}
		if s.Type == config.TypeSMTP {
			// Use this server for this account, not the profile's
			// default SMTP server.
			e.CreateElement("useGlobalPreferredServer").SetText("false")
		}
	}
	if p.Documentation != "" {
		d := ep.CreateElement("documentation")
		d.CreateAttr("url", p.Documentation)
		descr := d.CreateElement("descr")
		descr.CreateAttr("lang", "en")
		descr.SetText("Manual mail settings")
	}
	if o := p.OAuth2; o != nil {
		e := root.CreateElement("oAuth2")
		e.CreateElement("issuer").SetText(o.Issuer)
		e.CreateElement("scope").SetText(o.Scope)
		e.CreateElement("authURL").SetText(o.AuthURL)
		e.CreateElement("tokenURL").SetText(o.TokenURL)
	}
	davElements(root, p)
	doc.Indent(2)
	return doc
}

// davElements adds the provider's address book and calendar in the form
// deployed in ISPDB entries and described by the format's wiki page:
// <addressBook type="carddav"> and <calendar type="caldav"> under
// clientConfig, each with username, authentication and serverURL (the
// mailmaint autoconfig draft writes <url>; no client reads that yet).
//
// Client quirks: Thunderbird's reader (readFromXML.sys.mjs) and Thunderbird
// for Android's (RealAutoconfigParser.kt) read only emailProvider and skip
// both elements; Thunderbird finds address books through the
// _carddavs._tcp records instead. They are written for the other readers
// and for people, and cost the two clients nothing. A provider without
// CalDAV and CardDAV gets no element, so its document is unchanged. JMAP
// has no element a 1.1 reader accepts and is left to PACC.
func davElements(root *etree.Element, p *settings.Provider) {
	for _, d := range []struct {
		tag, typ string
		svc      *settings.Service
	}{{"addressBook", "carddav", p.CardDAV}, {"calendar", "caldav", p.CalDAV}} {
		if d.svc == nil {
			continue
		}
		e := root.CreateElement(d.tag)
		e.CreateAttr("type", d.typ)
		e.CreateElement("username").SetText(tmpl.Login(d.svc.Username, slotAddress, slotLocal, slotAddrDomain))
		for _, a := range d.svc.Authentication {
			e.CreateElement("authentication").SetText(a)
		}
		// The mailbox's own URL; %EMAILDOMAIN% may also be in the host
		// name, where the A-label domain needs no encoding.
		e.CreateElement("serverURL").SetText(strings.NewReplacer(
			settings.PlaceholderAddress, tmpl.Marker(slotPathAddress),
			settings.PlaceholderLocal, tmpl.Marker(slotPathLocal),
			settings.PlaceholderDomain, tmpl.Marker(slotAddrDomain),
		).Replace(d.svc.URL.Template))
	}
}

// Renderer holds the compiled document of every provider of a catalog.
type Renderer struct {
	docs []*tmpl.Template
}

// NewRenderer renders every provider once.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	r := &Renderer{docs: make([]*tmpl.Template, len(cat.Providers))}
	for i, p := range cat.Providers {
		var err error
		if r.docs[i], err = compileDocument(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func compileDocument(p *settings.Provider) (*tmpl.Template, error) {
	s, err := Document(p).WriteToString()
	if err != nil {
		return nil, fmt.Errorf("rendering autoconfig for %s: %w", p.ID, err)
	}
	t, err := tmpl.Compile(s, numSlots)
	if err != nil {
		return nil, fmt.Errorf("compiling autoconfig for %s: %w", p.ID, err)
	}
	return t, nil
}

// memoKey is this renderer's key in a mailbox's settings.Variant.
type memoKey struct{}

// template returns the compiled document of p: the catalog's, or for a
// provider built for one mailbox (a login name and servers from the
// hoster's directory) its own, compiled once for that mailbox. Should that
// fail (it cannot for a checked mailbox), the domain's document serves.
func (r *Renderer) template(p *settings.Provider) *tmpl.Template {
	if p.Variant == nil {
		return r.docs[p.Index]
	}
	t, err := p.Variant.Memo(memoKey{}, func() (any, error) { return compileDocument(p) })
	if err != nil {
		return r.docs[p.Index]
	}
	return t.(*tmpl.Template)
}

// Append appends the document for s to dst. Without an address the
// %EMAIL…% placeholders stay for the client to fill.
func (r *Renderer) Append(dst []byte, s settings.Settings) []byte {
	t := r.template(s.Provider)
	if dst == nil {
		dst = make([]byte, 0, t.Size()+128)
	}
	if s.Address == nil {
		return t.Append(dst, s.Domain, settings.PlaceholderAddress, settings.PlaceholderLocal, settings.PlaceholderDomain,
			settings.PlaceholderAddress, settings.PlaceholderLocal)
	}
	// Login names are those of the mailbox: for an alias domain, the
	// canonical address (see settings.Settings.Expand).
	a := s.Canonical()
	addr := a.String()
	var pathAddr, pathLocal string
	if s.Provider.CalDAV != nil || s.Provider.CardDAV != nil {
		pathAddr, pathLocal = tmpl.EscapeXML(url.PathEscape(addr)), tmpl.EscapeXML(url.PathEscape(a.Local))
	}
	return t.Append(dst, s.Domain, tmpl.EscapeXML(addr), tmpl.EscapeXML(a.Local), a.Domain, pathAddr, pathLocal)
}

// ContentType is what Thunderbird expects; it also accepts text/xml.
const ContentType = "application/xml; charset=utf-8"

// Handler serves GET /mail/config-v1.1.xml and its .well-known twin. current
// returns the catalog and renderer of the configuration in force, so a
// reload never mixes two configurations within one request.
//
// Documents are filled into buffers recycled through a pool: the answer is
// copied into the connection's buffer by web.Blob, after which the buffer
// is free again, and a fresh 2 KB slice per request was most of what a
// request allocated.
func Handler(current func() (*settings.Catalog, *Renderer)) echo.HandlerFunc {
	var bufs bufpool.Pool
	return func(c echo.Context) error {
		cat, r := current()
		s, err := web.Resolve(c, cat, "autoconfig.")
		if err != nil {
			return web.Error(c, err)
		}
		// The mailbox's own login name and servers, when the hoster's
		// directory has them (bounded wait; unknown: the domain's).
		s = cat.WithMailbox(c.Request().Context(), s)
		buf := bufs.Get()
		defer bufs.Put(buf)
		*buf = r.Append(*buf, s)
		return web.Blob(c, http.StatusOK, ContentType, *buf)
	}
}
