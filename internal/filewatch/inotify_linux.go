package filewatch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"
)

// inotifyMask is what is watched on the file's directory: a modification
// opens a write, the close of a descriptor opened for writing finishes it,
// and a file renamed over the name, created or removed makes the name
// refer to another file (whose writes were all done elsewhere, or are
// about to begin).
const inotifyMask = syscall.IN_MODIFY | syscall.IN_CLOSE_WRITE | syscall.IN_CREATE |
	syscall.IN_MOVED_TO | syscall.IN_MOVED_FROM | syscall.IN_DELETE

// tracker follows writes to a file through inotify watches on its
// directory and, when the path is a symbolic link, on the directory of
// the file it points to (a Kubernetes ConfigMap is a chain of links).
// Directories are watched rather than the file, so that a file created
// anew under the name (removed, then written) is followed from its first
// byte.
type tracker struct {
	f     *os.File
	names map[int32]map[string]bool // watch descriptor -> names in that directory
	woken chan struct{}

	mu   sync.Mutex
	busy bool
}

func newTracker(path string) (writeTracker, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	t := &tracker{names: map[int32]map[string]bool{}, woken: make(chan struct{}, 1)}
	paths := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		paths = append(paths, real)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		wd, err := syscall.InotifyAddWatch(fd, filepath.Dir(abs), inotifyMask)
		if err != nil {
			continue
		}
		if t.names[int32(wd)] == nil {
			t.names[int32(wd)] = map[string]bool{}
		}
		t.names[int32(wd)][filepath.Base(abs)] = true
	}
	if len(t.names) == 0 {
		syscall.Close(fd)
		return nil, errors.New("inotify: no directory could be watched")
	}
	// A non-blocking descriptor wrapped by os.NewFile is served by the
	// runtime's poller: Read parks the goroutine, Close wakes it.
	t.f = os.NewFile(uintptr(fd), "inotify")
	go t.run()
	return t, nil
}

func (t *tracker) run() {
	buf := make([]byte, 64*(syscall.SizeofInotifyEvent+syscall.NAME_MAX+1))
	for {
		n, err := t.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			t.event(ev.Wd, ev.Mask, string(name))
		}
	}
}

func (t *tracker) event(wd int32, mask uint32, name string) {
	if mask&syscall.IN_Q_OVERFLOW != 0 {
		// Events were lost: whatever was being written may have been
		// finished meanwhile; the stability check still applies.
		t.note(false, true)
		return
	}
	if !t.names[wd][name] {
		return
	}
	switch {
	case mask&(syscall.IN_MODIFY|syscall.IN_CREATE) != 0:
		t.note(true, false)
	case mask&(syscall.IN_CLOSE_WRITE|syscall.IN_MOVED_TO|syscall.IN_MOVED_FROM|syscall.IN_DELETE) != 0:
		t.note(false, true)
	}
}

func (t *tracker) note(busy, wake bool) {
	t.mu.Lock()
	t.busy = busy
	t.mu.Unlock()
	if wake {
		select {
		case t.woken <- struct{}{}:
		default:
		}
	}
}

func (t *tracker) writing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.busy
}

func (t *tracker) wake() <-chan struct{} { return t.woken }

func (t *tracker) close() error { return t.f.Close() }
