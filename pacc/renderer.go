package pacc

import (
	"errors"
	"fmt"

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
		doc, err := Render(FromSettings(p))
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
// JMAP, CalDAV and CardDAV services, as the catalog holds them.
func FromSettings(p *settings.Provider) *Provider {
	in := &Provider{
		Name:          p.DisplayName,
		ShortName:     p.ShortName,
		Documentation: p.Documentation,
		LogoURL:       p.LogoURL,
	}
	for _, s := range p.Servers {
		in.Servers = append(in.Servers, Server{Type: s.Type, Host: s.Host, Port: s.Port, Security: s.Security, Authentication: s.Authentication})
	}
	// The provider's oauth2 section, also when only a DAV or JMAP service
	// offers OAuth2.
	if p.OAuth2 != nil {
		in.OAuthIssuer = p.OAuth2.Issuer
	}
	service := func(s *settings.Service) *Service {
		if s == nil {
			return nil
		}
		return &Service{URL: s.URL, Authentication: s.Authentication}
	}
	in.CalDAV, in.CardDAV, in.JMAP = service(p.CalDAV), service(p.CardDAV), service(p.JMAP)
	return in
}
