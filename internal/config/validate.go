package config

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"mailautoconf/internal/address"
)

// Server types, security modes and authentication methods understood by the
// renderers. The authentication names are those of Thunderbird's autoconfig
// format, which the other protocols map from.
const (
	TypeIMAP = "imap"
	TypePOP3 = "pop3"
	TypeSMTP = "smtp"

	SecurityTLS      = "tls"      // implicit TLS (a.k.a. SSL): TLS from the first byte
	SecurityStartTLS = "starttls" // cleartext connection upgraded with STARTTLS
	SecurityPlain    = "plain"    // no encryption at all

	AuthCleartext = "password-cleartext"
	AuthEncrypted = "password-encrypted"
	AuthOAuth2    = "OAuth2"
	AuthNTLM      = "NTLM"
	AuthGSSAPI    = "GSSAPI"
	AuthClientIP  = "client-IP-address"
	AuthClientTLS = "TLS-client-cert"
	AuthNone      = "none"

	// DefaultUsername is the login name when none is configured.
	DefaultUsername = "%EMAILADDRESS%"
)

// DefaultPort is the IANA port of a service for a security mode
// (RFC 8314 for the implicit-TLS ports, RFC 6409 for submission).
func DefaultPort(typ, security string) int {
	tls := security == SecurityTLS
	switch typ {
	case TypeIMAP:
		if tls {
			return 993
		}
		return 143
	case TypePOP3:
		if tls {
			return 995
		}
		return 110
	case TypeSMTP:
		if tls {
			return 465
		}
		return 587
	}
	return 0
}

var validAuth = map[string]bool{
	AuthCleartext: true, AuthEncrypted: true, AuthOAuth2: true, AuthNTLM: true,
	AuthGSSAPI: true, AuthClientIP: true, AuthClientTLS: true, AuthNone: true,
}

// placeholders accepted in login-name templates. %REALNAME% is not: a login
// name built from the display name would never work.
var placeholders = []string{"%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"}

type validator struct {
	file  string
	lines map[string]int
	errs  Errors
	// reported holds the paths with an error, so that the check of
	// every string (allText) does not report a field twice.
	reported map[string]bool
}

// index records the line of every node by its path, e.g.
// "providers[0].servers[2].port".
func (v *validator) index(path string, n *yaml.Node) {
	v.lines[path] = n.Line
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			v.index(p, n.Content[i+1])
			// Report a field at its key's line: for a block sequence or
			// mapping the value starts on the next line.
			v.lines[p] = n.Content[i].Line
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			v.index(path+"["+strconv.Itoa(i)+"]", c)
		}
	}
}

// line finds the line of path, or of its closest ancestor that is in the file
// (a missing field is reported at the line of the mapping that lacks it).
func (v *validator) line(path string) int {
	for {
		if l, ok := v.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return v.lines[""]
		}
		path = path[:i]
	}
}

func (v *validator) errorf(path, format string, args ...any) {
	if v.reported == nil {
		v.reported = map[string]bool{}
	}
	v.reported[path] = true
	v.errs = append(v.errs, fmt.Sprintf("%s:%d: %s: %s", v.file, v.line(path), path, fmt.Sprintf(format, args...)))
}

