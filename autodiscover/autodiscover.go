// Package autodiscover publishes Microsoft Autodiscover: the "POX" (plain old
// XML) protocol of [MS-OXDSCLI] for the Outlook and the ActiveSync
// (mobilesync) response schemas, and the Autodiscover v2 JSON endpoint that
// points newer Outlooks at it.
//
// Who asks, and how (what the code below accommodates):
//   - Outlook for Windows 2016 and later may first GET
//     https://autodiscover.<domain>/autodiscover/autodiscover.json/v1.0/<address>?Protocol=Autodiscoverv1
//     (lower-case "v"), then POST the POX request to the URL it is given.
//     Older versions, Outlook for Mac, eM Client and Thunderbird's Exchange
//     lookup POST https://<domain>/autodiscover/autodiscover.xml and
//     https://autodiscover.<domain>/autodiscover/autodiscover.xml directly,
//     with every casing of the path ("/Autodiscover/Autodiscover.xml",
//     "/AutoDiscover/AutoDiscover.xml"), and as a last resort the target of
//     the _autodiscover._tcp SRV record.
//   - Outlook and Thunderbird send the user's password with the request
//     (Authorization: Basic) when the server asks for it, and sometimes
//     unasked. This service never asks (no 401, no WWW-Authenticate), and
//     neither logs nor echoes the header: the answer is public anyway.
//   - Outlook for Windows 2016 and later ("simplified account creation")
//     skips POX answers for IMAP and POP3 accounts in many builds and falls
//     back to Microsoft's own provider lookup or to manual entry; Outlook
//     for Mac, older Outlooks, eM Client, Thunderbird and mobile clients
//     use them.
//   - Errors are answered with HTTP 200 and an Error element, as Exchange
//     does: clients read the body, and some treat a 4xx/5xx status as "try
//     the next URL" rather than as an answer.
//
// This package is part of the mailautoconf service, not a library: its
// renderers and handlers take the service's own model (internal/settings:
// a Catalog built from the service's configuration, the Settings of one
// request), which Go does not let code outside this module import, and its
// API changes with the service. It lives at the top of the module so that
// the client protocols are found in one look; other programs get the same
// documents from a running service over HTTP.
package autodiscover

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

// XML namespaces of the POX protocol.
const (
	NSRequest   = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	NSResponse  = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	NSOutlook   = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	NSMobileReq = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
	NSMobile    = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// Error codes of [MS-OXDSCLI] 2.2.4.1.1.3 (and [MS-ASCMD] for mobilesync).
const (
	CodeInvalidRequest = 600 // Invalid Request
	CodeNoProvider     = 601 // no provider for the requested schema
)

// ContentType of every POX answer; Outlook wants text/xml.
const ContentType = "text/xml; charset=utf-8"

// Template slots of the settings and redirect documents.
const (
	slotAddress = iota // the address, also the login name's %EMAILADDRESS%
	slotLocal
	slotAddrDomain
	numSlots
)

// Template slots of the error documents.
const (
	slotTime = iota
	slotDebug
	numErrorSlots
)

// protocolType maps the configuration's server types to the Type element.
var protocolType = map[string]string{
	config.TypeIMAP: "IMAP",
	config.TypePOP3: "POP3",
	config.TypeSMTP: "SMTP",
}

// encryption maps the configuration's security to the Encryption element.
//
// Microsoft never defined a value for STARTTLS. Encryption comes from
// Outlook's own account dialog, where "SSL" has always meant TLS from the
// first byte on a dedicated port and "TLS" meant upgrading a cleartext
// connection with STARTTLS (newer Outlooks label the same choices
// "SSL/TLS" and "STARTTLS"). So implicit TLS is "SSL", STARTTLS is "TLS".
// "Auto" would let Outlook probe, which can silently end in cleartext.
var encryption = map[string]string{
	config.SecurityTLS:      "SSL",
	config.SecurityStartTLS: "TLS",
	config.SecurityPlain:    "None",
}

// onOff spells a boolean the way the schema wants it.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// envelope creates the Autodiscover root and its Response in namespace ns
// ("" keeps the base namespace, as Exchange's error answers do).
func envelope(ns string) (*etree.Document, *etree.Element) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	if ns != "" {
		resp.CreateAttr("xmlns", ns)
	}
	return doc, resp
}

