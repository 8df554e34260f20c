package acme_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"mailautoconf/internal/acme"
	"mailautoconf/internal/config"
	tu "mailautoconf/internal/testutil"
)

// TestChallengePath: the challenge path answers the pre-check token (the
// same for every process on the storage), refuses names that get no
// certificate with a 404, and leaves every other path to the service.
func TestChallengePath(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "acme")
	cfg := &config.ACME{Directory: "https://127.0.0.1:1/dir", Storage: storage, OrdersPerHour: 60, PrecheckPort: 80}
	newManager := func() *acme.Manager {
		m, err := acme.New(cfg, acme.Options{HTTPAddr: "127.0.0.1:1", Logger: (&tu.LogBuffer{}).Logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		// Served, not listed: nothing is queued, no order is tried.
		m.Update(acme.Names{Served: func(h string) bool { return h == "autoconfig.example.com" }})
		return m
	}
	a, b := newManager(), newManager()
	ask := func(m *acme.Manager, host, path string) (bool, int, string) {
		r := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil)
		w := httptest.NewRecorder()
		handled := m.HandleHTTPChallenge(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		return handled, w.Code, string(body)
	}
	handled, code, tokA := ask(a, "autoconfig.example.com", "/.well-known/acme-challenge/mailautoconf-precheck")
	if !handled || code != http.StatusOK || len(tokA) < 20 {
		t.Fatalf("pre-check path: handled %v, %d %q", handled, code, tokA)
	}
	if _, _, tokB := ask(b, "other.example", "/.well-known/acme-challenge/mailautoconf-precheck"); tokB != tokA {
		t.Errorf("two processes on one storage answer different tokens: %q, %q", tokA, tokB)
	}
	for _, c := range []struct {
		host, path string
		handled    bool
		code       int
	}{
		{"autoconfig.evil.example", "/.well-known/acme-challenge/abcdef", true, http.StatusNotFound},
		{"autoconfig.example.com:80", "/.well-known/acme-challenge/unknown-token", true, http.StatusNotFound},
		{"autoconfig.example.com", "/mail/config-v1.1.xml", false, 0},
		{"autoconfig.example.com", "/.well-known/autoconfig/mail/config-v1.1.xml", false, 0},
	} {
		handled, code, _ := ask(a, c.host, c.path)
		if handled != c.handled || (handled && code != c.code) {
			t.Errorf("%s%s: handled %v, status %d; want %v, %d", c.host, c.path, handled, code, c.handled, c.code)
		}
	}
}