func (v *validator) config(c *Config) {
	if c.Listen.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.Listen.HTTP); err != nil {
			v.errorf("listen.http", "%q is not a host:port address", c.Listen.HTTP)
		}
	}
	v.ops(c)
	v.dns(c)
	v.signing(c)
	v.acme(c)
	if len(c.Providers) == 0 {
		v.errorf("providers", "at least one provider is required")
	}
	owner := map[string]string{} // domain -> path of its first mention
	ids := map[string]string{}
	aliases := make([]map[string]string, len(c.Providers))
	for i := range c.Providers {
		p := &c.Providers[i]
		path := fmt.Sprintf("providers[%d]", i)
		var domains []string
		domains, aliases[i] = v.provider(path, p)
		if id := p.NormalizedID(); id != "" {
			if prev, dup := ids[id]; dup {
				v.errorf(path+".id", "%q is also the id of %s (line %d)", id, prev, v.line(prev))
			}
			ids[id] = path + ".id"
		}
		for j, d := range domains {
			if d == "" {
				continue // not a domain, reported
			}
			dp := fmt.Sprintf("%s.domains[%d]", path, j)
			if prev, dup := owner[d]; dup {
				v.errorf(dp, "domain %s is already served by %s (line %d)", d, prev, v.line(prev))
				continue
			}
			owner[d] = dp
		}
	}
	v.aliasOwners(aliases, owner)
}

// MaxServedDomain is the longest domain served: the longest name derived
// from it, _autodiscover._tcp.<domain>, must still be a valid DNS name of at
// most 253 characters (255 octets in wire form), and so must
// autoconfig.<domain>, which Thunderbird resolves.
const MaxServedDomain = 253 - len("_autodiscover._tcp.")

// provider checks a provider. It returns its domains normalised ("" for
// one that is not a domain) and its aliases normalised, for the checks
// across providers.
func (v *validator) provider(path string, p *Provider) (domains []string, aliases map[string]string) {
	switch id := p.NormalizedID(); {
	case id == "":
		v.errorf(path+".id", "a provider id (a host name such as mail.example.com) is required")
	case !address.IsHostname(id):
		v.errorf(path+".id", "%q is not a host name", id)
	}
	if len(p.Domains) == 0 {
		v.errorf(path+".domains", "at least one domain is required")
	}
	domains = make([]string, len(p.Domains))
	for i, d := range p.Domains {
		norm, err := ParseServedDomain(d)
		if err != nil {
			v.errorf(fmt.Sprintf("%s.domains[%d]", path, i), "%v", err)
			continue
		}
		domains[i] = norm
	}
	aliases = v.aliases(path, p, domains)
	v.url(path+".documentation_url", p.Documentation, "http", "https")
	v.url(path+".logo_url", p.LogoURL, "http", "https")
	v.url(path+".activesync_url", p.ActiveSyncURL, "https")
	v.username(path+".username", p.LoginTemplate())
	v.auth(path+".authentication", p.AuthMethods(), "")
	if p.OAuth2 != nil {
		o := p.OAuth2
		for _, f := range []struct{ name, val string }{{"issuer", o.Issuer}, {"scope", o.Scope}, {"auth_url", o.AuthURL}, {"token_url", o.TokenURL}} {
			if f.val == "" {
				v.errorf(path+".oauth2."+f.name, "required")
			}
		}
		v.url(path+".oauth2.auth_url", o.AuthURL, "https")
		v.url(path+".oauth2.token_url", o.TokenURL, "https")
	}
	v.services(path, p)
	if len(p.Servers) == 0 {
		v.errorf(path+".servers", "at least one server is required")
		return domains, aliases
	}
	var in, out, inPublished, outPublished int
	for i := range p.Servers {
		s := p.Server(i)
		v.server(fmt.Sprintf("%s.servers[%d]", path, i), p, p.Servers[i], s)
		published := p.Publishes(s)
		switch s.Type {
		case TypeIMAP, TypePOP3:
			in++
			if published {
				inPublished++
			}
		case TypeSMTP:
			out++
			if published {
				outPublished++
			}
		}
	}
	switch {
	case in == 0:
		v.errorf(path+".servers", "no incoming (imap or pop3) server")
	case inPublished == 0:
		v.errorf(path+".servers", "every incoming server is plain; set publish_plain: true to publish them anyway")
	}
	switch {
	case out == 0:
		v.errorf(path+".servers", "no outgoing (smtp) server")
	case outPublished == 0:
		v.errorf(path+".servers", "every outgoing server is plain; set publish_plain: true to publish them anyway")
	}
	return domains, aliases
}