// Document builds the Outlook-schema settings answer of a provider, with
// template markers for the address. It is a pure function of the provider.
func Document(p *settings.Provider) *etree.Document {
	doc, resp := envelope(NSOutlook)
	// User/DisplayName is the name Outlook puts on outgoing mail. The
	// configuration knows no user names, and the provider's name would be
	// wrong there, so it is left out: Outlook then asks the user.
	user := resp.CreateElement("User")
	user.CreateElement("AutoDiscoverSMTPAddress").SetText(tmpl.Marker(slotAddress))
	acc := resp.CreateElement("Account")
	acc.CreateElement("AccountType").SetText("email")
	acc.CreateElement("Action").SetText("settings")
	firstIncomingLogin := ""
	if in := p.Incoming(); len(in) > 0 {
		firstIncomingLogin = in[0].Username
	}
	// The servers every client is told about, in configured order
	// (settings.Provider.Servers: plain ones only with publish_plain).
	for _, s := range p.Servers {
		e := acc.CreateElement("Protocol")
		e.CreateElement("Type").SetText(protocolType[s.Type])
		e.CreateElement("Server").SetText(s.Host)
		e.CreateElement("Port").SetText(strconv.Itoa(s.Port))
		e.CreateElement("LoginName").SetText(tmpl.Login(s.Username, slotAddress, slotLocal, slotAddrDomain))
		// DomainRequired on would make Outlook prepend a Windows domain.
		e.CreateElement("DomainRequired").SetText("off")
		// SPA (Secure Password Authentication) is Microsoft's name for
		// NTLM, and it defaults to on: it must be switched off unless
		// the server really prefers NTLM.
		e.CreateElement("SPA").SetText(onOff(len(s.Authentication) > 0 && s.Authentication[0] == config.AuthNTLM))
		// SSL says "encrypted at all" to clients that predate
		// Encryption, which overrides it for those that know it.
		e.CreateElement("SSL").SetText(onOff(s.Encrypted()))
		e.CreateElement("Encryption").SetText(encryption[s.Security])
		auth := needsAuth(s)
		e.CreateElement("AuthRequired").SetText(onOff(auth))
		if s.Type == config.TypeSMTP && auth {
			// UsePOPAuth: log in to SMTP with the incoming server's
			// name and password, so Outlook asks for one password.
			// Only true when the login names agree.
			e.CreateElement("UsePOPAuth").SetText(onOff(s.Username == firstIncomingLogin))
		}
	}
	doc.Indent(2)
	return doc
}

// needsAuth reports whether a server wants a login at all: an SMTP relay
// for known client addresses does not.
func needsAuth(s settings.Server) bool {
	for _, a := range s.Authentication {
		if a != config.AuthNone && a != config.AuthClientIP {
			return true
		}
	}
	return false
}

// RedirectDocument builds the Outlook-schema answer for an alias address:
// Action redirectAddr names the canonical address, and the client starts
// over with it ([MS-OXDSCLI] 3.1.5.3).
func RedirectDocument() *etree.Document {
	doc, resp := envelope(NSOutlook)
	acc := resp.CreateElement("Account")
	acc.CreateElement("AccountType").SetText("email")
	acc.CreateElement("Action").SetText("redirectAddr")
	acc.CreateElement("RedirectAddr").SetText(tmpl.Marker(slotAddress))
	doc.Indent(2)
	return doc
}

// MobileDocument builds the mobilesync answer ([MS-ASCMD] 2.2.2.1) naming
// the provider's ActiveSync URL.
func MobileDocument(activeSyncURL string) *etree.Document {
	doc, resp := envelope(NSMobile)
	resp.CreateElement("Culture").SetText("en:us")
	resp.CreateElement("User").CreateElement("EMailAddress").SetText(tmpl.Marker(slotAddress))
	srv := resp.CreateElement("Action").CreateElement("Settings").CreateElement("Server")
	srv.CreateElement("Type").SetText("MobileSync")
	srv.CreateElement("Url").SetText(activeSyncURL)
	// Name repeats the URL: [MS-ASCMD] 2.2.3.120.1, and older iOS
	// versions read Name rather than Url.
	srv.CreateElement("Name").SetText(activeSyncURL)
	doc.Indent(2)
	return doc
}

