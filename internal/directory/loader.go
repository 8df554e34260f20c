package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Loader timing defaults.
const (
	// DefaultStartTimeout bounds the first read at start: a database that
	// does not answer by then is treated as down and the stored snapshot
	// is served instead.
	DefaultStartTimeout = 10 * time.Second
	// DefaultMinRetry is the first retry delay after a failed read; it
	// doubles up to the refresh interval.
	DefaultMinRetry = time.Second
	// LoadTimeout bounds one read of the domains.
	LoadTimeout = time.Minute
	// MinGap is the least time between two reads, however many NOTIFYs
	// arrive: a control panel importing a thousand domains one by one
	// causes a few reads, not a thousand.
	MinGap = 250 * time.Millisecond
	// StaleFactor: after this many refresh intervals without a successful
	// read, a warning is logged (and repeated as often).
	StaleFactor = 10
	// maxLoggedProblems is how many bad rows are named in the log.
	maxLoggedProblems = 5
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	Settings Settings
	Logger   *slog.Logger
	Metrics  *Metrics
	// Check, when set, is applied to every row after the built-in checks,
	// e.g. "the provider exists"; a row it rejects is skipped and logged.
	Check func(Row) error
	// OnChange is called, from the loader's goroutine, with every new
	// snapshot Run puts in force (not with the one Start returns).
	OnChange func(*Snapshot)
	// StartTimeout and MinRetry default to DefaultStartTimeout and
	// DefaultMinRetry.
	StartTimeout time.Duration
	MinRetry     time.Duration
}

// Loader keeps the directory's domains current: it reads them at start,
// then every refresh interval and on notifications, and holds the last good
// snapshot.
type Loader struct {
	src Source
	o   LoaderOptions
	log *slog.Logger
	m   *Metrics

	cur  atomic.Pointer[Snapshot]
	err  atomic.Pointer[error] // last read's error; nil when it succeeded
	wake chan struct{}

	// Touched by Start and then only by Run's goroutine.
	mu           sync.Mutex
	lastSuccess  time.Time
	failingSince time.Time
	warned       time.Time
	lastProblems []string
	lastRefused  string // the lost domains of the last refused read, logged once
	stored       bool   // the snapshot in force was written to storage
}

// NewLoader creates a loader for src; Start and Run make it work.
func NewLoader(src Source, o LoaderOptions) *Loader {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.MinRetry <= 0 {
		o.MinRetry = DefaultMinRetry
	}
	if o.Settings.Refresh <= 0 {
		o.Settings.Refresh = 30 * time.Second
	}
	return &Loader{src: src, o: o, log: o.Logger, m: o.Metrics, wake: make(chan struct{}, 1)}
}

// Snapshot returns the snapshot in force, nil when there is none.
func (l *Loader) Snapshot() *Snapshot { return l.cur.Load() }

// Err returns the error of the last read, nil when it succeeded.
func (l *Loader) Err() error {
	if e := l.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Refresh asks Run for a read now. Requests made while one is pending
// count once.
func (l *Loader) Refresh() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Start makes the first snapshot: read from the source if it answers within
// the start timeout, otherwise the one kept in storage. It returns the
// snapshot in force, or nil when there is neither (the configuration
// file's domains are then served alone until the source answers).
func (l *Loader) Start(ctx context.Context) *Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastSuccess = time.Now() // staleness counts from the start
	var stored *Snapshot
	if f := l.o.Settings.Storage; f != "" {
		s, err := readSnapshot(f)
		if err != nil {
			l.log.Warn("directory: ignoring the stored snapshot", "err", err)
		}
		stored = s
	}
	sctx, cancel := context.WithTimeout(ctx, l.o.StartTimeout)
	defer cancel()
	snap, err := l.read(sctx, stored)
	switch {
	case err == nil:
		l.put(snap, stored)
		l.log.Info("directory: domains loaded", "source", l.src.Kind(), "domains", len(snap.Rows))
		return snap
	case stored != nil:
		l.cur.Store(stored)
		l.stored = true
		l.gauges(stored)
		l.log.Warn("directory: not read at start; serving the domains kept in storage",
			"source", l.src.Kind(), "err", err, "domains", len(stored.Rows),
			"read_at", stored.Loaded.Format(time.RFC3339), "storage", l.o.Settings.Storage)
		return stored
	default:
		l.log.Warn("directory: not read at start and no snapshot stored; serving the configuration file's domains only until it answers",
			"source", l.src.Kind(), "err", err)
		return nil
	}
}

