package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// With the service's own log handler, access lines and request counts are
// written in batches: a line reaches the log shortly after its request
// without anything flushing it, a scrape of /metrics counts every request
// answered before it, and nothing is lost when the server stops.
func TestAccessBatches(t *testing.T) {
	logs := &testutil.LogBuffer{}
	srv := testutil.Start(t, testutil.Demo(t), server.Options{Logger: slog.New(fastlog.New(logs, false, nil))})
	url := srv.URL + "/mail/config-v1.1.xml?emailaddress=alice@example.com"
	const n = 3
	for range n {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0")
		if r := testutil.Do(t, req); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	// A path that needs quoting goes to the standard handler, after the
	// lines before it and before those after it.
	if r := testutil.Get(t, srv.URL+"/no%20such%22path", ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", r.StatusCode)
	}
	if r := testutil.Get(t, srv.URL+"/healthz", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	// Counted at once: the scrape flushes the batch first.
	key := `mailautoconf_http_requests_total{client="thunderbird",endpoint="autoconfig",outcome="ok"}`
	if v := metricValue(t, srv.URL, key); v != n {
		t.Errorf("%s = %v right after %d requests, want %d", key, v, n, n)
	}
	// Logged within the batch's delay, with nobody flushing.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "msg=request method=GET path=/mail/config-v1.1.xml status=200") < n {
		if time.Now().After(deadline) {
			t.Fatalf("the access lines of %d requests did not reach the log:\n%s", n, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	last := strings.LastIndex(out, "path=/mail/config-v1.1.xml")
	quoted := strings.Index(out, `path="/no such\"path" status=404`)
	health := strings.Index(out, "path=/healthz status=200")
	if !(last >= 0 && last < quoted && quoted < health) {
		t.Errorf("the quoted line is missing or out of order:\n%s", out)
	}
}

// The Date header, formatted once per second by the service, is one value
// in net/http's format and tells the time.
func TestDateHeader(t *testing.T) {
	srv := testutil.Start(t, testutil.Demo(t), server.Options{})
	for _, path := range []string{"/mail/config-v1.1.xml?emailaddress=alice@example.com", "/no-such-path", "/healthz"} {
		before := time.Now().Add(-time.Second)
		r := testutil.Get(t, srv.URL+path, "")
		after := time.Now().Add(time.Second)
		dates := r.Header.Values("Date")
		if len(dates) != 1 {
			t.Fatalf("%s: Date %q, want one value", path, dates)
		}
		d, err := time.Parse(http.TimeFormat, dates[0])
		if err != nil {
			t.Fatalf("%s: Date %q: %v", path, dates[0], err)
		}
		if d.Before(before.Truncate(time.Second)) || d.After(after) {
			t.Errorf("%s: Date %v, not between %v and %v", path, d, before, after)
		}
	}
}
