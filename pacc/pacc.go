// Package pacc publishes a provider's settings in the format of the IETF
// mailmaint draft "Automatic Configuration of Email, Calendar, and Contact
// Server Settings" (draft-ietf-mailmaint-pacc, "PACC"; the format of
// draft-eggert-mailmaint-uaautoconf, co-authored by Apple): one JSON document
// per provider for mail (IMAP, POP3, submission, JMAP), calendars (CalDAV)
// and contacts (CardDAV).
//
// How a client uses it: it fetches
// https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json
// and trusts the body only when base64(SHA-256(body)) equals the d= tag of a
// TXT record at _ua-auto-config.<domain> ("v=UAAC1; a=sha256; d=…"). The
// digest covers the exact bytes, so the document is rendered once, here, and
// the same bytes feed both the HTTP answer and the DNS record: they cannot
// disagree. Because one record serves every mailbox of a domain, the
// document holds no address and no per-domain value, and one document (and
// digest) serves all domains of a provider.
//
// What the format can say, and so what is left out:
//   - IMAP, POP3 and submission carry only a host name: clients connect with
//     implicit TLS on 993, 995 and 465 (RFC 8314). A server on another port,
//     or one with STARTTLS, cannot be described and is not published.
//   - HTTP services carry only an https URL on the default port; a URL with
//     another port is not published. A URL that differs per mailbox is
//     published as its context path (config.ServiceURL.Context), from which
//     clients discover the mailbox's collections (RFC 6764 section 6).
//   - There is no login name: clients log in with the address.
package pacc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"mailautoconf/internal/config"
)

// Path is where clients fetch the document, on ua-auto-config.<domain>.
const Path = "/.well-known/user-agent-configuration.json"

// HostPrefix is the label clients put in front of the mail domain.
const HostPrefix = "ua-auto-config."

// RecordName is the label of the integrity TXT record under the mail domain.
const RecordName = "_ua-auto-config"

// ContentType is the media type of the document (RFC 8259 section 11).
const ContentType = "application/json"

// Server is a mail server as the provider publishes it, in preference order.
type Server struct {
	Type           string // config.TypeIMAP, TypePOP3 or TypeSMTP
	Host           string
	Port           int
	Security       string   // config.Security*
	Authentication []string // config.Auth* names
}

// Service is an HTTP service (JMAP, CalDAV, CardDAV).
type Service struct {
	URL            config.ServiceURL
	Authentication []string // config.AuthHTTPBasic, AuthHTTPDigest, AuthOAuth2
}

// Provider is what the document is made from.
type Provider struct {
	Name, ShortName string
	// Documentation and LogoURL are absolute http(s) URLs or empty.
	Documentation, LogoURL string
	// OAuthIssuer is the provider's OAuth2 issuer (a host name as in
	// autoconfig, or an https URL), empty without OAuth2.
	OAuthIssuer string
	// Servers are the published mail servers in preference order.
	Servers []Server
	// JMAP, CalDAV and CardDAV are nil when the provider has none.
	JMAP, CalDAV, CardDAV *Service
}

// Document is a rendered PACC document.
type Document struct {
	// Body is the exact bytes served.
	Body []byte
	// Digest is base64(SHA-256(Body)), standard alphabet, padded.
	Digest string
}

// TXT is the value of the _ua-auto-config TXT record that vouches for Body.
func (d *Document) TXT() string { return "v=UAAC1; a=sha256; d=" + d.Digest }

// ErrNothing is returned for a provider none of whose servers the format can
// describe; such a provider publishes no document and no TXT record.
var ErrNothing = errors.New("no server can be described in PACC (IMAP, POP3 and submission need implicit TLS on 993, 995 and 465; HTTP services need https on port 443)")

// Draft length limits of info.provider (name: SHOULD ≤ 30, MUST ≤ 60;
// shortName: SHOULD ≤ 12, MUST ≤ 20), in characters.
const (
	maxName      = 60
	maxShortName = 20
)

