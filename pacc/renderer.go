package pacc

import (
	"errors"
	"fmt"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// Renderer holds the document of every provider of a catalog, rendered
// once per load. The HTTP handler sends Document.Body and the DNS zones
// publish Document.TXT: both read the same value, so the digest in DNS is
// always the digest of the bytes served.
type Renderer struct {
	docs []*Document // by settings.Provider.Index; nil: no document
}

// NewRenderer renders the document of every provider. A provider none of
// whose servers the format can describe (ErrNothing) gets none; any other
// failure is an error of the load.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	r := &Renderer{docs: make([]*Document, len(cat.Providers))}
	for i, p := range cat.Providers {
		in, err := FromSettings(cat, p)
		if err != nil {
			return nil, fmt.Errorf("PACC document of %s: %w", p.ID, err)
		}
		doc, err := Render(in)
		switch {
		case errors.Is(err, ErrNothing):
			continue
		case err != nil:
			return nil, fmt.Errorf("PACC document of %s: %w", p.ID, err)
		}
		r.docs[i] = doc
	}
	return r, nil
}

// For returns the document of a provider, nil when it publishes none. A nil
// Renderer has no documents.
func (r *Renderer) For(p *settings.Provider) *Document {
	if r == nil || p == nil || p.Index >= len(r.docs) {
		return nil
	}
	return r.docs[p.Index]
}

// FromSettings is the input of Render for a provider of the catalog: its
// published servers (publish_plain already applied by the catalog) and its
// configured JMAP, CalDAV and CardDAV services.
func FromSettings(cat *settings.Catalog, p *settings.Provider) (*Provider, error) {
	in := &Provider{
		Name:          p.DisplayName,
		ShortName:     p.ShortName,
		Documentation: p.Documentation,
		LogoURL:       p.LogoURL,
	}
	for _, s := range p.Servers {
		in.Servers = append(in.Servers, Server{Type: s.Type, Host: s.Host, Port: s.Port, Security: s.Security, Authentication: s.Authentication})
	}
	if p.Index >= len(cat.Config.Providers) {
		return nil, fmt.Errorf("provider %s is not in the configuration", p.ID)
	}
	cp := &cat.Config.Providers[p.Index]
	// The issuer comes from the configuration: the catalog keeps the
	// OAuth2 section only when a mail server offers OAuth2, and a DAV
	// or JMAP service may be the one that does.
	if cp.OAuth2 != nil {
		in.OAuthIssuer = cp.OAuth2.Issuer
	}
	for _, s := range cp.Services() {
		u, err := config.ParseServiceURL(s.URL)
		if err != nil {
			return nil, fmt.Errorf("%s url: %w", s.Kind, err)
		}
		sv := &Service{URL: u, Authentication: s.AuthMethods()}
		switch s.Kind {
		case config.ServiceCalDAV:
			in.CalDAV = sv
		case config.ServiceCardDAV:
			in.CardDAV = sv
		case config.ServiceJMAP:
			in.JMAP = sv
		}
	}
	return in, nil
}
