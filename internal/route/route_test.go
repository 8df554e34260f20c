package route

import (
	"slices"
	"testing"
)

// TestTable: paths are registered once, every route answers some method,
// and the endpoint names are exactly the label values the operator
// documentation, the dashboard and the alerts (deploy/) know.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Table() {
		if seen[r.Path] {
			t.Errorf("%s registered twice", r.Path)
		}
		seen[r.Path] = true
		if len(r.Methods) == 0 || r.Handler == "" || r.Endpoint == "" {
			t.Errorf("%s: incomplete route %+v", r.Path, r)
		}
	}
	want := []string{"autoconfig", "mobileconfig", "autodiscover-pox", "autodiscover-json", "pacc", "page", "other"}
	if got := Endpoints(); !slices.Equal(got, want) {
		t.Errorf("Endpoints() = %q, want %q", got, want)
	}
}

func TestIndex(t *testing.T) {
	x := NewIndex()
	for _, tc := range []struct {
		path, endpoint string
		ops            bool
	}{
		{POXPath, AutodiscoverPOX, false},
		{JSONPath + "/*", AutodiscoverJSON, false},
		{AutoconfigWellKnownPath, Autoconfig, false},
		{QRPath, Page, false},
		{MetricsPath, Other, true},
		{"", Other, false}, // echo's path of a request no route matched
		{"/static/*", Other, false},
	} {
		if got := x.Endpoint(tc.path); got != tc.endpoint {
			t.Errorf("Endpoint(%q) = %q, want %q", tc.path, got, tc.endpoint)
		}
		if got := x.Ops(tc.path); got != tc.ops {
			t.Errorf("Ops(%q) = %v, want %v", tc.path, got, tc.ops)
		}
	}
}