// Run reads the domains every refresh interval (at once on Refresh or a
// notification), retrying failed reads with back-off, until ctx ends.
func (l *Loader) Run(ctx context.Context) {
	if n, ok := l.src.(Notifier); ok {
		go func() {
			if err := n.Listen(ctx, l.Refresh, l.log); err != nil {
				l.log.Error("directory: notifications off", "err", err)
			}
		}()
	}
	refresh := l.o.Settings.Refresh
	delay := refresh
	if l.Err() != nil {
		delay = l.o.MinRetry
	}
	retry := l.o.MinRetry
	timer := time.NewTimer(delay)
	defer timer.Stop()
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.wake:
			if wait := MinGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			timer.Stop()
		}
		last = time.Now()
		if err := l.refresh(ctx); err != nil && ctx.Err() == nil {
			delay, retry = retry, min(retry*2, refresh)
		} else {
			delay, retry = refresh, l.o.MinRetry
		}
		timer.Reset(delay)
	}
}

// refresh reads once and puts the result in force when it passes the
// checks; the error is nil when the source answered (even if the result was
// refused).
func (l *Loader) refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.cur.Load()
	snap, err := l.read(ctx, prev)
	if err != nil {
		if errors.Is(err, errRefused) {
			return nil
		}
		return err
	}
	if prev != nil && slices.Equal(prev.Rows, snap.Rows) {
		// Nothing changed: no new catalog; the data is current as of now.
		l.m.Loaded.Set(float64(snap.Loaded.Unix()))
		if prev.Stored || !l.stored {
			l.put(snap, prev)
		}
		return nil
	}
	added, removed := diff(prev, snap)
	l.put(snap, prev)
	prev = nil // collectable while OnChange builds on the new snapshot
	l.log.Info("directory: domains updated", "source", l.src.Kind(), "domains", len(snap.Rows), "added", added, "removed", removed)
	if l.o.OnChange != nil {
		l.o.OnChange(snap)
	}
	return nil
}

// errRefused marks a read that lost too many domains.
var errRefused = errors.New("refused")

// read reads and checks the domains and applies the loss guard against
// base (the snapshot in force, or the stored one at start). It records the
// outcome in the metrics and the log.
func (l *Loader) read(ctx context.Context, base *Snapshot) (*Snapshot, error) {
	lctx, cancel := context.WithTimeout(ctx, LoadTimeout)
	defer cancel()
	t0 := time.Now()
	raw, err := l.src.Domains(lctx)
	l.m.LoadSeconds.Set(time.Since(t0).Seconds())
	if err != nil {
		l.failed(err)
		return nil, err
	}
	rows, problems := checkRows(raw, l.o.Check)
	l.m.Skipped.Set(float64(len(problems)))
	if len(problems) > 0 && !slices.Equal(problems, l.lastProblems) {
		l.log.Warn("directory: rows skipped", "skipped", len(problems), "first", strings.Join(problems[:min(len(problems), maxLoggedProblems)], "; "))
	}
	l.lastProblems = problems
	snap := &Snapshot{Rows: rows, Loaded: time.Now(), Source: l.src.Kind()}
	l.succeeded()
	if lost, names := lostDomains(base, snap); base != nil && len(base.Rows) > 0 && float64(lost)/float64(len(base.Rows)) > l.o.Settings.MaxDrop {
		l.m.Loads.WithLabelValues(LoadRefused).Inc()
		level, key := slog.LevelError, fmt.Sprint(lost, names)
		if key == l.lastRefused {
			level = slog.LevelDebug // the same loss again: said already
		}
		l.lastRefused = key
		l.log.Log(ctx, level, "directory: refusing a read that loses too many domains at once; the domains in force stay",
			"lost", lost, "of", len(base.Rows), "max_drop_percent", l.o.Settings.MaxDrop*100,
			"first_lost", strings.Join(names, ", "), "in_force_since", base.Loaded.Format(time.RFC3339),
			"hint", "if the deletion is meant, raise directory.max_drop and restart")
		return nil, fmt.Errorf("%w: %d of %d domains lost", errRefused, lost, len(base.Rows))
	}
	l.lastRefused = ""
	l.m.Loads.WithLabelValues(LoadOK).Inc()
	l.m.LastSuccess.Set(float64(snap.Loaded.Unix()))
	l.lastSuccess = snap.Loaded
	return snap, nil
}

