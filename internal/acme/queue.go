package acme

import (
	"context"
	"sync"
)

// queue is the background work list: names in first-come order, each at
// most once.
type queue struct {
	mu    sync.Mutex
	items []string
	in    map[string]bool
	wake  chan struct{}
}

func (q *queue) init() {
	q.in = map[string]bool{}
	q.wake = make(chan struct{}, 1)
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// replace makes names the whole queue (after a reload: names no longer
// served leave it, new ones join it).
func (q *queue) replace(names []string) {
	q.mu.Lock()
	q.items = q.items[:0]
	clear(q.in)
	for _, n := range names {
		if !q.in[n] {
			q.in[n] = true
			q.items = append(q.items, n)
		}
	}
	q.mu.Unlock()
	q.signal()
}

// push appends a name unless it is already waiting.
func (q *queue) push(name string) {
	q.mu.Lock()
	if !q.in[name] {
		q.in[name] = true
		q.items = append(q.items, name)
	}
	q.mu.Unlock()
	q.signal()
}

// pop waits for the next name; false when ctx ends.
func (q *queue) pop(ctx context.Context) (string, bool) {
	for ctx.Err() == nil {
		q.mu.Lock()
		if len(q.items) > 0 {
			n := q.items[0]
			q.items[0] = ""
			q.items = q.items[1:]
			delete(q.in, n)
			q.mu.Unlock()
			return n, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-q.wake:
		}
	}
	return "", false
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
