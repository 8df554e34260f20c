package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

const settle = 50 * time.Millisecond

func write(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func stable(t *testing.T, w *Watcher) (string, Version, error) {
	t.Helper()
	data, v, err := w.Stable(context.Background())
	return string(data), v, err
}

// TestRenameIntoPlace: the documented way to change the file is taken at
// once and wakes the watcher.
func TestRenameIntoPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write(t, path, "one\n")
	w := New(path, settle)
	defer w.Close()
	if w.Changed() {
		t.Fatal("Changed before any change")
	}
	write(t, path, "two\n")
	if !w.Changed() {
		t.Fatal("a renamed file is not seen as changed")
	}
	if w.Tracks() {
		select {
		case <-w.Wake():
		case <-time.After(5 * time.Second):
			t.Error("no wake-up after a rename into place")
		}
	}
	got, v, err := stable(t, w)
	if err != nil || got != "two\n" {
		t.Fatalf("Stable = %q, %v", got, err)
	}
	w.Take(v)
	if w.Changed() {
		t.Error("Changed after Take")
	}
}

// TestUnfinishedWrite: a file opened, partly written and left open is not
// taken however long the writer pauses (inotify), and is taken once it
// is closed.
func TestUnfinishedWrite(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unfinished writes are seen through inotify (Linux)")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	write(t, path, "old complete file\n")
	w := New(path, settle)
	defer w.Close()
	if !w.Tracks() {
		t.Fatal("no inotify on Linux")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("first half\n"); err != nil {
		t.Fatal(err)
	}
	// The writer pauses: the file stays the same for many settle
	// intervals, and is still not taken.
	for range 5 {
		time.Sleep(settle)
		if got, _, err := stable(t, w); !errors.Is(err, ErrUnfinished) {
			t.Fatalf("Stable during an unfinished write = %q, %v", got, err)
		}
	}
	if !w.Changed() {
		t.Error("the truncated file is not seen as changed")
	}
	f.WriteString("second half\n")
	f.Close()
	select {
	case <-w.Wake():
	case <-time.After(5 * time.Second):
		t.Error("no wake-up when the writer closed the file")
	}
	if got, _, err := stable(t, w); err != nil || got != "first half\nsecond half\n" {
		t.Fatalf("Stable after the write = %q, %v", got, err)
	}
}

// TestStabilityOnly: without inotify (another host writing to a network
// file system, another system), a file that keeps changing across the
// settle interval is not taken; once it stops changing it is.
func TestStabilityOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write(t, path, "x\n")
	w := New(path, 4*settle)
	w.Close()
	w.writes = nil
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			f.WriteString("line\n")
			n++
			time.Sleep(settle / 10)
		}
	}()
	if got, _, err := stable(t, w); !errors.Is(err, ErrUnfinished) {
		t.Errorf("Stable while the file grows = %q, %v", got, err)
	}
	close(stop)
	n := <-done
	if got, _, err := stable(t, w); err != nil || len(got) != 2+n*5 {
		t.Errorf("Stable after the writes = %d bytes, %v; want %d", len(got), err, 2+n*5)
	}
}

// TestMissingFile: a removed file is an error of reading, not a version.
func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write(t, path, "x\n")
	w := New(path, settle)
	defer w.Close()
	os.Remove(path)
	if !w.Changed() {
		t.Error("a removed file is not seen as changed")
	}
	if _, _, err := stable(t, w); err == nil || errors.Is(err, ErrUnfinished) {
		t.Errorf("Stable of a removed file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	write(t, path, "y\n")
	if _, _, err := w.Stable(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stable with a cancelled context: %v", err)
	}
}
