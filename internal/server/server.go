// Package server wires the protocol handlers into one HTTP service: routes,
// limits, timeouts, error pages and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/config"
	"mailautoconf/internal/page"
	"mailautoconf/internal/settings"
	"mailautoconf/mobileconfig"
)

// Limits that protect the service from slow or greedy clients. Every
// legitimate request is a few hundred bytes.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
	MaxBodyBytes      = 64 << 10
	DrainTimeout      = 10 * time.Second
)

// State is everything rendered from one configuration. It is replaced as a
// whole on reload, so a request sees either the old or the new configuration,
// never a mix.
type State struct {
	Catalog    *settings.Catalog
	Autoconfig *autoconfig.Renderer
	// Mobileconfig renders (and signs) Apple profiles; it holds the
	// signing certificate, so a reload re-reads renewed files.
	Mobileconfig *mobileconfig.Renderer
	// Autodiscover renders Microsoft Autodiscover (POX and v2 JSON).
	Autodiscover *autodiscover.Renderer
	// Page is the settings page for people.
	Page *page.Renderer
}

// NewState renders a validated configuration.
func NewState(cfg *config.Config) (*State, error) {
	cat := settings.New(cfg)
	ac, err := autoconfig.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	mc, err := mobileconfig.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	ad, err := autodiscover.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	pg, err := page.NewRenderer(cat)
	if err != nil {
		return nil, err
	}
	return &State{Catalog: cat, Autoconfig: ac, Mobileconfig: mc, Autodiscover: ad, Page: pg}, nil
}

// Options configure a Server.
type Options struct {
	HTTPAddr string // listen address for plain HTTP
	Version  string
	Logger   *slog.Logger
}

// Server is the running service.
type Server struct {
	opts  Options
	log   *slog.Logger
	state atomic.Pointer[State]
	echo  *echo.Echo
	http  *http.Server
	ln    net.Listener
}

// New creates a server for a configuration. It does not listen yet.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	st, err := NewState(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger}
	s.state.Store(st)
	s.echo = s.routes()
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// State returns the configuration in force.
func (s *Server) State() *State { return s.state.Load() }

// Reload replaces the configuration. On error the old one stays.
func (s *Server) Reload(cfg *config.Config) error {
	st, err := NewState(cfg)
	if err != nil {
		return fmt.Errorf("reloading configuration: %w", err)
	}
	s.state.Store(st)
	return nil
}

// Handler returns the HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Listen opens the listeners. Addr is valid afterwards.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening for HTTP on %s: %w", s.opts.HTTPAddr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the HTTP listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is cancelled, then stops accepting connections and
// lets in-flight requests finish within DrainTimeout.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	s.log.Info("listening", "http", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "drain_timeout", DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if err := s.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("draining HTTP connections: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}
