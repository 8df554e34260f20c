package directory

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// Target is what a running directory feeds: the server, which rebuilds its
// catalog (every protocol's renderers and the DNS zones) from the
// configuration and the given domains and swaps it in as one value
// (server.Server.SetExtraDomains).
type Target interface {
	SetExtraDomains([]settings.Domain) error
}

// Domains returns the snapshot's rows as the catalog's extra domains. A row
// without a provider is served by the configuration's first provider
// (settings.New resolves the empty id).
func (s *Snapshot) Domains() []settings.Domain {
	if s == nil {
		return nil
	}
	out := make([]settings.Domain, len(s.Rows))
	for i, r := range s.Rows {
		out[i] = settings.Domain{Name: r.Domain, Provider: r.Provider, AliasOf: r.AliasOf}
	}
	return out
}

// Service is a directory attached to a server: the loader that keeps the
// server's directory domains current and, with a mailbox query, the
// resolver of per-mailbox answers.
type Service struct {
	src    Source
	loader *Loader
	// Resolver is nil when the source has no mailbox lookup.
	Resolver *Resolver
	target   Target
	log      *slog.Logger
}

// Start opens the directory block's source, makes the first snapshot (read
// from the source within DefaultStartTimeout, or else the one kept in
// storage, and says which in the log) and puts its domains into t before
// the server listens. The source being down is not an error: the server
// then starts with the stored domains or the file's alone, and Run keeps
// trying. The metrics are registered with reg.
func Start(ctx context.Context, d *config.Directory, t Target, reg prometheus.Registerer, log *slog.Logger, o LoaderOptions) (*Service, error) {
	s := SettingsFrom(d)
	src, err := Open(d, s)
	if err != nil {
		return nil, err
	}
	m := NewMetrics()
	if reg != nil {
		if err := m.Register(reg); err != nil {
			src.Close()
			return nil, fmt.Errorf("directory metrics: %w", err)
		}
	}
	svc := &Service{src: src, target: t, log: log}
	o.Settings, o.Logger, o.Metrics = s, log, m
	o.OnChange = svc.apply
	svc.loader = NewLoader(src, o)
	if snap := svc.loader.Start(ctx); snap != nil {
		svc.apply(snap)
	}
	if src.HasMailbox() {
		svc.Resolver = NewResolver(src, s.Cache, m, log)
	}
	return svc, nil
}

// apply puts a snapshot's domains into the target. A failure leaves the
// domains in force (the state is built completely or not at all).
func (s *Service) apply(snap *Snapshot) {
	// What the read left behind (the driver's rows, the previous
	// snapshot's) is collected before the new state is built next to the
	// one in force, so that the build reuses that memory instead of
	// growing the heap: with 100,000 domains this keeps the peak resident
	// size of a refresh within the service's memory target.
	runtime.GC()
	if err := s.target.SetExtraDomains(snap.Domains()); err != nil {
		s.log.Error("directory: the new domains could not be put in force; the previous ones stay", "err", err)
	}
}

// Loader returns the service's loader, for its snapshot and last error.
func (s *Service) Loader() *Loader { return s.loader }

// Run keeps the domains current until ctx ends (see Loader.Run), then
// closes the source.
func (s *Service) Run(ctx context.Context) {
	defer s.src.Close()
	s.loader.Run(ctx)
}

// Once reads the directory block's domains one time, for the commands that
// print what the service would serve (records). When the source cannot be
// read it returns the snapshot kept in storage, if any, together with the
// read error, so that the caller can say which it got; with neither, the
// snapshot is nil.
func Once(ctx context.Context, d *config.Directory) (*Snapshot, error) {
	s := SettingsFrom(d)
	src, err := Open(d, s)
	if err == nil {
		defer src.Close()
		var rows []Row
		if rows, _, err = Read(ctx, src, nil); err == nil {
			return &Snapshot{Rows: rows, Loaded: time.Now(), Source: src.Kind()}, nil
		}
	}
	if s.Storage != "" {
		if snap, serr := readSnapshot(s.Storage); serr == nil && snap != nil {
			snap.Stored = true
			return snap, err
		}
	}
	return nil, err
}
