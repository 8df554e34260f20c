// Package batch hands items collected by many goroutines to one function,
// a batch at a time.
//
// The access log and the request metrics were the largest part of what the
// service adds to a request under load (bench/README.md): formatting one
// line and updating a few counters costs well under a microsecond in a
// tight loop, but several microseconds when done once per request between
// the kernel's network work and the other connections' goroutines, which
// evict that code and its data from the CPU caches each time, and the
// counters' cache lines move between the CPUs at every request. Collected
// into batches, the same work runs in a loop on one CPU.
package batch

import (
	"sync"
	"time"
)

// Queue collects items and passes them, in the order they were added, to a
// function that is never called by two goroutines at once. A batch is
// handed over when it reaches its size (by the goroutine whose item filled
// it: a producer faster than the function waits for it, so memory stays
// bounded), after a delay from its first item, and on Flush.
type Queue[T any] struct {
	fn    func([]T)
	size  int
	delay time.Duration

	mu     sync.Mutex // guards items, armed, closed
	items  []T
	armed  bool
	closed bool
	timer  *time.Timer

	// run is held while fn runs, so that batches are handed over one
	// at a time and in order; spare is the slice of the last batch,
	// reused for the next one.
	run   sync.Mutex
	spare []T
}

// New returns a queue handing batches of up to size items to fn, at most
// delay after the first item of a batch was added. size < 1 means 1:
// every item is handed over at once, by the goroutine that added it.
func New[T any](size int, delay time.Duration, fn func([]T)) *Queue[T] {
	size = max(size, 1)
	q := &Queue[T]{fn: fn, size: size, delay: delay,
		items: make([]T, 0, size), spare: make([]T, 0, size)}
	q.timer = time.AfterFunc(time.Hour, q.Flush)
	q.timer.Stop()
	return q
}

// Add adds v to the current batch. After Close, v is handed over at once.
func (q *Queue[T]) Add(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	full := len(q.items) >= q.size || q.closed
	if !full && !q.armed {
		q.armed = true
		q.timer.Reset(q.delay)
	}
	q.mu.Unlock()
	if full {
		q.Flush()
	}
}

// Flush hands the items added so far to the function and returns when it
// has seen them (when another goroutine is handing a batch over, after
// that one).
func (q *Queue[T]) Flush() {
	q.run.Lock()
	defer q.run.Unlock()
	q.mu.Lock()
	items := q.items
	q.items = q.spare[:0]
	if q.armed {
		q.armed = false
		q.timer.Stop()
	}
	q.mu.Unlock()
	if len(items) > 0 {
		q.fn(items)
	}
	// Cleared so that the batch does not keep what its items point to
	// alive until the slice is filled again.
	clear(items)
	q.spare = items[:0]
}

// Close flushes the queue; items added afterwards are handed over one by
// one as they come, so that nothing added while the process ends is lost.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.Flush()
}
