package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"mailautoconf/internal/config"
	"mailautoconf/internal/filewatch"
)

// watch reloads the configuration on SIGHUP and when its file changes, and
// the TLS certificates when theirs change, until ctx ends.
//
// A reload waits until the file is complete (see filewatch): while it is
// being written, or still changing, the reload is postponed and retried
// at every check, a SIGHUP included, so that the beginning of a file
// written in place is never put in force.
func (s *Server) watch(ctx context.Context) {
	hup := s.hup
	defer signal.Stop(hup)
	if s.file != nil {
		defer s.file.Close()
	}
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	var wake <-chan struct{}
	if s.file != nil && !s.opts.SignalOnly {
		wake = s.file.Wake()
	}
	pending, told := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading configuration")
			pending = true
		case <-t.C:
			if !pending && s.file != nil && !s.opts.SignalOnly && s.file.Changed() {
				s.log.Info("configuration file changed: reloading", "file", s.opts.ConfigPath)
				pending = true
			}
		case <-wake:
			if !pending && s.file.Changed() {
				s.log.Info("configuration file changed: reloading", "file", s.opts.ConfigPath)
				pending = true
			}
		}
		if pending {
			switch err := s.reloadFile(ctx); {
			case errors.Is(err, filewatch.ErrUnfinished):
				if !told {
					s.log.Info("the configuration file is being written; the reload waits until it is complete "+
						"(write the new file under another name and rename it into place)", "file", s.opts.ConfigPath)
					told = true
				}
			case errors.Is(err, context.Canceled):
				return
			default:
				pending, told = false, false
			}
		}
		if changed, err := s.certs.refresh(s.metrics); err != nil {
			s.log.Error("reloading TLS certificates; keeping the old ones", "err", err)
		} else if changed {
			s.log.Info("TLS certificates reloaded")
		}
	}
}

// startWatching registers for SIGHUP and notes the configuration file's
// version. It runs in Listen, before Serve returns control to anyone: a
// SIGHUP that arrives before the handler is registered would end the
// process, and a file change before the first look would go unnoticed.
func (s *Server) startWatching() {
	s.hup = make(chan os.Signal, 1)
	signal.Notify(s.hup, syscall.SIGHUP)
	if s.opts.ConfigPath != "" {
		s.file = filewatch.New(s.opts.ConfigPath, s.opts.Settle)
	}
}

// reloadFile reloads the configuration file once it is complete. It
// returns filewatch.ErrUnfinished while the file is being written (nothing
// is loaded, nothing counted: the caller tries again), the context's error
// when the server stops, and otherwise nil: a broken file is logged and
// counted, and the configuration in force keeps serving.
func (s *Server) reloadFile(ctx context.Context) error {
	if s.file == nil {
		s.log.Info("no configuration file to reload (built-in demo)")
		return nil
	}
	data, version, err := s.file.Stable(ctx)
	if errors.Is(err, filewatch.ErrUnfinished) || errors.Is(err, context.Canceled) {
		return err
	}
	// This version is done with, whatever the verdict: a broken file is
	// not read again until it changes.
	s.file.Take(version)
	old := s.State()
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Parse(s.opts.ConfigPath, data)
	}
	if err == nil {
		err = s.Reload(cfg)
	} else {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadOK.Set(0)
	}
	if err != nil {
		s.log.Error("configuration rejected; the previous one stays in force", "err", err)
		return nil
	}
	s.logChanges(old, cfg)
	return nil
}

// logChanges logs a reload with what it removed and added: a warning when
// domains or servers were removed, so that an operator sees a vanished
// domain whether it was meant or not.
func (s *Server) logChanges(old *State, cfg *config.Config) {
	var prev *config.Config
	if old != nil && old.Catalog != nil {
		prev = old.Catalog.Config
	}
	ch := config.Diff(prev, cfg)
	attrs := []any{"file", s.opts.ConfigPath}
	for _, l := range []struct {
		key  string
		list []string
	}{
		{"domains_removed", ch.DomainsRemoved}, {"servers_removed", ch.ServersRemoved},
		{"domains_added", ch.DomainsAdded}, {"servers_added", ch.ServersAdded},
	} {
		if len(l.list) > 0 {
			attrs = append(attrs, l.key, l.list)
		}
	}
	level := slog.LevelInfo
	if ch.Removed() {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "configuration reloaded", attrs...)
}