// MobileRedirectDocument builds the mobilesync answer for an alias address:
// Action/Redirect with the canonical address.
func MobileRedirectDocument() *etree.Document {
	doc, resp := envelope(NSMobile)
	resp.CreateElement("Culture").SetText("en:us")
	resp.CreateElement("Action").CreateElement("Redirect").SetText(tmpl.Marker(slotAddress))
	doc.Indent(2)
	return doc
}

// ErrorDocument builds an Error answer in namespace ns ("" for the base
// namespace) with markers for the time and the debug text. id identifies
// the server, like Exchange's Id attribute.
func ErrorDocument(ns string, code int, message, id string) *etree.Document {
	doc, resp := envelope(ns)
	e := resp.CreateElement("Error")
	e.CreateAttr("Time", tmpl.Marker(slotTime))
	e.CreateAttr("Id", id)
	e.CreateElement("ErrorCode").SetText(strconv.Itoa(code))
	e.CreateElement("Message").SetText(message)
	e.CreateElement("DebugData").SetText(tmpl.Marker(slotDebug))
	doc.Indent(2)
	return doc
}

// Error answers the renderer knows.
type errorKind int

const (
	errInvalid       errorKind = iota // 600 in the base namespace (Outlook schema)
	errNoSchema                       // 601 in the base namespace: unknown schema
	errMobileInvalid                  // 600 in the mobilesync namespace
	errMobileNone                     // 601 in the mobilesync namespace: no ActiveSync
	numErrorKinds
)

var errorSpecs = [numErrorKinds]struct {
	ns      string
	code    int
	message string
}{
	errInvalid:       {"", CodeInvalidRequest, "Invalid Request"},
	errNoSchema:      {"", CodeNoProvider, "Provider is not available"},
	errMobileInvalid: {NSMobile, CodeInvalidRequest, "Invalid Request"},
	errMobileNone:    {NSMobile, CodeNoProvider, "Provider is not available"},
}

// Renderer holds every answer of a catalog, rendered once per configuration.
type Renderer struct {
	settings   []*tmpl.Template // per provider
	mobile     []*tmpl.Template // per provider; nil without an ActiveSync URL
	activeSync []string         // per provider; "" when none
	// activeSyncJSON is the v2 JSON answer for ActiveSync, per provider;
	// nil when none.
	activeSyncJSON [][]byte
	redirect       *tmpl.Template
	mobileRedi     *tmpl.Template
	errors         [numErrorKinds]*tmpl.Template
}

// NewRenderer renders every provider once.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	n := len(cat.Providers)
	r := &Renderer{
		settings:   make([]*tmpl.Template, n),
		mobile:     make([]*tmpl.Template, n),
		activeSync: make([]string, n),
		// The JSON answers are pure functions of the provider.
		activeSyncJSON: make([][]byte, n),
	}
	id := serverID(cat)
	var err error
	for i, p := range cat.Providers {
		if r.settings[i], err = compileAddress(Document(p)); err != nil {
			return nil, fmt.Errorf("rendering autodiscover for %s: %w", p.ID, err)
		}
		if p.ActiveSyncURL == "" {
			continue
		}
		if u, err := url.Parse(p.ActiveSyncURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("provider %s: activesync_url %q is not an absolute https URL", p.ID, p.ActiveSyncURL)
		}
		r.activeSync[i] = p.ActiveSyncURL
		if r.activeSyncJSON[i], err = json.Marshal(jsonAnswer{ProtocolActiveSync, p.ActiveSyncURL}); err != nil {
			return nil, fmt.Errorf("rendering the ActiveSync JSON answer for %s: %w", p.ID, err)
		}
		if r.mobile[i], err = compileAddress(MobileDocument(p.ActiveSyncURL)); err != nil {
			return nil, fmt.Errorf("rendering mobilesync autodiscover for %s: %w", p.ID, err)
		}
	}
	if r.redirect, err = compileAddress(RedirectDocument()); err != nil {
		return nil, fmt.Errorf("rendering autodiscover redirect: %w", err)
	}
	if r.mobileRedi, err = compileAddress(MobileRedirectDocument()); err != nil {
		return nil, fmt.Errorf("rendering mobilesync redirect: %w", err)
	}
	for k, spec := range errorSpecs {
		if r.errors[k], err = compile(ErrorDocument(spec.ns, spec.code, spec.message, id), numErrorSlots); err != nil {
			return nil, fmt.Errorf("rendering autodiscover error %d: %w", spec.code, err)
		}
	}
	return r, nil
}

