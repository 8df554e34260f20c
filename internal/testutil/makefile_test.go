package testutil

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

// fuzzTargets lists every fuzz target in the repository as the Makefile
// names them: ./package/dir:FuzzName.
func fuzzTargets(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			out = append(out, "./"+filepath.ToSlash(rel)+":"+string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// makefileVar returns a variable's value from the Makefile, continuation
// lines joined, as whitespace-separated words.
func makefileVar(t *testing.T, makefile []byte, name string) []string {
	t.Helper()
	text := strings.ReplaceAll(string(makefile), "\\\n", " ")
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" ="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("Makefile: no %s", name)
	return nil
}

// `make fuzz` runs every fuzz target of the repository: a target missing
// from the list is never searched.
func TestMakefileFuzzTargets(t *testing.T) {
	root := RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	listed := makefileVar(t, makefile, "FUZZ_TARGETS")
	slices.Sort(listed)
	found := fuzzTargets(t, root)
	if len(found) < 10 {
		t.Fatalf("found only %d fuzz targets: %v", len(found), found)
	}
	for _, f := range found {
		if !slices.Contains(listed, f) {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS", f)
		}
	}
	for _, l := range listed {
		if !slices.Contains(found, l) {
			t.Errorf("the Makefile's FUZZ_TARGETS names %s, which does not exist", l)
		}
	}
}

// `make test` gives the same verdict on the same code: it runs the seed
// corpora (go test does) but no random search, which finds new inputs.
func TestMakeTestDoesNotFuzz(t *testing.T) {
	mk := Tool(t, "make", "make")
	cmd := exec.Command(mk, "-n", "test")
	cmd.Dir = RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "go test") {
		t.Fatalf("make -n test runs no tests:\n%s", out)
	}
	if strings.Contains(string(out), "-fuzz") {
		t.Errorf("make test fuzzes:\n%s", out)
	}
}