// put puts snap in force and keeps it in storage.
func (l *Loader) put(snap, prev *Snapshot) {
	l.cur.Store(snap)
	l.gauges(snap)
	l.stored = false
	if f := l.o.Settings.Storage; f != "" {
		if err := writeSnapshot(f, snap); err != nil {
			l.log.Error("directory: cannot keep the snapshot", "err", err)
			return
		}
		l.stored = true
	}
}

func (l *Loader) gauges(s *Snapshot) {
	l.m.Domains.Set(float64(len(s.Rows)))
	l.m.Loaded.Set(float64(s.Loaded.Unix()))
}

// failed records a failed read: the first failure of a series is an
// error in the log, the later ones detail, and after StaleFactor refresh
// intervals without success a warning (repeated as often).
func (l *Loader) failed(err error) {
	now := time.Now()
	l.err.Store(&err)
	l.m.Up.Set(0)
	l.m.Loads.WithLabelValues(LoadError).Inc()
	in := "none"
	if s := l.cur.Load(); s != nil {
		in = fmt.Sprintf("%d domains read at %s", len(s.Rows), s.Loaded.Format(time.RFC3339))
	}
	if l.failingSince.IsZero() {
		l.failingSince = now
		l.log.Error("directory: cannot read the domains; serving the last good data", "source", l.src.Kind(), "err", err, "in_force", in)
	} else {
		l.log.Debug("directory: still cannot read the domains", "source", l.src.Kind(), "err", err)
	}
	stale := time.Duration(StaleFactor) * l.o.Settings.Refresh
	if now.Sub(l.lastSuccess) >= stale && now.Sub(l.warned) >= stale {
		l.warned = now
		l.log.Warn("directory: no successful read for a long time", "source", l.src.Kind(),
			"since", l.lastSuccess.Format(time.RFC3339), "for", now.Sub(l.lastSuccess).Round(time.Second).String(),
			"err", err, "in_force", in)
	}
}

func (l *Loader) succeeded() {
	l.err.Store(nil)
	l.m.Up.Set(1)
	if !l.failingSince.IsZero() {
		l.log.Info("directory: reachable again", "source", l.src.Kind(), "down_for", time.Since(l.failingSince).Round(time.Second).String())
		l.failingSince = time.Time{}
		l.warned = time.Time{}
	}
}

// lostDomains counts the domains of base that next no longer has, and
// names a few of them for the log.
func lostDomains(base, next *Snapshot) (int, []string) {
	if base == nil {
		return 0, nil
	}
	have := make(map[string]struct{}, len(next.Rows))
	for _, r := range next.Rows {
		have[r.Domain] = struct{}{}
	}
	n := 0
	var names []string
	for _, r := range base.Rows {
		if _, ok := have[r.Domain]; !ok {
			n++
			if len(names) < maxLoggedProblems {
				names = append(names, r.Domain)
			}
		}
	}
	return n, names
}

// diff counts domains added and removed between two snapshots.
func diff(prev, next *Snapshot) (added, removed int) {
	if prev == nil {
		return len(next.Rows), 0
	}
	removed, _ = lostDomains(prev, next)
	added, _ = lostDomains(next, prev)
	return added, removed
}

// Read reads and checks the domains once, for `mailautoconf check`: the
// rows that would be served and the problems with the others.
func Read(ctx context.Context, src Source, check func(Row) error) ([]Row, []string, error) {
	raw, err := src.Domains(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows, problems := checkRows(raw, check)
	return rows, problems, nil
}
