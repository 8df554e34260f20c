// Package mobileconfig publishes Apple configuration profiles
// (".mobileconfig") that set up a mail account in iOS, iPadOS and macOS Mail.
//
// Apple's Mail looks up neither autoconfig nor Autodiscover: people open a
// link in Safari, which downloads the profile, and install it in Settings
// (iOS: "Profile Downloaded"; macOS: System Settings > Privacy & Security >
// Profiles). What the devices do with it, and what this package therefore
// does:
//   - A profile whose PayloadIdentifier equals an installed one replaces it;
//     a new identifier adds a second account. Identifiers and UUIDs are
//     therefore derived from the provider and the (lower-cased) address only,
//     so downloading the profile again, or for the other protocol, replaces
//     the account instead of duplicating it.
//   - The payload holds exactly one incoming and one outgoing server; there
//     is no fallback list as in autoconfig. The implicit-TLS server is
//     preferred, then STARTTLS.
//   - "…UseSSL" means "use TLS", for implicit TLS and STARTTLS alike: Mail
//     tries implicit TLS on the well-known ports and STARTTLS elsewhere.
//   - Ports and booleans must be plist <integer> and <true/>: a port written
//     as <string> makes the installation fail with a vague error.
//   - No password is ever put in a profile: Apple allows it only in
//     encrypted profiles, and the device asks for it during installation.
//   - Unsigned profiles install with a red "Not Verified"; a CMS-signed one
//     whose signer chains to a trusted root shows "Verified" (see sign.go).
package mobileconfig

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"howett.net/plist"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
	"mailautoconf/internal/web"
	"mailautoconf/internal/xmlesc"
)

// ContentType makes Safari hand the download to the profile installer.
// Apple's tools send it without parameters.
const ContentType = "application/x-apple-aspen-config"

// Template slots, filled per request with XML-escaped values.
const (
	slotAddress     = iota // the normalised address
	slotLocal              // its local part, for login-name templates
	slotAddrDomain         // its domain, for login-name templates
	slotIdent              // the address as part of a PayloadIdentifier
	slotProfileUUID        // the profile's PayloadUUID
	slotMailUUID           // the mail payload's PayloadUUID
	slotName               // the sender's full name (EmailAccountName)
	numSlots
)

// protocols the profile can configure, in the order of the Renderer's arrays.
var protocols = [...]string{config.TypeIMAP, config.TypePOP3}

// accountType is Apple's name for each protocol.
var accountType = map[string]string{
	config.TypeIMAP: "EmailTypeIMAP",
	config.TypePOP3: "EmailTypePOP",
}

// Profile is the top-level dictionary of a configuration profile
// (Apple's TopLevel schema). Field order is the output order.
type Profile struct {
	PayloadContent      []MailPayload `plist:"PayloadContent"`
	PayloadDescription  string        `plist:"PayloadDescription"`
	PayloadDisplayName  string        `plist:"PayloadDisplayName"`
	PayloadIdentifier   string        `plist:"PayloadIdentifier"`
	PayloadOrganization string        `plist:"PayloadOrganization"`
	// PayloadRemovalDisallowed false: the user may always remove the
	// account again.
	PayloadRemovalDisallowed bool   `plist:"PayloadRemovalDisallowed"`
	PayloadType              string `plist:"PayloadType"`
	PayloadUUID              string `plist:"PayloadUUID"`
	PayloadVersion           int    `plist:"PayloadVersion"`
}

// MailPayload is a com.apple.mail.managed payload.
type MailPayload struct {
	EmailAccountDescription string `plist:"EmailAccountDescription"`
	// EmailAccountName is the sender's full name; without it the device
	// asks for it during installation.
	EmailAccountName                       string `plist:"EmailAccountName,omitempty"`
	EmailAccountType                       string `plist:"EmailAccountType"`
	EmailAddress                           string `plist:"EmailAddress"`
	IncomingMailServerAuthentication       string `plist:"IncomingMailServerAuthentication"`
	IncomingMailServerHostName             string `plist:"IncomingMailServerHostName"`
	IncomingMailServerPortNumber           int    `plist:"IncomingMailServerPortNumber"`
	IncomingMailServerUseSSL               bool   `plist:"IncomingMailServerUseSSL"`
	IncomingMailServerUsername             string `plist:"IncomingMailServerUsername"`
	OutgoingMailServerAuthentication       string `plist:"OutgoingMailServerAuthentication"`
	OutgoingMailServerHostName             string `plist:"OutgoingMailServerHostName"`
	OutgoingMailServerPortNumber           int    `plist:"OutgoingMailServerPortNumber"`
	OutgoingMailServerUseSSL               bool   `plist:"OutgoingMailServerUseSSL"`
	OutgoingMailServerUsername             string `plist:"OutgoingMailServerUsername"`
	OutgoingPasswordSameAsIncomingPassword bool   `plist:"OutgoingPasswordSameAsIncomingPassword"`
	PayloadDescription                     string `plist:"PayloadDescription"`
	PayloadDisplayName                     string `plist:"PayloadDisplayName"`
	PayloadIdentifier                      string `plist:"PayloadIdentifier"`
	PayloadOrganization                    string `plist:"PayloadOrganization"`
	PayloadType                            string `plist:"PayloadType"`
	PayloadUUID                            string `plist:"PayloadUUID"`
	PayloadVersion                         int    `plist:"PayloadVersion"`
}

