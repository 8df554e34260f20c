package dnsserver

import (
	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// newZones builds the zones of a catalog as the server does: with the PACC
// documents rendered for the same catalog.
func newZones(cat *settings.Catalog) (*Zones, error) {
	pc, err := pacc.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	return New(cat, pc)
}
