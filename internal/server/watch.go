package server

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"mailautoconf/internal/config"
)

// watch reloads the configuration on SIGHUP and when its file changes, and
// the TLS certificates when theirs change, until ctx ends.
func (s *Server) watch(ctx context.Context) {
	hup, stamp := s.hup, s.stamp
	defer signal.Stop(hup)
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading configuration")
			s.reloadFile()
			stamp = fileStamp(s.opts.ConfigPath)
		case <-t.C:
			if st := fileStamp(s.opts.ConfigPath); st != stamp {
				stamp = st
				s.log.Info("configuration file changed: reloading", "file", s.opts.ConfigPath)
				s.reloadFile()
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
	s.stamp = fileStamp(s.opts.ConfigPath)
}

// reloadFile reloads the configuration file. A broken file is logged and
// counted, and the configuration in force keeps serving.
func (s *Server) reloadFile() {
	if s.opts.ConfigPath == "" {
		s.log.Info("no configuration file to reload (built-in demo)")
		return
	}
	cfg, err := config.Load(s.opts.ConfigPath)
	if err == nil {
		err = s.Reload(cfg)
	} else {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadOK.Set(0)
	}
	if err != nil {
		s.log.Error("configuration rejected; the previous one stays in force", "err", err)
		return
	}
	s.log.Info("configuration reloaded", "file", s.opts.ConfigPath)
}

// fileStamp identifies a version of a file by modification time and size.
func fileStamp(path string) string {
	if path == "" {
		return ""
	}
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
}
