package directory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStorage: a snapshot survives a write and a read; a damaged, foreign
// or edited file is refused with a reason, never half used.
func TestStorage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "directory.json")
	if s, err := readSnapshot(file); s != nil || err != nil {
		t.Errorf("missing file: %v %v", s, err)
	}
	snap := &Snapshot{Rows: []Row{{Domain: "example.com"}, {Domain: "alias.example", AliasOf: "example.com"}, {Domain: "x.example", Provider: "mail.example.net"}},
		Loaded: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Source: "postgres"}
	if err := writeSnapshot(file, snap); err != nil {
		t.Fatal(err)
	}
	got, err := readSnapshot(file)
	if err != nil || !got.Stored || !slices.Equal(got.Rows, snap.Rows) || !got.Loaded.Equal(snap.Loaded) || got.Source != "postgres" {
		t.Errorf("read back %+v, %v", got, err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".directory.json.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	for _, tc := range []struct{ name, body, err string }{
		{"truncated", `{"version":1,"rows":[{"domain":"exa`, "unexpected end of JSON input"},
		{"version", `{"version":2,"rows":[]}`, "has version 2, not 1"},
		{"edited", `{"version":1,"rows":[{"domain":"not a domain"}]}`, `has bad rows, e.g. "not a domain" is not a domain name`},
	} {
		if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := readSnapshot(file); s != nil || err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %+v, %v; want error %q", tc.name, s, err, tc.err)
		}
	}
	// The directory is gone: writing fails with a reason.
	if err := writeSnapshot(filepath.Join(dir, "gone", "x.json"), snap); err == nil || !strings.Contains(err.Error(), "storing the snapshot") {
		t.Errorf("write into a missing directory: %v", err)
	}
}