// url checks an optional absolute URL with one of the given schemes.
func (v *validator) url(path, raw string, schemes ...string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		v.errorf(path, "%q is not an absolute %s URL", raw, strings.Join(schemes, " or "))
	}
}

// server checks one server: raw as written, s with the defaults applied
// (Provider.Server).
func (v *validator) server(path string, p *Provider, raw, s Server) {
	switch s.Type {
	case TypeIMAP, TypePOP3, TypeSMTP:
	case "":
		v.errorf(path+".type", "required (imap, pop3 or smtp)")
	default:
		v.errorf(path+".type", "%q is not imap, pop3 or smtp", s.Type)
	}
	switch {
	case s.Host == "":
		v.errorf(path+".host", "required")
	case net.ParseIP(s.Host) == nil && !address.IsHostname(s.Host):
		v.errorf(path+".host", "%q is not a host name or IP address", s.Host)
	}
	switch s.Security {
	case SecurityTLS, SecurityStartTLS, SecurityPlain:
	default:
		v.errorf(path+".security", "%q is not tls, starttls or plain", s.Security)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.errorf(path+".port", "%d is not a port", s.Port)
	}
	if raw.Username != "" {
		v.username(path+".username", s.Username)
	}
	if len(raw.Authentication) != 0 {
		v.auth(path+".authentication", s.Authentication, s.Type)
	}
	if s.Type != TypeSMTP {
		for _, a := range s.Authentication {
			if a == AuthNone || a == AuthClientIP {
				v.errorf(path+".authentication", "%q is only possible for smtp servers", a)
			}
		}
	}
	for _, a := range s.Authentication {
		if a == AuthOAuth2 && p.OAuth2 == nil {
			v.errorf(path+".authentication", "OAuth2 needs the provider's oauth2 section")
		}
	}
}

func (v *validator) auth(path string, list []string, typ string) {
	if len(list) == 0 {
		v.errorf(path, "at least one method is required")
	}
	for _, a := range list {
		if !validAuth[a] {
			v.errorf(path, "%q is not one of password-cleartext, password-encrypted, OAuth2, NTLM, GSSAPI, client-IP-address, TLS-client-cert, none", a)
		}
	}
}

// username checks a login-name template: only the known placeholders, and
// every '%' part of one.
func (v *validator) username(path, t string) {
	rest := t
	for _, p := range placeholders {
		rest = strings.ReplaceAll(rest, p, "")
	}
	if strings.Contains(rest, "%") {
		v.errorf(path, "%q has an unknown placeholder; use %s", t, strings.Join(placeholders, ", "))
	}
}

// allText checks every string of the configuration, wherever it is (keys
// of mappings too), with text. It runs last and skips the fields that have
// an error already.
func (v *validator) allText(path string, val reflect.Value) {
	switch val.Kind() {
	case reflect.String:
		if !v.reported[path] {
			v.text(path, val.String())
		}
	case reflect.Pointer:
		if !val.IsNil() {
			v.allText(path, val.Elem())
		}
	case reflect.Slice:
		for i := range val.Len() {
			v.allText(path+"["+strconv.Itoa(i)+"]", val.Index(i))
		}
	case reflect.Map:
		keys := val.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			kp := path + "." + k.String()
			v.allText(kp, k)
			v.allText(kp, val.MapIndex(k))
		}
	case reflect.Struct:
		t := val.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if path != "" {
				name = path + "." + name
			}
			v.allText(name, val.Field(i))
		}
	}
}

// text rejects control and private-use characters, which no client shows
// sensibly and which the renderers reserve for the markers of their
// templates (internal/tmpl): no configured string can be taken for one.
func (v *validator) text(path, s string) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0xe000 && r <= 0xf8ff) || r == 0xfffd {
			v.errorf(path, "contains a control or private-use character")
			return
		}
	}
}
