package fastlog

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the timer goroutine.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		lines      int
		wantWrites func(int) bool // number of writes to the underlying writer before any delay
	}{
		{"few lines stay buffered until the delay", 4096, 10, func(n int) bool { return n == 0 }},
		{"a full buffer is written at once, whole lines only", 64, 20, func(n int) bool { return n > 0 && n < 20 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			w := NewWriter(&out, tc.size, 50*time.Millisecond)
			var want strings.Builder
			for i := range tc.lines {
				line := fmt.Sprintf("line %02d\n", i)
				want.WriteString(line)
				if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if !tc.wantWrites(out.Writes()) {
				t.Errorf("%d writes before the delay", out.Writes())
			}
			if got := out.String(); !strings.HasPrefix(want.String(), got) || (got != "" && !strings.HasSuffix(got, "\n")) {
				t.Errorf("partial output %q is not whole lines of %q", got, want.String())
			}
			deadline := time.Now().Add(5 * time.Second)
			for out.String() != want.String() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if out.String() != want.String() {
				t.Fatalf("after the delay: %q, want %q", out.String(), want.String())
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("after close\n"))
			if !strings.HasSuffix(out.String(), "after close\n") {
				t.Errorf("a write after Close was not passed through: %q", out.String())
			}
		})
	}
}

func TestConcurrentLinesDoNotInterleave(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, 256, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				fmt.Fprintf(w, "goroutine %d line %03d %s\n", g, i, strings.Repeat("x", 20))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	for _, l := range lines {
		var g, i int
		var x string
		if n, _ := fmt.Sscanf(l, "goroutine %d line %d %s", &g, &i, &x); n != 3 || len(x) != 20 {
			t.Fatalf("broken line %q", l)
		}
	}
}
