package testutil

import (
	"bytes"
	"log/slog"
	"sync"
)

// LogBuffer collects a server's log output; it is safe for the concurrent
// writes of request goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger writing into l.
func (l *LogBuffer) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// JSONLogger returns a JSON logger writing into l.
func (l *LogBuffer) JSONLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// Len is the number of bytes logged so far.
func (l *LogBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
