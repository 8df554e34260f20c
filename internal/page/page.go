// Package page serves the settings page for people: the server names,
// ports and security a person types into a mail program that cannot set
// itself up, a short explanation of IMAP, POP3, SMTP, SSL/TLS and STARTTLS,
// and a button and QR code for the Apple configuration profile.
//
// The page shows the same settings.Settings value the autoconfig,
// Autodiscover and profile endpoints render, and leaves out the same
// servers (plain ones unless publish_plain), so a person reads exactly what
// the clients are told.
//
// What is independent of the request is prepared once per configuration:
// the server rows of every provider and the bare form page of every
// provider and language. A page for an address is executed with
// html/template per request, because the address appears in text, in
// attributes and inside URLs, and html/template's contextual escaping is
// what keeps a hostile address harmless in each of them.
//
// The page needs no JavaScript and no third-party assets: the stylesheet is
// embedded, the QR code is a PNG made here. Only a provider's calendar,
// contacts and JMAP URLs get copy buttons, from one embedded script that
// the policy allows by its hash (dav.go).
package page

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets/style.css
var styleCSS []byte

// Paths of the service's route table (internal/route) the page serves or
// links to. ProfilePath belongs to the mobileconfig endpoint; the page only
// links to it.
const (
	SettingsPath = route.SettingsPath
	QRPath       = route.QRPath
	StylePath    = route.StylePath
	ProfilePath  = route.ProfilePath
)

// Both are parsed once at start-up and only read afterwards.
var (
	langs    = mustLoadLanguages()
	pageTmpl = template.Must(template.ParseFS(templateFiles, "templates/*.html"))
	// styleURL carries a hash of the stylesheet, so that browsers may
	// cache it for good and still get a changed one after an upgrade.
	styleURL = func() string {
		sum := sha256.Sum256(styleCSS)
		return StylePath + "?v=" + hex.EncodeToString(sum[:6])
	}()
)

func mustLoadLanguages() *languages {
	ls, err := loadLanguages()
	if err != nil {
		panic(err)
	}
	return ls
}

// hostPrefixes are removed from the Host header to find whose page a bare
// visit (no address yet) is, for the provider's name and logo.
var hostPrefixes = []string{"autoconfig.", "autodiscover.", "mail.", "www."}

// brand is what the page shows of a provider besides its servers.
type brand struct {
	Name string
	Logo string
	Docs string
	csp  string
}

// row is one server as prepared at load time; Login is filled per request.
type row struct {
	Host     string
	Port     int
	Security string
	Auth     []string
	Plain    bool
	Badge    string
	username string // login-name template
	Login    string
}

// group is the table of one protocol.
type group struct {
	Protocol string // imap, pop3 or smtp
	Heading  string // filled per language
	Rows     []row
	T        *Messages
}

// provider is the per-provider part of the page, prepared once.
type provider struct {
	brand  *brand
	groups []group // imap, pop3, smtp; only those with servers
	// dav lists the calendar, contacts and JMAP services; choice says
	// whether the profile can carry calendars or contacts (dav.go).
	dav    []davRow
	choice bool
	// forms holds the bare form page for every language, and again with
	// the language chosen explicitly (?lang=): [explicit][language].
	forms [2][][]byte
}

// Renderer holds the page data of one configuration.
type Renderer struct {
	providers []*provider
	generic   [2][][]byte // form pages without a provider
	// qr holds QR codes drawn before, by the URL they hold.
	qr *lru.Cache[string, []byte]
}

// NewRenderer prepares the page of every provider of a catalog.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	qr, err := lru.New[string, []byte](QRCacheSize)
	if err != nil {
		return nil, fmt.Errorf("creating the QR code cache: %w", err)
	}
	r := &Renderer{providers: make([]*provider, len(cat.Providers)), qr: qr}
	for i, p := range cat.Providers {
		pv := &provider{brand: newBrand(p), groups: groups(p), dav: davRows(p), choice: profileChoice(p)}
		forms, err := formPages(pv.brand)
		if err != nil {
			return nil, fmt.Errorf("rendering the settings page of %s: %w", p.ID, err)
		}
		pv.forms = forms
		r.providers[i] = pv
	}
	if r.generic, err = formPages(nil); err != nil {
		return nil, fmt.Errorf("rendering the settings page: %w", err)
	}
	return r, nil
}

func newBrand(p *settings.Provider) *brand {
	b := &brand{Name: p.DisplayName, Logo: p.LogoURL, Docs: p.Documentation}
	b.csp = csp(b.Logo)
	return b
}

// memoKey is this renderer's key in a mailbox's settings.Variant.
type memoKey struct{}

