package page_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailautoconf/internal/page"
)

// TestLanguageFiles checks every shipped language file, and that a
// translation with a missing, unknown or malformed string is refused
// rather than shown half-empty.
func TestLanguageFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("lang", "*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("language files: %v %v", files, err)
	}
	en, err := os.ReadFile(filepath.Join("lang", "en.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := page.ParseMessages(filepath.Base(f), data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if m.Tag != strings.TrimSuffix(filepath.Base(f), ".yaml") || m.LanguageName == "" {
			t.Errorf("%s: tag %q, name %q", f, m.Tag, m.LanguageName)
		}
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"missing", "submit: Show settings\n", "", "submit is missing"},
		{"empty", "submit: Show settings\n", "submit: \"  \"\n", "submit is missing"},
		{"unknown key", "submit: Show settings\n", "submit: Show settings\nsubmti: typo\n", "submti"},
		{"no argument", `settings_for: "Settings for %s"`, `settings_for: "Settings"`, "settings_for must contain %s exactly 1"},
		{"stray verb", "submit: Show settings\n", "submit: Show 100% settings\n", "submit must contain %s exactly 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(string(en), tc.from, tc.to, 1)
			if data == string(en) {
				t.Fatalf("%q not in en.yaml", tc.from)
			}
			_, err := page.ParseMessages("fr.yaml", []byte(data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
