package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/page"
	"mailautoconf/internal/settings"
	"mailautoconf/mobileconfig"
)

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = func(r *http.Request) string { return s.proxies.Load().clientIP(r).String() }
	e.Use(s.front())

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsRoute)

	ac := autoconfig.Handler(func() (*settings.Catalog, *autoconfig.Renderer) {
		st := s.State()
		return st.Catalog, st.Autoconfig
	})
	for _, p := range []string{"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
		e.GET(p, ac)
		e.HEAD(p, ac)
	}

	mc := mobileconfig.Handler(func() (*settings.Catalog, *mobileconfig.Renderer) {
		st := s.State()
		return st.Catalog, st.Mobileconfig
	})
	for _, p := range []string{"/mobileconfig", "/email.mobileconfig"} {
		e.GET(p, mc)
		e.HEAD(p, mc)
	}

	autodiscover.Routes(e, func() (*settings.Catalog, *autodiscover.Renderer) {
		st := s.State()
		return st.Catalog, st.Autodiscover
	})

	page.Register(e, func() (*settings.Catalog, *page.Renderer) {
		st := s.State()
		return st.Catalog, st.Page
	})
	return e
}

// errorHandler answers every error in plain text, without internals.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := http.StatusText(code)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok && code < 500 {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.String(code, msg+"\n")
}