// ErrNoServer is returned when the provider publishes no server of the
// protocol asked for.
var ErrNoServer = errors.New("no server of this protocol is published for this domain")

// errBadRequest marks problems with the request's own parameters.
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

// pick returns the server of type typ a device should use: implicit TLS
// before STARTTLS, plain only when the provider publishes plain servers and
// has nothing better; the configured order breaks ties.
func pick(p *settings.Provider, typ string) (config.Server, bool) {
	rank := map[string]int{config.SecurityTLS: 0, config.SecurityStartTLS: 1, config.SecurityPlain: 2}
	best, bestRank := config.Server{}, 3
	for _, s := range p.Servers {
		if s.Type != typ || (s.Security == config.SecurityPlain && !p.PublishPlain) {
			continue
		}
		if r := rank[s.Security]; r < bestRank {
			best, bestRank = s, r
		}
	}
	return best, bestRank < 3
}

// authentication maps the configured methods (Thunderbird's names, in
// preference order) to Apple's. Apple's payload cannot express OAuth2,
// GSSAPI or client certificates; for those the device falls back to a
// password prompt, which works with the app passwords such providers offer.
func authentication(methods []string, smtp bool) string {
	for _, m := range methods {
		switch m {
		case config.AuthCleartext:
			return "EmailAuthPassword"
		case config.AuthEncrypted:
			return "EmailAuthCRAMMD5"
		case config.AuthNTLM:
			return "EmailAuthNTLM"
		case config.AuthNone, config.AuthClientIP:
			if smtp {
				return "EmailAuthNone"
			}
		}
	}
	return "EmailAuthPassword"
}

// reverseDNS turns "mail.example.com" into "com.example.mail", the usual
// form of payload identifiers.
func reverseDNS(host string) string {
	labels := strings.Split(host, ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".")
}

// Document builds the profile of a provider for one protocol, with template
// markers for the request's values. It is a pure function of its arguments;
// withName says whether the sender's name is included.
func Document(p *settings.Provider, protocol string, withName bool) (*Profile, error) {
	in, ok := pick(p, protocol)
	if !ok {
		return nil, fmt.Errorf("%s: %w", protocol, ErrNoServer)
	}
	out, ok := pick(p, config.TypeSMTP)
	if !ok {
		return nil, fmt.Errorf("smtp: %w", ErrNoServer)
	}
	addr := tmpl.Marker(slotAddress)
	ident := reverseDNS(p.ID) + "." + tmpl.Marker(slotIdent)
	mail := MailPayload{
		EmailAccountDescription:                addr,
		EmailAccountType:                       accountType[protocol],
		EmailAddress:                           addr,
		IncomingMailServerAuthentication:       authentication(in.Authentication, false),
		IncomingMailServerHostName:             in.Host,
		IncomingMailServerPortNumber:           in.Port,
		IncomingMailServerUseSSL:               in.Security != config.SecurityPlain,
		IncomingMailServerUsername:             tmpl.Login(in.Username, slotAddress, slotLocal, slotAddrDomain),
		OutgoingMailServerAuthentication:       authentication(out.Authentication, true),
		OutgoingMailServerHostName:             out.Host,
		OutgoingMailServerPortNumber:           out.Port,
		OutgoingMailServerUseSSL:               out.Security != config.SecurityPlain,
		OutgoingMailServerUsername:             tmpl.Login(out.Username, slotAddress, slotLocal, slotAddrDomain),
		OutgoingPasswordSameAsIncomingPassword: true,
		PayloadDescription:                     "Mail account " + addr + " at " + p.DisplayName,
		PayloadDisplayName:                     "Mail: " + addr,
		PayloadIdentifier:                      ident + ".account",
		PayloadOrganization:                    p.DisplayName,
		PayloadType:                            "com.apple.mail.managed",
		PayloadUUID:                            tmpl.Marker(slotMailUUID),
		PayloadVersion:                         1,
	}
	if withName {
		mail.EmailAccountName = tmpl.Marker(slotName)
	}
	return &Profile{
		PayloadContent:      []MailPayload{mail},
		PayloadDescription:  "Sets up the mailbox " + addr + " in Mail. You will be asked for its password.",
		PayloadDisplayName:  p.DisplayName + " (" + addr + ")",
		PayloadIdentifier:   ident,
		PayloadOrganization: p.DisplayName,
		PayloadType:         "Configuration",
		PayloadUUID:         tmpl.Marker(slotProfileUUID),
		PayloadVersion:      1,
	}, nil
}

