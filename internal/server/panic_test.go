package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"

	"mailautoconf/internal/config"
)

// TestPanicIsAnsweredLoggedAndCounted checks that a handler's panic becomes a
// bare 500 without internals, and that the request still gets its access
// line and its count like any other.
func TestPanicIsAnsweredLoggedAndCounted(t *testing.T) {
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.echo.GET("/boom", func(echo.Context) error { panic("secret internals") })

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); body != "Internal Server Error\n" {
		t.Errorf("body %q", body)
	}
	log := logs.String()
	for _, want := range []string{`msg="panic in handler"`, `msg=request method=GET path=/boom status=500`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	var m dto.Metric
	if err := s.metrics.Requests.WithLabelValues("other", "error", "other").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Errorf("requests counted as errors: %v, want 1", n)
	}
}

// TestErrorLogsRedactAddresses: the log lines of a panic and of a server
// error name the path, and whatever the panic or the error says, without
// the local part of an address (log.addresses off).
func TestErrorLogsRedactAddresses(t *testing.T) {
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.echo.GET("/boom/*", func(c echo.Context) error { panic("no settings for " + c.Param("*")) })
	s.echo.GET("/fail/*", func(c echo.Context) error { return fmt.Errorf("no settings for %s", c.Param("*")) })
	for _, target := range []string{"/boom/jane.doe@example.com", "/fail/jane.doe%40example.com"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", target, rec.Code)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`"msg":"panic in handler","path":"/boom/*@example.com","panic":"no settings for *@example.com"`,
		`"msg":"request failed","method":"GET","path":"/fail/*@example.com","err":"no settings for *@example.com"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "jane") {
		t.Errorf("a local part is logged:\n%s", out)
	}
}