// groupsOf returns the server tables of p: the catalog provider's, or for
// a provider built for one mailbox (its login name and servers from the
// hoster's directory) its own, made once for that mailbox.
func groupsOf(pv *provider, p *settings.Provider) []group {
	if p.Variant == nil {
		return pv.groups
	}
	g, _ := p.Variant.Memo(memoKey{}, func() (any, error) { return groups(p), nil })
	return g.([]group)
}

// groups sorts the servers clients are told about (settings.Provider.Servers)
// into the IMAP, POP3 and SMTP tables, in configured (preference) order
// within each.
func groups(p *settings.Provider) []group {
	var out []group
	for _, proto := range []string{config.TypeIMAP, config.TypePOP3, config.TypeSMTP} {
		g := group{Protocol: proto}
		for _, s := range p.Servers {
			if s.Type != proto {
				continue
			}
			g.Rows = append(g.Rows, row{
				Host: s.Host, Port: s.Port, Security: s.Security,
				Auth: s.Authentication, Plain: !s.Encrypted(),
				username: s.Username,
			})
		}
		if len(g.Rows) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// formPages renders the bare form for every language.
func formPages(b *brand) ([2][][]byte, error) {
	var out [2][][]byte
	for explicit := range 2 {
		for _, m := range langs.list {
			d := data{T: m, Brand: b, StyleURL: styleURL}
			if explicit == 1 {
				d.ExplicitLang = m.Tag
			}
			d.Langs = langLinks(m, nil)
			var buf bytes.Buffer
			if err := pageTmpl.ExecuteTemplate(&buf, "page", d); err != nil {
				return out, fmt.Errorf("language %s: %w", m.Tag, err)
			}
			out[explicit] = append(out[explicit], buf.Bytes())
		}
	}
	return out, nil
}

// data is what the template sees.
type data struct {
	T            *Messages
	ExplicitLang string // the ?lang= choice, kept in the form
	Langs        []langLink
	Brand        *brand
	StyleURL     string

	Input   string // what the person typed, shown back (escaped)
	Address string // normalised address, when it is served
	Problem string
	Detail  string

	Incoming   []group
	Outgoing   []group
	ProfileURL string
	QRURL      string

	// Parts and Hints are the order of the page's parts and of the
	// hints among them for the visitor's device (layoutFor).
	Parts, Hints []string
	// DAV lists the calendar, contacts and JMAP URLs; Script is the
	// copy buttons' script when it does. ProfileChoice offers the profile
	// with calendars and contacts (ProfileAction, QRDAVURL). All empty
	// for a provider without these services.
	DAV           []davRow
	Script        template.HTML
	ProfileChoice bool
	ProfileAction string
	QRDAVURL      string

	// OutlookURL is the Autodiscover URL Outlook reaches through the
	// _autodiscover._tcp record when it names another host than
	// autodiscover.<domain>; Outlook asks before it uses it. Empty
	// otherwise.
	OutlookURL string
}

type langLink struct {
	Tag, Name, URL string
	Current        bool
}

// langLinks links the page in every language, keeping the address.
func langLinks(cur *Messages, q url.Values) []langLink {
	out := make([]langLink, 0, len(langs.list))
	for _, m := range langs.list {
		v := url.Values{"lang": {m.Tag}}
		if a := q.Get("emailaddress"); a != "" {
			v.Set("emailaddress", a)
		}
		path := "/"
		if len(v) > 1 {
			path = SettingsPath
		}
		out = append(out, langLink{Tag: m.Tag, Name: m.LanguageName, URL: path + "?" + v.Encode(), Current: m == cur})
	}
	return out
}

func (g group) localized(m *Messages, s settings.Settings) group {
	switch g.Protocol {
	case config.TypeIMAP:
		g.Heading = m.IMAPHeading
	case config.TypePOP3:
		g.Heading = m.POP3Heading
	default:
		g.Heading = m.SMTPHeading
	}
	g.T = m
	rows := make([]row, len(g.Rows))
	for i, r := range g.Rows {
		r.Login = s.Expand(r.username)
		if len(g.Rows) > 1 {
			// The first is the one the clients are told to prefer.
			r.Badge = m.Alternative
			if i == 0 {
				r.Badge = m.Preferred
			}
		}
		rows[i] = r
	}
	g.Rows = rows
	return g
}

// Handler serves GET / and GET /settings. current returns the catalog and
// renderer of the configuration in force, so a reload never mixes two
// configurations within one request.
func Handler(current func() (*settings.Catalog, *Renderer)) echo.HandlerFunc {
	return func(c echo.Context) error {
		cat, r := current()
		req := c.Request()
		m, explicit := langs.pick(req)
		h := c.Response().Header()
		h.Set("Content-Language", m.Tag)
		h.Add("Vary", "Accept-Language")

		raw, asked := web.Query(req, "emailaddress", "email")
		host, hostErr := cat.ForHost(req.Host, hostPrefixes...)
		var b *brand
		if hostErr == nil {
			b = r.providers[host.Provider.Index].brand
		}
		if !asked {
			forms := r.generic
			if b != nil {
				forms = r.providers[host.Provider.Index].forms
			}
			e := 0
			if explicit != "" {
				e = 1
			}
			return r.write(c, http.StatusOK, b, false, forms[e][langs.index(m)])
		}

		// What was typed is shown back to be corrected, with every
		// character the address alphabet refuses (and any byte that is
		// not UTF-8) as U+FFFD: no direction override or invisible
		// character on the page, no noncharacter in the document.
		d := data{T: m, ExplicitLang: explicit, Brand: b, StyleURL: styleURL, Input: address.Displayable(raw)}
		d.Langs = langLinks(m, url.Values{"emailaddress": {raw}})
		code := http.StatusOK
		s, err := cat.ForAddress(raw)
		switch {
		case err == nil:
			web.Note(c, s)
			// The mailbox's own login name and servers, when the
			// hoster's directory has them (bounded wait; unknown: the
			// domain's).
			s = cat.WithMailbox(req.Context(), s)
			// The User-Agent orders the page (layoutFor); caches
			// must not hand one device's order to another.
			h.Add("Vary", "User-Agent")
			l := layoutFor(req.UserAgent())
			d.Parts, d.Hints = l.parts, l.hints
			pv := r.providers[s.Provider.Index]
			d.Brand = pv.brand
			d.Address = s.Address.String()
			d.Input = d.Address // as normalised, e.g. with an A-label domain
			for _, g := range groupsOf(pv, s.Provider) {
				lg := g.localized(m, s)
				if g.Protocol == config.TypeSMTP {
					d.Outgoing = append(d.Outgoing, lg)
				} else {
					d.Incoming = append(d.Incoming, lg)
				}
			}
			if t := s.Provider.AutodiscoverTarget; t != "" {
				d.OutlookURL = "https://" + t + "/autodiscover/autodiscover.xml"
			}
			q := url.Values{"emailaddress": {d.Address}}.Encode()
			d.ProfileURL = ProfilePath + "?" + q
			d.QRURL = QRPath + "?" + q
			if d.DAV = localizedDAV(pv.dav, m, s); d.DAV != nil {
				d.Script = copyScript
			}
			if pv.choice {
				d.ProfileChoice, d.ProfileAction = true, ProfilePath
				d.QRDAVURL = withDAV(QRPath, d.Address)
			}
		case strings.TrimSpace(raw) == "":
			code, d.Problem, d.Input = http.StatusBadRequest, m.EmptyAddress, ""
		case errors.Is(err, settings.ErrUnknownDomain):
			code, d.Problem, d.Detail = http.StatusNotFound, m.UnknownDomain, m.UnknownDomainFix
		case address.IsInvalid(err):
			// The reason (in English) says what is wrong without
			// repeating the input.
			code, d.Problem, d.Detail = http.StatusBadRequest, m.InvalidAddress, err.Error()
		default:
			code, d.Problem = web.Status(err), m.InvalidAddress
		}
		var buf bytes.Buffer
		if err := pageTmpl.ExecuteTemplate(&buf, "page", d); err != nil {
			return fmt.Errorf("rendering the settings page: %w", err)
		}
		// The page names a person's mailbox: no shared cache keeps it,
		// and no search engine lists it.
		h.Set("Cache-Control", "private, no-store")
		h.Set("X-Robots-Tag", "noindex")
		return r.write(c, code, d.Brand, d.Script != "", buf.Bytes())
	}
}

// write sends a page with the headers every page gets; script says that
// the page carries the copy script.
func (r *Renderer) write(c echo.Context, code int, b *brand, script bool, body []byte) error {
	h := c.Response().Header()
	policy := csp("")
	if b != nil {
		policy = b.csp
	}
	if script {
		policy = scriptCSP(policy)
	}
	h.Set("Content-Security-Policy", policy)
	// The address is in the query string: neither the provider's logo
	// host nor its help pages learn it from a Referer header.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	return c.HTMLBlob(code, body)
}

// csp allows the page's own stylesheet and images, and the configured
// logo's origin. No script runs on the page at all (scriptCSP allows the
// copy script where the page has it).
func csp(logo string) string {
	img := "'self'"
	if u, err := url.Parse(logo); err == nil && logo != "" {
		img += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; style-src 'self'; img-src " + img +
		"; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

// index is the position of a language in langs.list.
func (ls *languages) index(m *Messages) int {
	for i, x := range ls.list {
		if x == m {
			return i
		}
	}
	return 0
}

// StyleHandler serves the embedded stylesheet. Its URL carries a content
// hash, so it may be cached for a year.
func StyleHandler(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", styleCSS)
}