// SignedCacheSize bounds the number of signed profiles kept per
// configuration. A signature costs far more than rendering (see the
// benchmarks), and people tend to download a profile more than once.
const SignedCacheSize = 2048

// Renderer holds the compiled profiles of every provider of a catalog and
// the signer of the configuration, if any.
type Renderer struct {
	// docs[provider][protocol][withName]; nil when the provider has no
	// server of that protocol.
	docs [][len(protocols)][2]*tmpl.Template
	// first is the index into protocols of each provider's first
	// published incoming server type, the default protocol.
	first  []int
	ns     []uuid.UUID // per provider, the namespace of its UUIDs
	signer *Signer
	signed *lru.Cache[[sha256.Size]byte, []byte]
}

// NewRenderer renders every provider once and loads the signing
// certificate the catalog's configuration names, if any.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	signer, err := LoadSigner(cat.Config.Signing)
	if err != nil {
		return nil, err
	}
	return newRenderer(cat, signer)
}

func newRenderer(cat *settings.Catalog, signer *Signer) (*Renderer, error) {
	n := len(cat.Providers)
	r := &Renderer{
		docs:   make([][len(protocols)][2]*tmpl.Template, n),
		first:  make([]int, n),
		ns:     make([]uuid.UUID, n),
		signer: signer,
	}
	if signer != nil {
		c, err := lru.New[[sha256.Size]byte, []byte](SignedCacheSize)
		if err != nil {
			return nil, fmt.Errorf("creating the signed-profile cache: %w", err)
		}
		r.signed = c
	}
	for i, p := range cat.Providers {
		r.ns[i] = uuid.NewSHA1(uuid.NameSpaceDNS, []byte(p.ID))
		r.first[i] = -1
		for pi, proto := range protocols {
			for named := range 2 {
				doc, err := Document(p, proto, named == 1)
				if errors.Is(err, ErrNoServer) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("building the profile of %s: %w", p.ID, err)
				}
				b, err := plist.MarshalIndent(doc, plist.XMLFormat, "\t")
				if err != nil {
					return nil, fmt.Errorf("rendering the profile of %s: %w", p.ID, err)
				}
				if r.docs[i][pi][named], err = tmpl.Compile(string(b)+"\n", numSlots); err != nil {
					return nil, fmt.Errorf("compiling the profile of %s: %w", p.ID, err)
				}
			}
		}
		for _, s := range p.Incoming() {
			if s.Security == config.SecurityPlain && !p.PublishPlain {
				continue
			}
			for pi, proto := range protocols {
				if s.Type == proto && r.docs[i][pi][0] != nil {
					r.first[i] = pi
				}
			}
			if r.first[i] >= 0 {
				break
			}
		}
	}
	return r, nil
}

// Signed reports whether the renderer signs its profiles.
func (r *Renderer) Signed() bool { return r.signer != nil }

// Request is what one profile is made for.
type Request struct {
	Settings settings.Settings // with an address
	// Protocol is "imap" or "pop3"; empty means the provider's first
	// incoming server type.
	Protocol string
	// Name is the sender's full name, or empty.
	Name string
}

// Profile returns the profile for req: an XML property list, or the CMS
// SignedData (DER) wrapping it when the configuration names a signing
// certificate.
func (r *Renderer) Profile(req Request) ([]byte, error) {
	doc, err := r.Unsigned(nil, req)
	if err != nil || r.signer == nil {
		return doc, err
	}
	key := sha256.Sum256(doc)
	if b, ok := r.signed.Get(key); ok {
		return b, nil
	}
	b, err := r.signer.Sign(doc)
	if err != nil {
		return nil, err
	}
	r.signed.Add(key, b)
	return b, nil
}

