package mobileconfig

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/bufpool"
	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
)

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

// parseDAV reads the dav parameter: whether the profile is to carry the
// provider's calendars and contacts. Off unless asked for, so that every
// link published before calendars existed keeps its profile.
func parseDAV(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "off":
		return false, nil
	case "1", "yes", "true", "on":
		return true, nil
	}
	return false, errBadRequest{"dav must be 1 (mail, calendars and contacts) or 0 (mail only)"}
}

// Handler serves GET /mobileconfig?emailaddress=…[&name=…][&protocol=imap|pop3][&dav=1].
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
		// The mailbox's own login name and servers, when the hoster's
		// directory has them (bounded wait; unknown: the domain's).
		s = cat.WithMailbox(req.Context(), s)
		proto, _ := web.Query(req, "protocol")
		proto = strings.ToLower(strings.TrimSpace(proto))
		if proto == "pop" {
			proto = config.TypePOP3
		}
		name, _ := web.Query(req, "name")
		if name, err = checkName(name); err != nil {
			return c.String(http.StatusBadRequest, err.Error()+"\n")
		}
		davParam, _ := web.Query(req, "dav")
		dav, err := parseDAV(davParam)
		if err != nil {
			return c.String(http.StatusBadRequest, err.Error()+"\n")
		}
		// The property list goes into a pooled buffer; the response
		// writer has copied it when Blob returns. A signed profile is
		// a new slice (or the cache's), never the buffer.
		buf := bufs.Get()
		defer bufs.Put(buf)
		body, err := r.Unsigned((*buf)[:0], Request{Settings: s, Protocol: proto, Name: name, DAV: dav})
		if err == nil {
			*buf = body[:0]
			if sg := r.currentSigner(); sg != nil {
				// A profile signed before comes from the cache;
				// a new signature is paid from the client's
				// budget for expensive answers.
				signed, cached := r.cachedSignature(sg, body)
				if !cached {
					if ok, err := web.Spend(c); !ok {
						return err
					}
					signed, err = r.sign(sg, body)
				}
				body = signed
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
