package fastlog

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Defaults of NewWriter.
const (
	DefaultSize  = 64 << 10
	DefaultDelay = 100 * time.Millisecond
)

// Writer is a buffered io.Writer that is safe for concurrent use and
// flushes itself at most delay after the first unflushed write.
//
// The access log writes one line per request; written straight to stderr
// that is one write system call per request, which under load costs about
// as much as answering the request (see bench/README.md). A Writer collects
// lines and writes them out when its buffer fills or after a short delay,
// whichever comes first, so a quiet server still shows each line within
// the delay.
type Writer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	delay  time.Duration
	timer  *time.Timer
	armed  bool
	closed bool
	err    error
}

// NewWriter returns a Writer writing to w. size and delay <= 0 take the defaults.
func NewWriter(w io.Writer, size int, delay time.Duration) *Writer {
	if size <= 0 {
		size = DefaultSize
	}
	if delay <= 0 {
		delay = DefaultDelay
	}
	b := &Writer{w: bufio.NewWriterSize(w, size), delay: delay}
	b.timer = time.AfterFunc(time.Hour, b.tick)
	b.timer.Stop()
	return b
}

// Write buffers p. Each call is kept whole: slog handlers write one record
// per call, so lines never interleave. After Close, p goes straight to the
// underlying writer.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		n, err := b.w.Write(p)
		if err == nil {
			err = b.w.Flush()
		}
		return n, err
	}
	if b.w.Available() < len(p) && b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			b.err = err
		}
	}
	n, err := b.w.Write(p)
	if !b.armed && b.w.Buffered() > 0 {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	return n, err
}

func (b *Writer) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	if err := b.w.Flush(); err != nil {
		b.err = err
	}
}

// Flush writes out what is buffered.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.w.Flush(); err != nil {
		return err
	}
	return b.err
}

// Close flushes and makes later writes unbuffered, so that lines logged
// while the process exits are not lost. It does not close the underlying
// writer.
func (b *Writer) Close() error {
	b.mu.Lock()
	b.closed = true
	b.timer.Stop()
	b.mu.Unlock()
	return b.Flush()
}
