package mobileconfig

import (
	"fmt"
	"strings"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

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

// pick returns the server of type typ a device should use: the most
// preferred published one (settings.Provider.Preferred: implicit TLS before
// STARTTLS, plain only with publish_plain and nothing better, the
// configured order among equals).
func pick(p *settings.Provider, typ string) (settings.Server, bool) {
	if list := p.Preferred(typ); len(list) > 0 {
		return list[0], true
	}
	return settings.Server{}, false
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
	return DocumentDAV(p, protocol, withName, false)
}

// DocumentDAV is Document with, when dav is set, the provider's calendar
// and contacts payloads after the mail payload (see dav.go); a provider
// without CalDAV and CardDAV gets the mail profile either way.
func DocumentDAV(p *settings.Provider, protocol string, withName, dav bool) (*Profile, error) {
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
		IncomingMailServerUseSSL:               in.Encrypted(),
		IncomingMailServerUsername:             tmpl.Login(in.Username, slotCanonAddress, slotCanonLocal, slotCanonDomain),
		OutgoingMailServerAuthentication:       authentication(out.Authentication, true),
		OutgoingMailServerHostName:             out.Host,
		OutgoingMailServerPortNumber:           out.Port,
		OutgoingMailServerUseSSL:               out.Encrypted(),
		OutgoingMailServerUsername:             tmpl.Login(out.Username, slotCanonAddress, slotCanonLocal, slotCanonDomain),
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
	prof := &Profile{
		PayloadContent:      []any{mail},
		PayloadDescription:  "Sets up the mailbox " + addr + " in Mail. You will be asked for its password.",
		PayloadDisplayName:  p.DisplayName + " (" + addr + ")",
		PayloadIdentifier:   ident,
		PayloadOrganization: p.DisplayName,
		PayloadType:         "Configuration",
		PayloadUUID:         tmpl.Marker(slotProfileUUID),
		PayloadVersion:      1,
	}
	if dav && hasDAV(p) {
		addDAV(prof, p, ident, addr)
	}
	return prof, nil
}
