package batch

import (
	"sync"
	"testing"
	"time"
)

// recorder collects the batches a queue hands over.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	running bool
	overlap bool
}

func (r *recorder) fn(b []int) {
	r.mu.Lock()
	if r.running {
		r.overlap = true
	}
	r.running = true
	r.batches = append(r.batches, append([]int(nil), b...))
	r.mu.Unlock()
	time.Sleep(time.Microsecond)
	r.mu.Lock()
	r.running = false
	r.mu.Unlock()
}

func (r *recorder) all() (items []int, batches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		items = append(items, b...)
	}
	return items, len(r.batches)
}

func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size, adds  int
		flush       bool
		wantBatches int
	}{
		{"handed over when full", 4, 8, false, 2},
		{"the rest on Flush", 4, 10, true, 3},
		{"size 1 hands each item over", 1, 3, false, 3},
		{"size 0 is 1", 0, 2, false, 2},
		{"nothing to flush", 4, 0, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			q := New(tc.size, time.Hour, r.fn)
			for i := range tc.adds {
				q.Add(i)
			}
			if tc.flush {
				q.Flush()
			}
			items, batches := r.all()
			if batches != tc.wantBatches {
				t.Errorf("batches = %d, want %d", batches, tc.wantBatches)
			}
			for i, v := range items {
				if v != i {
					t.Fatalf("items out of order: %v", items)
				}
			}
			if len(items) != tc.adds && tc.flush {
				t.Errorf("got %d items, want %d", len(items), tc.adds)
			}
		})
	}
}

// A batch that does not fill is handed over after the delay.
func TestQueueDelay(t *testing.T) {
	var r recorder
	q := New(100, 20*time.Millisecond, r.fn)
	start := time.Now()
	q.Add(1)
	q.Add(2)
	for {
		if items, _ := r.all(); len(items) == 2 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the batch was not handed over after its delay")
		}
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("handed over after %v, before the delay", d)
	}
}

// Many goroutines adding at once: every item arrives once, each goroutine's
// items in its order, and the function never runs twice at the same time.
func TestQueueConcurrent(t *testing.T) {
	var r recorder
	q := New(16, time.Millisecond, r.fn)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.Add(w*each + i)
			}
		}()
	}
	wg.Wait()
	q.Close()
	items, _ := r.all()
	if len(items) != workers*each {
		t.Fatalf("got %d items, want %d", len(items), workers*each)
	}
	last := map[int]int{}
	for _, v := range items {
		w := v / each
		if prev, ok := last[w]; ok && v <= prev {
			t.Fatalf("items of goroutine %d out of order: %d after %d", w, v, prev)
		}
		last[w] = v
	}
	if r.overlap {
		t.Error("the function ran twice at the same time")
	}
}

// After Close every item is handed over as it is added.
func TestQueueClosed(t *testing.T) {
	var r recorder
	q := New(100, time.Hour, r.fn)
	q.Add(1)
	q.Close()
	q.Add(2)
	if items, batches := r.all(); len(items) != 2 || batches != 2 {
		t.Errorf("after Close: items %v in %d batches, want [1 2] in 2", items, batches)
	}
}
