package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func request(rawQuery string) *http.Request {
	return &http.Request{URL: &url.URL{Path: "/", RawQuery: rawQuery}}
}

func TestQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		names []string
		want  string
		ok    bool
	}{
		{"emailaddress=alice%40example.com", []string{"emailaddress", "email"}, "alice@example.com", true},
		{"emailaddress=alice@example.com", []string{"emailaddress", "email"}, "alice@example.com", true},
		{"EmailAddress=bob%40example.net", []string{"emailaddress", "email"}, "bob@example.net", true},
		{"email=a%40b.example&emailaddress=c%40d.example", []string{"emailaddress", "email"}, "c@d.example", true},
		{"EMAIL=x&emailAddress=y", []string{"emailaddress", "email"}, "y", true}, // earlier name first, also without case
		{"EMAIL=x&email=z", []string{"emailaddress", "email"}, "z", true},        // exact before case-insensitive
		{"emailaddress=first&emailaddress=second", []string{"emailaddress"}, "first", true},
		{"emailaddress=%zz&emailaddress=good", []string{"emailaddress"}, "good", true}, // bad escape: pair dropped
		{"emailaddress=a;b&emailaddress=ok", []string{"emailaddress"}, "ok", true},     // ';' : pair dropped
		{"email%61ddress=escaped+name", []string{"emailaddress"}, "escaped name", true},
		{"emailaddress", []string{"emailaddress"}, "", true},
		{"emailaddress=", []string{"emailaddress"}, "", true},
		{"&&=x&emailaddress=v&", []string{"emailaddress"}, "v", true},
		{"other=1", []string{"emailaddress", "email"}, "", false},
		{"", []string{"emailaddress"}, "", false},
		{"Protocol=AutodiscoverV1", []string{"Protocol"}, "AutodiscoverV1", true},
		{"protocol=activesync", []string{"Protocol"}, "activesync", true},
	} {
		got, ok := Query(request(tc.query), tc.names...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Query(%q, %q) = %q, %v; want %q, %v", tc.query, tc.names, got, ok, tc.want, tc.ok)
		}
	}
}

// referenceQuery selects like Query from pairs parsed the way
// url.ParseQuery parses them, in query order.
func referenceQuery(raw string, names []string) (string, bool) {
	type pair struct{ k, v string }
	var pairs []pair
	for _, p := range strings.Split(raw, "&") {
		if p == "" || strings.Contains(p, ";") {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		pairs = append(pairs, pair{k, v})
	}
	for _, n := range names {
		for _, p := range pairs {
			if p.k == n {
				return p.v, true
			}
		}
	}
	for _, n := range names {
		for _, p := range pairs {
			if strings.EqualFold(p.k, n) {
				return p.v, true
			}
		}
	}
	return "", false
}

// FuzzQuery checks the in-place scan against url.ParseQuery's parsing.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"emailaddress=a%40b.example", "EMAIL=x&emailAddress=y", "a=%zz&email=1;2&email=3", "email%41ddress=x+y"} {
		f.Add(s)
	}
	names := []string{"emailaddress", "email"}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := Query(request(raw), names...)
		want, wok := referenceQuery(raw, names)
		// The first pass must also agree with url.ParseQuery itself.
		if vals, _ := url.ParseQuery(raw); len(vals["emailaddress"]) > 0 {
			want, wok = vals["emailaddress"][0], true
		}
		if got != want || ok != wok {
			t.Fatalf("Query(%q) = %q, %v; reference %q, %v", raw, got, ok, want, wok)
		}
	})
}

func BenchmarkQuery(b *testing.B) {
	r := request("emailaddress=alice%40example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Query(r, "emailaddress", "email"); !ok {
			b.Fatal("not found")
		}
	}
}