// Unsigned appends the XML property list for req to dst.
func (r *Renderer) Unsigned(dst []byte, req Request) ([]byte, error) {
	s := req.Settings
	if s.Address == nil {
		return nil, errBadRequest{settings.ErrNoDomain.Error()}
	}
	i := s.Provider.Index
	pi := r.first[i]
	if req.Protocol != "" {
		pi = -1
		for j, proto := range protocols {
			if req.Protocol == proto {
				pi = j
			}
		}
		if pi < 0 {
			return nil, errBadRequest{"protocol must be imap or pop3"}
		}
	}
	if pi < 0 || r.docs[i][pi][0] == nil {
		return nil, fmt.Errorf("%s: %w", protocols[max(pi, 0)], ErrNoServer)
	}
	named := 0
	if req.Name != "" {
		named = 1
	}
	t := r.docs[i][pi][named]
	if dst == nil {
		dst = make([]byte, 0, t.Size()+512)
	}
	a := s.Address.String()
	// A mailbox is practically never case-sensitive: Alice@ and alice@
	// are the same account on the device and must replace each other.
	canon := strings.ToLower(a)
	ns := r.ns[i]
	return t.Append(dst,
		xmlesc.String(a),
		xmlesc.String(s.Address.Local),
		s.Address.Domain,
		identPart(canon),
		strings.ToUpper(uuid.NewSHA1(ns, []byte("profile\x00"+canon)).String()),
		strings.ToUpper(uuid.NewSHA1(ns, []byte("mail\x00"+canon)).String()),
		xmlesc.String(req.Name),
	), nil
}

// identPart turns an address into a PayloadIdentifier component. Letters,
// digits and ".@+-" stay; every other byte becomes "_xx" (hex), '_' included,
// so that two addresses never share an identifier and nothing that a file
// system or an XML parser might mind gets through.
func identPart(a string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(a))
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// FileName is the download's file name for an address: only characters
// that are safe in a quoted header parameter and in every file system, so
// that no address can change the Content-Disposition header or the place
// the file is saved to.
func FileName(address string) string {
	var b strings.Builder
	for _, c := range address {
		if b.Len() >= 100 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".")
	if name == "" {
		name = "mail"
	}
	return name + ".mobileconfig"
}

// MaxNameLength bounds the sender's name (in characters).
const MaxNameLength = 200

// checkName validates the sender's name typed by a user.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", errBadRequest{"name is not valid UTF-8"}
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		return "", errBadRequest{fmt.Sprintf("name is longer than %d characters", MaxNameLength)}
	}
	for _, c := range name {
		// Control characters are not allowed in XML 1.0 (or make no
		// sense in a name); U+FFFE/U+FFFF are not XML characters.
		if unicode.IsControl(c) || c == 0xfffe || c == 0xffff {
			return "", errBadRequest{"name contains a control character"}
		}
	}
	return name, nil
}

// Handler serves GET /mobileconfig?emailaddress=…[&name=…][&protocol=imap|pop3].
// current returns the catalog and renderer of the configuration in force,
// so a reload never mixes two configurations within one request.
func Handler(current func() (*settings.Catalog, *Renderer)) echo.HandlerFunc {
	return func(c echo.Context) error {
		cat, r := current()
		req := c.Request()
		s, err := web.ResolveAddress(c, cat)
		if err != nil {
			return web.Error(c, err)
		}
		proto, _ := web.Query(req, "protocol")
		proto = strings.ToLower(strings.TrimSpace(proto))
		if proto == "pop" {
			proto = config.TypePOP3
		}
		name, _ := web.Query(req, "name")
		if name, err = checkName(name); err != nil {
			return c.String(http.StatusBadRequest, err.Error()+"\n")
		}
		body, err := r.Profile(Request{Settings: s, Protocol: proto, Name: name})
		var bad errBadRequest
		switch {
		case errors.As(err, &bad):
			return c.String(http.StatusBadRequest, bad.msg+"\n")
		case errors.Is(err, ErrNoServer):
			return c.String(http.StatusNotFound, ErrNoServer.Error()+"\n")
		case err != nil:
			return fmt.Errorf("mobileconfig for %s: %w", s.Provider.ID, err)
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": FileName(s.Address.String())}))
		// The profile names a person's mailbox: no shared cache keeps it.
		h.Set("Cache-Control", "private, no-store")
		return web.Blob(c, http.StatusOK, ContentType, body)
	}
}
