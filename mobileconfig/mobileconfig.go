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
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"howett.net/plist"

	"mailautoconf/internal/address"
	"mailautoconf/internal/bufpool"
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
				// The address is filled as local part, "@", domain:
				// escaped part by part it reads the same, and a request
				// need not build the address string.
				text := strings.ReplaceAll(string(b)+"\n", tmpl.Marker(slotAddress),
					tmpl.Marker(slotLocal)+"@"+tmpl.Marker(slotAddrDomain))
				if r.docs[i][pi][named], err = tmpl.Compile(text, numSlots); err != nil {
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
	return r.sign(doc)
}

// sign returns the signed form of doc, from the cache when the same
// profile was signed before. The result never shares memory with doc.
func (r *Renderer) sign(doc []byte) ([]byte, error) {
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
	ids := derive(r.ns[i], s.Address.Local, s.Address.Domain)
	return t.Append(dst,
		"", // the address: local part, "@", domain
		xmlesc.String(s.Address.Local),
		s.Address.Domain,
		ids[:len(ids)-2*uuidLen],
		ids[len(ids)-2*uuidLen:len(ids)-uuidLen],
		ids[len(ids)-uuidLen:],
		xmlesc.String(req.Name),
	), nil
}

// uuidLen is the length of a UUID in its text form.
const uuidLen = 36

// derive returns, in one string, the address's PayloadIdentifier component
// followed by the profile's and the mail payload's UUIDs: SHA-1 name-based
// (version 5) UUIDs in the provider's namespace, of "profile\x00" and
// "mail\x00" and the lower-cased address, in upper case. Both are computed
// in a buffer on the stack; the string is the only allocation.
func derive(ns uuid.UUID, local, domain string) string {
	const maxPrefix = len("profile\x00")
	var scratch [len(ns) + maxPrefix + 2*address.MaxAddress]byte
	in := append(scratch[:0], ns[:]...)
	in = append(in, "profile\x00"...)
	start := len(in)
	// A mailbox is practically never case-sensitive: Alice@ and alice@
	// are the same account on the device and must replace each other.
	in = appendLower(in, local)
	in = append(in, '@')
	in = appendLower(in, domain)
	canon := in[start:]

	var out [4*address.MaxAddress + 2*uuidLen]byte
	ids := appendIdent(out[:0], canon)
	ids = appendUUID(ids, sha1.Sum(in))
	in = append(append(in[:len(ns)], "mail\x00"...), canon...)
	ids = appendUUID(ids, sha1.Sum(in))
	return string(ids)
}

// appendLower appends strings.ToLower(s), without allocating when s is
// ASCII.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(dst, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUUID appends the version 5 UUID of a SHA-1 sum, as
// uuid.NewSHA1(…).String() in upper case writes it.
func appendUUID(dst []byte, sum [sha1.Size]byte) []byte {
	const hex = "0123456789ABCDEF"
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	for i, b := range sum[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[b>>4], hex[b&15])
	}
	return dst
}

// appendIdent appends an address as a PayloadIdentifier component. Letters,
// digits and ".@+-" stay; every other byte becomes "_xx" (hex), '_'
// included, so that two addresses never share an identifier and nothing
// that a file system or an XML parser might mind gets through.
func appendIdent(dst, a []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range a {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '+', c == '-':
			dst = append(dst, c)
		default:
			dst = append(dst, '_', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// FileName is the download's file name for an address: only characters
// that are safe in a quoted header parameter and in every file system, so
// that no address can change the Content-Disposition header or the place
// the file is saved to.
func FileName(address string) string { return string(appendFileName(nil, address)) }

// maxFileName bounds the characters of a file name taken from the address.
const maxFileName = 100

// appendFileName appends FileName of the concatenated parts to dst: every
// character but letters, digits and ".@+-_" becomes '_', at most
// maxFileName of them, without leading dots, "mail" if nothing is left, and
// ".mobileconfig". The parts are valid UTF-8 (a parsed address), so taking
// them one after the other reads the same characters as their
// concatenation.
func appendFileName(dst []byte, parts ...string) []byte {
	start, n := len(dst), 0
	for _, p := range parts {
		for _, c := range p {
			if n >= maxFileName {
				break
			}
			n++
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '@' || c == '+' || c == '-' || c == '_' {
				dst = append(dst, byte(c))
			} else {
				dst = append(dst, '_')
			}
		}
	}
	dots := 0
	for start+dots < len(dst) && dst[start+dots] == '.' {
		dots++
	}
	dst = append(dst[:start], dst[start+dots:]...)
	if len(dst) == start {
		dst = append(dst, "mail"...)
	}
	return append(dst, ".mobileconfig"...)
}

// contentDisposition is the Content-Disposition header of a profile for
// local@domain, as mime.FormatMediaType writes "attachment" with the
// filename parameter: the file name is a MIME token unless it holds an
// '@', the only one of its characters that must be quoted, and never holds
// a quote or backslash. Built on the stack; the string is the only
// allocation.
func contentDisposition(local, domain string) string {
	const head = "attachment; filename="
	var b [len(head) + 2 + maxFileName + len("mail.mobileconfig")]byte
	out := append(b[:0], head...)
	out = append(out, '"')
	out = appendFileName(out, local, "@", domain)
	name := out[len(head)+1:]
	if bytes.IndexByte(name, '@') >= 0 {
		return string(append(out, '"'))
	}
	copy(out[len(head):], name)
	return string(out[:len(out)-1])
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
	var bufs bufpool.Pool
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
		// The property list goes into a pooled buffer; the response
		// writer has copied it when Blob returns. A signed profile is
		// a new slice (or the cache's), never the buffer.
		buf := bufs.Get()
		defer bufs.Put(buf)
		body, err := r.Unsigned((*buf)[:0], Request{Settings: s, Protocol: proto, Name: name})
		if err == nil {
			*buf = body[:0]
			if r.signer != nil {
				body, err = r.sign(body)
			}
		}
		if err != nil {
			// Inside the branch: errors.As makes bad escape to the heap.
			var bad errBadRequest
			switch {
			case errors.As(err, &bad):
				return c.String(http.StatusBadRequest, bad.msg+"\n")
			case errors.Is(err, ErrNoServer):
				return c.String(http.StatusNotFound, ErrNoServer.Error()+"\n")
			}
			return fmt.Errorf("mobileconfig for %s: %w", s.Provider.ID, err)
		}
		// Both values in one slice, each capped at length one so that
		// an Add appends elsewhere; the keys are canonical already.
		h := c.Response().Header()
		v := make([]string, 2)
		v[0] = contentDisposition(s.Address.Local, s.Address.Domain)
		// The profile names a person's mailbox: no shared cache keeps it.
		v[1] = "private, no-store"
		h[echo.HeaderContentDisposition] = v[0:1:1]
		h[echo.HeaderCacheControl] = v[1:2:2]
		return web.Blob(c, http.StatusOK, ContentType, body)
	}
}