// The JSON shapes, in the member order of the draft's example. Field order
// fixes the byte order of the output.
type (
	document struct {
		Protocols      protocols      `json:"protocols"`
		Authentication authentication `json:"authentication"`
		Info           info           `json:"info"`
	}
	protocols struct {
		JMAP    *urlEntry  `json:"jmap,omitempty"`
		IMAP    *hostEntry `json:"imap,omitempty"`
		POP3    *hostEntry `json:"pop3,omitempty"`
		Submit  *hostEntry `json:"submit,omitempty"`
		CalDAV  *urlEntry  `json:"caldav,omitempty"`
		CardDAV *urlEntry  `json:"carddav,omitempty"`
	}
	hostEntry struct {
		Host string `json:"host"`
	}
	urlEntry struct {
		URL string `json:"url"`
	}
	authentication struct {
		Password    bool         `json:"password"`
		OAuthPublic *oauthPublic `json:"oauth-public,omitempty"`
	}
	oauthPublic struct {
		Issuer string `json:"issuer"`
	}
	info struct {
		Provider provider `json:"provider"`
		Help     *help    `json:"help,omitempty"`
	}
	provider struct {
		Name      string `json:"name"`
		ShortName string `json:"shortName,omitempty"`
		Logo      []logo `json:"logo,omitempty"`
	}
	logo struct {
		URL         string `json:"url"`
		ContentType string `json:"content-type"`
	}
	help struct {
		Documentation string `json:"documentation,omitempty"`
	}
)

// implicitTLSPort is the port a PACC client uses for each server type
// (RFC 8314 section 7.3 for IMAP and POP3, section 7.1 for submission).
var implicitTLSPort = map[string]int{config.TypeIMAP: 993, config.TypePOP3: 995, config.TypeSMTP: 465}

// Render builds the document of a provider. It is a pure function: the same
// provider always gives the same bytes.
func Render(p *Provider) (*Document, error) {
	var doc document
	pr := &doc.Protocols
	password, oauth := false, false
	useMethods := func(methods []string) {
		for _, m := range methods {
			switch m {
			case config.AuthOAuth2:
				oauth = true
			case config.AuthClientTLS, config.AuthNone, config.AuthClientIP:
			default:
				// password-cleartext, password-encrypted, NTLM, GSSAPI,
				// http-basic, http-digest: the user types a password.
				password = true
			}
		}
	}
	for _, s := range p.Servers {
		if s.Security != config.SecurityTLS || s.Port != implicitTLSPort[s.Type] {
			continue
		}
		slot := map[string]**hostEntry{config.TypeIMAP: &pr.IMAP, config.TypePOP3: &pr.POP3, config.TypeSMTP: &pr.Submit}[s.Type]
		if slot == nil || *slot != nil {
			continue // one server per protocol: the first is preferred
		}
		*slot = &hostEntry{Host: s.Host}
		useMethods(s.Authentication)
	}
	for _, sv := range []struct {
		s    *Service
		slot **urlEntry
	}{{p.JMAP, &pr.JMAP}, {p.CalDAV, &pr.CalDAV}, {p.CardDAV, &pr.CardDAV}} {
		if sv.s == nil || sv.s.URL.Port != 443 {
			continue
		}
		u := sv.s.URL.ContextURL()
		if u == "" {
			continue // the host name differs per domain
		}
		*sv.slot = &urlEntry{URL: u}
		useMethods(sv.s.Authentication)
	}
	if *pr == (protocols{}) {
		return nil, ErrNothing
	}
	doc.Authentication.Password = password
	if oauth && p.OAuthIssuer != "" {
		doc.Authentication.OAuthPublic = &oauthPublic{Issuer: issuerURL(p.OAuthIssuer)}
	}
	doc.Info.Provider.Name = truncate(p.Name, maxName)
	if n := utf8.RuneCountInString(p.ShortName); n > 0 && n <= maxShortName {
		doc.Info.Provider.ShortName = p.ShortName
	}
	if ct := logoType(p.LogoURL); ct != "" {
		doc.Info.Provider.Logo = []logo{{URL: p.LogoURL, ContentType: ct}}
	}
	if strings.HasPrefix(p.Documentation, "https://") {
		doc.Info.Help = &help{Documentation: p.Documentation}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The document is not HTML: "&" and "<" in a URL or a name stay as
	// they are rather than becoming \u0026.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding the PACC document: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &Document{Body: buf.Bytes(), Digest: base64.StdEncoding.EncodeToString(sum[:])}, nil
}

// issuerURL turns the configured issuer into an RFC 8414 issuer identifier,
// which PACC requires: an https URL. The configuration (like autoconfig's
// <issuer>) names the issuer by host name; its identifier is then
// https://<host>, whose metadata is at /.well-known/oauth-authorization-server
// (RFC 8414 section 3).
func issuerURL(issuer string) string {
	if strings.HasPrefix(issuer, "https://") {
		return issuer
	}
	return "https://" + issuer
}

// logoType is the image media type of an https logo URL, from its file name
// extension; empty when the URL is not https or the type is not known (a
// client cannot choose a logo without its type, so none is published).
func logoType(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	return map[string]string{
		".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
		".gif": "image/gif", ".webp": "image/webp",
	}[strings.ToLower(path.Ext(u.Path))]
}

// truncate shortens s to at most n characters (code points).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