// serverID is the Id attribute of error answers. It identifies the
// answering server to an administrator reading a client log; a hash of the
// configured providers is stable across restarts and says nothing secret.
func serverID(cat *settings.Catalog) string {
	h := fnv.New32a()
	for _, p := range cat.Providers {
		h.Write([]byte(p.ID))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}

// compile renders an error document and compiles it.
func compile(doc *etree.Document, slots int) (*tmpl.Template, error) {
	s, err := doc.WriteToString()
	if err != nil {
		return nil, err
	}
	return tmpl.Compile(s, slots)
}

// compileAddress renders a document with address slots and compiles it.
// The whole address is written as local part, "@", domain: escaping each
// part on its own gives the same bytes as escaping the address, and a
// request then fills the template from the parsed address without building
// the address string first.
func compileAddress(doc *etree.Document) (*tmpl.Template, error) {
	s, err := doc.WriteToString()
	if err != nil {
		return nil, err
	}
	s = strings.ReplaceAll(s, tmpl.Marker(slotAddress), tmpl.Marker(slotLocal)+"@"+tmpl.Marker(slotAddrDomain))
	return tmpl.Compile(s, numSlots)
}

// appendAddress fills a settings or redirect template with an address.
// With dst nil it allocates a buffer with room for the address in every
// login name.
func appendAddress(dst []byte, t *tmpl.Template, local, domain string) []byte {
	local, domain = tmpl.EscapeXML(local), tmpl.EscapeXML(domain)
	if dst == nil {
		dst = make([]byte, 0, t.Size()+8*(len(local)+len(domain)+1))
	}
	// compileAddress left no slotAddress in the template.
	return t.Append(dst, "", local, domain)
}

// Settings returns the Outlook-schema answer for resolved settings that
// carry an address: the provider's servers, or a redirect to the canonical
// address for an alias domain.
func (r *Renderer) Settings(s settings.Settings) []byte { return r.AppendSettings(nil, s) }

// AppendSettings is Settings appending to dst, for handlers that reuse
// their buffers.
func (r *Renderer) AppendSettings(dst []byte, s settings.Settings) []byte {
	if s.CanonicalDomain != "" {
		c := s.Canonical()
		return appendAddress(dst, r.redirect, c.Local, c.Domain)
	}
	return appendAddress(dst, r.settings[s.Provider.Index], s.Address.Local, s.Address.Domain)
}

// Mobile returns the mobilesync answer, and false when the provider has no
// ActiveSync URL.
func (r *Renderer) Mobile(s settings.Settings) ([]byte, bool) { return r.AppendMobile(nil, s) }

// AppendMobile is Mobile appending to dst; it returns dst unchanged and
// false when the provider has no ActiveSync URL.
func (r *Renderer) AppendMobile(dst []byte, s settings.Settings) ([]byte, bool) {
	t := r.mobile[s.Provider.Index]
	if t == nil {
		return dst, false
	}
	if s.CanonicalDomain != "" {
		c := s.Canonical()
		return appendAddress(dst, r.mobileRedi, c.Local, c.Domain), true
	}
	return appendAddress(dst, t, s.Address.Local, s.Address.Domain), true
}

// ActiveSyncURL returns the provider's ActiveSync URL, "" when it has none.
func (r *Renderer) ActiveSyncURL(p *settings.Provider) string { return r.activeSync[p.Index] }

// Error returns an error answer. debug must not contain anything the client
// sent; it is escaped here.
func (r *Renderer) Error(kind errorKind, now time.Time, debug string) []byte {
	return r.AppendError(nil, kind, now, debug)
}

// AppendError is Error appending to dst.
func (r *Renderer) AppendError(dst []byte, kind errorKind, now time.Time, debug string) []byte {
	t := r.errors[kind]
	if dst == nil {
		dst = make([]byte, 0, t.Size()+len(debug)+16)
	}
	// Time as Exchange writes it: hh:mm:ss.fffffff, UTC.
	var stamp [len("15:04:05.0000000")]byte
	return t.Append(dst, string(now.UTC().AppendFormat(stamp[:0], "15:04:05.0000000")), tmpl.EscapeXML(debug))
}
