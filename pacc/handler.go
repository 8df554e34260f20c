package pacc

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
)

// CacheControl lets caches keep the document but makes them ask again
// before each use (RFC 9111 section 5.2.2.4): a client checks the body
// against the TXT record, and a cached body older than a changed record
// would fail that check. Revalidating costs a 304 (ETag is the digest).
const CacheControl = "no-cache"

// Handler serves GET and HEAD /.well-known/user-agent-configuration.json.
// The domain is taken from the Host header, which must be
// ua-auto-config.<served domain>: the document is the provider's and holds
// no address, so there is nothing to read from the query. Any other host,
// and a served domain whose provider publishes no document, get the
// not-found answer of every endpoint for an unknown domain. current returns
// the catalog and renderer of the configuration in force.
func Handler(current func() (*settings.Catalog, *Renderer)) echo.HandlerFunc {
	return func(c echo.Context) error {
		cat, r := current()
		s, err := resolve(cat, c.Request().Host)
		if err != nil {
			return web.Error(c, err)
		}
		web.Note(c, s)
		doc := r.For(s.Provider)
		if doc == nil {
			return web.Error(c, settings.ErrUnknownDomain)
		}
		h := c.Response().Header()
		h.Set("ETag", doc.ETag())
		h.Set("Cache-Control", CacheControl)
		if notModified(c.Request().Header.Values("If-None-Match"), doc.ETag()) {
			return c.NoContent(http.StatusNotModified)
		}
		return web.Blob(c, http.StatusOK, ContentType, doc.Body)
	}
}

// resolve finds the served domain of a ua-auto-config.<domain> host.
func resolve(cat *settings.Catalog, host string) (settings.Settings, error) {
	d, err := address.HostDomain(host)
	if err != nil {
		return settings.Settings{}, settings.ErrUnknownDomain
	}
	rest, ok := strings.CutPrefix(d, HostPrefix)
	if !ok || rest == "" {
		return settings.Settings{}, settings.ErrUnknownDomain
	}
	p, ok := cat.Lookup(rest)
	if !ok {
		return settings.Settings{}, settings.ErrUnknownDomain
	}
	canon, _ := cat.Canonical(rest)
	return settings.Settings{Provider: p, Domain: rest, CanonicalDomain: canon}, nil
}

// ETag is the strong entity tag of the document: its digest, which changes
// with every byte.
func (d *Document) ETag() string { return `"` + d.Digest + `"` }

// notModified applies If-None-Match (RFC 9110 section 13.1.2, weak
// comparison): "*" or any listed tag equal to etag.
func notModified(values []string, etag string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
