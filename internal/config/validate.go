package config

import (
	"fmt"
	"net"
	"net/url"
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
	for i := range c.Providers {
		p := &c.Providers[i]
		path := fmt.Sprintf("providers[%d]", i)
		v.provider(path, p)
		if p.ID != "" {
			if prev, dup := ids[p.ID]; dup {
				v.errorf(path+".id", "%q is also the id of %s (line %d)", p.ID, prev, v.line(prev))
			}
			ids[p.ID] = path + ".id"
		}
		for j, d := range p.Domains {
			dp := fmt.Sprintf("%s.domains[%d]", path, j)
			if prev, dup := owner[d]; dup {
				v.errorf(dp, "domain %s is already served by %s (line %d)", d, prev, v.line(prev))
				continue
			}
			owner[d] = dp
		}
	}
	v.aliasOwners(c, owner)
}

// MaxServedDomain is the longest domain served: the longest name derived
// from it, _autodiscover._tcp.<domain>, must still be a valid DNS name of at
// most 253 characters (255 octets in wire form), and so must
// autoconfig.<domain>, which Thunderbird resolves.
const MaxServedDomain = 253 - len("_autodiscover._tcp.")

func (v *validator) provider(path string, p *Provider) {
	p.ID = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p.ID), "."))
	switch {
	case p.ID == "":
		v.errorf(path+".id", "a provider id (a host name such as mail.example.com) is required")
	case !address.IsHostname(p.ID):
		v.errorf(path+".id", "%q is not a host name", p.ID)
	}
	if p.DisplayName == "" {
		p.DisplayName = p.ID
	}
	if p.ShortName == "" {
		p.ShortName = p.DisplayName
	}
	v.text(path+".display_name", p.DisplayName)
	v.text(path+".short_name", p.ShortName)
	if len(p.Domains) == 0 {
		v.errorf(path+".domains", "at least one domain is required")
	}
	for i, d := range p.Domains {
		dp := fmt.Sprintf("%s.domains[%d]", path, i)
		wild := strings.HasPrefix(d, "*.")
		norm, err := address.ParseDomain(strings.TrimPrefix(d, "*."))
		if err != nil {
			v.errorf(dp, "%q is not a domain name", d)
			continue
		}
		if len(norm) > MaxServedDomain {
			v.errorf(dp, "%s is longer than %d characters: its service names (_autodiscover._tcp.%s) would exceed DNS's 253", norm, MaxServedDomain, norm)
			continue
		}
		if wild {
			norm = "*." + norm
		}
		p.Domains[i] = norm
	}
	v.aliases(path, p)
	if p.Documentation != "" {
		if u, err := url.Parse(p.Documentation); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.errorf(path+".documentation_url", "%q is not an absolute http or https URL", p.Documentation)
		}
	}
	if p.LogoURL != "" {
		if u, err := url.Parse(p.LogoURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.errorf(path+".logo_url", "%q is not an absolute http or https URL", p.LogoURL)
		}
	}
	if p.ActiveSyncURL != "" {
		if u, err := url.Parse(p.ActiveSyncURL); err != nil || u.Scheme != "https" || u.Host == "" {
			v.errorf(path+".activesync_url", "%q is not an absolute https URL", p.ActiveSyncURL)
		}
	}
	if p.Username == "" {
		p.Username = DefaultUsername
	}
	v.username(path+".username", p.Username)
	if len(p.Authentication) == 0 {
		p.Authentication = StringList{AuthCleartext}
	}
	v.auth(path+".authentication", p.Authentication, "")
	if p.OAuth2 != nil {
		o := p.OAuth2
		for _, f := range []struct{ name, val string }{{"issuer", o.Issuer}, {"scope", o.Scope}, {"auth_url", o.AuthURL}, {"token_url", o.TokenURL}} {
			if f.val == "" {
				v.errorf(path+".oauth2."+f.name, "required")
			}
		}
		for _, f := range []struct{ name, val string }{{"auth_url", o.AuthURL}, {"token_url", o.TokenURL}} {
			if u, err := url.Parse(f.val); f.val != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
				v.errorf(path+".oauth2."+f.name, "%q is not an absolute https URL", f.val)
			}
		}
	}
	if len(p.Servers) == 0 {
		v.errorf(path+".servers", "at least one server is required")
		return
	}
	var in, out, inPublished, outPublished int
	for i := range p.Servers {
		s := &p.Servers[i]
		sp := fmt.Sprintf("%s.servers[%d]", path, i)
		v.server(sp, p, s)
		published := s.Security != SecurityPlain || p.PublishPlain
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
}

func (v *validator) server(path string, p *Provider, s *Server) {
	s.Type = strings.ToLower(s.Type)
	switch s.Type {
	case TypeIMAP, TypePOP3, TypeSMTP:
	case "":
		v.errorf(path+".type", "required (imap, pop3 or smtp)")
	default:
		v.errorf(path+".type", "%q is not imap, pop3 or smtp", s.Type)
	}
	s.Host = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.Host), "."))
	switch {
	case s.Host == "":
		v.errorf(path+".host", "required")
	case net.ParseIP(s.Host) == nil && !address.IsHostname(s.Host):
		v.errorf(path+".host", "%q is not a host name or IP address", s.Host)
	}
	s.Security = strings.ToLower(s.Security)
	if s.Security == "" {
		// A port given without security: the implicit-TLS ports say TLS,
		// anything else is taken for STARTTLS, never for plain.
		s.Security = SecurityTLS
		if s.Port != 0 && s.Port != 993 && s.Port != 995 && s.Port != 465 {
			s.Security = SecurityStartTLS
		}
	}
	switch s.Security {
	case SecurityTLS, SecurityStartTLS, SecurityPlain:
	case "ssl":
		s.Security = SecurityTLS
	default:
		v.errorf(path+".security", "%q is not tls, starttls or plain", s.Security)
	}
	if s.Port == 0 {
		s.Port = DefaultPort(s.Type, s.Security)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.errorf(path+".port", "%d is not a port", s.Port)
	}
	if s.Username == "" {
		s.Username = p.Username
	} else {
		v.username(path+".username", s.Username)
	}
	if len(s.Authentication) == 0 {
		s.Authentication = append(StringList(nil), p.Authentication...)
	} else {
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

func (v *validator) auth(path string, list StringList, typ string) {
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
	v.text(path, t)
	rest := t
	for _, p := range placeholders {
		rest = strings.ReplaceAll(rest, p, "")
	}
	if strings.Contains(rest, "%") {
		v.errorf(path, "%q has an unknown placeholder; use %s", t, strings.Join(placeholders, ", "))
	}
}

// text rejects control and private-use characters, which no client shows
// sensibly and which the renderers reserve for their own markers.
func (v *validator) text(path, s string) {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0xe000 && r <= 0xf8ff) || r == 0xfffd {
			v.errorf(path, "contains a control or private-use character")
			return
		}
	}
}
