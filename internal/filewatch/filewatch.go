// Package filewatch tells when a file has a new version that is completely
// written, for reloading a configuration file that an operator or a
// program may be writing at that very moment.
//
// A file written in place (an editor saving over it, `cat > file`, a
// configuration tool writing it line by line) passes through versions
// that are only a beginning of the new text. Such a beginning can itself
// be a valid file, one that lacks whatever the rest would have added;
// loading it would put a smaller configuration in force until the write
// is finished. A version is therefore taken only when
//
//   - no write to it is known to be unfinished: on Linux, inotify reports
//     every modification of the file and the close of every descriptor
//     that wrote to it, so a file modified and not yet closed is being
//     written (a writer that pauses for minutes is still seen);
//   - and it is stable: size, modification time and the SHA-256 of its
//     content are the same before and after a short interval (this alone
//     is what other systems get, and it catches writers inotify cannot
//     see, such as another host writing to a network file system).
//
// Writing the new file under another name and renaming it into place is
// the way to change it: the rename is atomic, and the name then refers to
// a complete file at once.
package filewatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrUnfinished is returned by Stable while the file is being written.
var ErrUnfinished = errors.New("the file is being written")

// Version identifies one version of the file.
type Version struct {
	info os.FileInfo // nil: the file did not exist
	sum  [sha256.Size]byte
}

// same reports whether two versions are the same file with the same
// size, modification time and content.
func (v Version) same(w Version) bool {
	if v.info == nil || w.info == nil {
		return v.info == nil && w.info == nil
	}
	return os.SameFile(v.info, w.info) && v.info.Size() == w.info.Size() &&
		v.info.ModTime().Equal(w.info.ModTime()) && v.sum == w.sum
}

// sameStat is same without the content: what a cheap periodic check
// compares.
func (v Version) sameStat(info os.FileInfo) bool {
	if v.info == nil || info == nil {
		return v.info == nil && info == nil
	}
	return os.SameFile(v.info, info) && v.info.Size() == info.Size() && v.info.ModTime().Equal(info.ModTime())
}

// Watcher watches one file.
type Watcher struct {
	path   string
	settle time.Duration
	writes writeTracker // nil where inotify is not available
	taken  Version
}

// writeTracker knows whether a write to the file is unfinished.
type writeTracker interface {
	// writing reports whether the file was modified and not closed
	// since.
	writing() bool
	// wake is signalled when a write was finished or the file replaced.
	wake() <-chan struct{}
	close() error
}

// New watches path. The version present now counts as taken: Changed
// reports versions after it. settle is the interval across which a
// version must stay the same to be taken.
func New(path string, settle time.Duration) *Watcher {
	w := &Watcher{path: path, settle: settle}
	if t, err := newTracker(path); err == nil {
		w.writes = t
	}
	if v, _, err := w.read(); err == nil {
		w.taken = v
	}
	return w
}

// Tracks reports whether unfinished writes are seen (inotify), not only
// guessed from a stable file.
func (w *Watcher) Tracks() bool { return w.writes != nil }

// Close stops watching.
func (w *Watcher) Close() error {
	if w.writes != nil {
		return w.writes.close()
	}
	return nil
}

// Wake is signalled when a write to the file was finished or the file was
// replaced, so a caller need not wait for its next periodic check. It is
// never signalled without inotify.
func (w *Watcher) Wake() <-chan struct{} {
	if w.writes == nil {
		return nil
	}
	return w.writes.wake()
}

// Changed reports whether the file's size, modification time or identity
// differ from the version taken last (a cheap check, no reading).
func (w *Watcher) Changed() bool {
	info, err := os.Stat(w.path)
	if err != nil {
		info = nil
	}
	return !w.taken.sameStat(info)
}

// Stable waits for the settle interval and returns the file's content
// when it is complete: no write known to be unfinished, and the same size,
// modification time and content before and after the interval. Otherwise
// it returns ErrUnfinished (try again later), or the error of reading the
// file. The version returned is taken only when the caller says so (Take).
func (w *Watcher) Stable(ctx context.Context) ([]byte, Version, error) {
	if w.busy() {
		return nil, Version{}, ErrUnfinished
	}
	before, _, err := w.read()
	if err != nil {
		return nil, Version{}, err
	}
	t := time.NewTimer(w.settle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, Version{}, ctx.Err()
	case <-t.C:
	}
	after, data, err := w.read()
	if err != nil {
		return nil, Version{}, err
	}
	// A write finished within the interval changed the modification
	// time; one still open shows as busy. (Events are not counted: the
	// event of a rename that happened just before the first read may be
	// read only during the interval.)
	if w.busy() || !before.same(after) {
		return nil, Version{}, ErrUnfinished
	}
	return data, after, nil
}

// Take marks v as the version in force: Changed compares with it.
func (w *Watcher) Take(v Version) { w.taken = v }

func (w *Watcher) busy() bool {
	return w.writes != nil && w.writes.writing()
}

// read returns the file's version and content. The information is taken
// from the open descriptor, so it describes the file that was read even if
// the name is replaced meanwhile.
func (w *Watcher) read() (Version, []byte, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return Version{}, nil, fmt.Errorf("reading %s: %w", w.path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Version{}, nil, fmt.Errorf("reading %s: %w", w.path, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return Version{}, nil, fmt.Errorf("reading %s: %w", w.path, err)
	}
	return Version{info: info, sum: sha256.Sum256(buf.Bytes())}, buf.Bytes(), nil
}
