package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/page"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/mobileconfig"
	"mailautoconf/pacc"
)

// routes registers the route table (internal/route) with a handler bound to
// each of its handler names.
func (s *Server) routes() (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = func(r *http.Request) string { return s.State().proxies.clientIP(r).String() }
	e.Use(s.front())

	ad := func() (*settings.Catalog, *autodiscover.Renderer) {
		st := s.State()
		return st.Catalog, st.Autodiscover
	}
	pg := func() (*settings.Catalog, *page.Renderer) {
		st := s.State()
		return st.Catalog, st.Page
	}
	handlers := map[string]echo.HandlerFunc{
		route.HandleAutoconfig: autoconfig.Handler(func() (*settings.Catalog, *autoconfig.Renderer) {
			st := s.State()
			return st.Catalog, st.Autoconfig
		}),
		route.HandleMobileconfig: mobileconfig.Handler(func() (*settings.Catalog, *mobileconfig.Renderer) {
			st := s.State()
			return st.Catalog, st.Mobileconfig
		}),
		route.HandleAutodiscoverPOX:  autodiscover.Handler(ad),
		route.HandleAutodiscoverJSON: autodiscover.JSONHandler(ad),
		route.HandlePACC: pacc.Handler(func() (*settings.Catalog, *pacc.Renderer) {
			st := s.State()
			return st.Catalog, st.PACC
		}),
		route.HandlePage:    page.Handler(pg),
		route.HandleQR:      page.QRHandler(pg),
		route.HandleStyle:   page.StyleHandler,
		route.HandleHealthz: s.healthz,
		route.HandleReadyz:  s.readyz,
		route.HandleMetrics: s.metricsRoute,
	}
	for _, rt := range route.Table() {
		h, ok := handlers[rt.Handler]
		if !ok {
			return nil, fmt.Errorf("route %s: no handler %q", rt.Path, rt.Handler)
		}
		for _, m := range rt.Methods {
			e.Add(m, rt.Path, h)
		}
	}
	return e, nil
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
		s.log.Error("request failed", "method", c.Request().Method, "path", s.logged(c.Request().URL.Path), "err", s.logged(err.Error()))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.String(code, msg+"\n")
}
