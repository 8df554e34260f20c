//go:build !linux

package filewatch

import "errors"

// newTracker: without inotify, unfinished writes are only guessed from a
// file that keeps changing (see Stable).
func newTracker(string) (writeTracker, error) {
	return nil, errors.New("no inotify on this system")
}
