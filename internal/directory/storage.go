package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Snapshot is one complete, checked list of domains from the source.
type Snapshot struct {
	Rows []Row `json:"rows"`
	// Loaded is when the rows were read from the source.
	Loaded time.Time `json:"loaded"`
	// Source is the kind of source (postgres, mysql, sqlite, ldap).
	Source string `json:"source"`
	// Stored is true for a snapshot read back from storage because the
	// source did not answer at start.
	Stored bool `json:"-"`
}

// storageVersion changes when the file's form does; an unknown version
// is ignored like a missing file.
const storageVersion = 1

type storedSnapshot struct {
	Version int `json:"version"`
	Snapshot
}

// readSnapshot reads the snapshot kept in file. A missing file is (nil,
// nil): nothing was kept yet.
func readSnapshot(file string) (*Snapshot, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stored snapshot: %w", err)
	}
	var s storedSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading the stored snapshot %s: %w", file, err)
	}
	if s.Version != storageVersion {
		return nil, fmt.Errorf("the stored snapshot %s has version %d, not %d", file, s.Version, storageVersion)
	}
	// The file may have been edited or damaged: its rows are checked
	// like fresh ones.
	rows, problems := checkRows(s.Rows, nil)
	if len(problems) > 0 {
		return nil, fmt.Errorf("the stored snapshot %s has bad rows, e.g. %s", file, problems[0])
	}
	s.Rows = rows
	s.Stored = true
	return &s.Snapshot, nil
}

// writeSnapshot replaces file with snap atomically (a new file renamed
// over the old one), so a crash or a second replica writing at the same
// time never leaves half a file.
func writeSnapshot(file string, snap *Snapshot) error {
	b, err := json.Marshal(storedSnapshot{Version: storageVersion, Snapshot: *snap})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("storing the snapshot: %w", err)
	}
	return nil
}
