package fastlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// record builds an access-line-like record.
func record(t time.Time, level slog.Level, msg, s1, s2 string, n int64, d time.Duration) slog.Record {
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(slog.String("method", s1), slog.String("path", s2), slog.Int64("status", n),
		slog.Duration("duration", d), slog.String("client", "thunderbird"), slog.String("remote", "192.0.2.1"))
	return r
}

// same checks that both formats write exactly what the standard handlers
// write for r.
func same(t *testing.T, r slog.Record) {
	t.Helper()
	for _, json := range []bool{false, true} {
		var ours, std bytes.Buffer
		if err := New(&ours, json, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		var h slog.Handler = slog.NewTextHandler(&std, nil)
		if json {
			h = slog.NewJSONHandler(&std, nil)
		}
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if ours.String() != std.String() {
			t.Fatalf("json=%v:\nours %q\nstd  %q", json, ours.String(), std.String())
		}
		// The same record given as its parts.
		var attrs []slog.Attr
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
		var parts bytes.Buffer
		if err := New(&parts, json, nil).Log(context.Background(), r.Time, r.Level, r.Message, attrs...); err != nil {
			t.Fatal(err)
		}
		if parts.String() != std.String() {
			t.Fatalf("Log, json=%v:\nours %q\nstd  %q", json, parts.String(), std.String())
		}
		// Field by field through Line, after a line already in the
		// buffer, written with it in one call; or declined, when the
		// record is not plain (Log writes those).
		var lines bytes.Buffer
		lh := New(&lines, json, nil)
		ok := plainRecord(r)
		ln := lh.Begin([]byte("before\n"), r.Time, r.Level, r.Message)
		for _, a := range attrs {
			switch a.Value.Kind() {
			case slog.KindString:
				if a.Key == "path" {
					// As the access log writes a redacted path.
					ln.StringFunc(a.Key, a.Value.String(), func(dst []byte, s string) []byte { return append(dst, s...) })
				} else {
					ln.String(a.Key, a.Value.String())
				}
			case slog.KindInt64:
				ln.Int(a.Key, a.Value.Int64())
			case slog.KindDuration:
				ln.Duration(a.Key, a.Value.Duration())
			default:
				ln.String(a.Key, "\x00") // not plain: the line must be declined
			}
		}
		lb, lok := ln.End()
		if lok != ok {
			t.Fatalf("Line: plain %v, the record: plain %v", lok, ok)
		}
		if want := "before\n"; !lok && string(lb) != want {
			t.Fatalf("Line declined but left %q, want %q", lb, want)
		}
		if lok {
			if err := lh.WriteLines(lb); err != nil {
				t.Fatal(err)
			}
			if want := "before\n" + std.String(); lines.String() != want {
				t.Fatalf("Line, json=%v:\nours %q\nstd  %q", json, lines.String(), want)
			}
		}
	}
}

func TestSameOutput(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 40, 1, 999_999_999, time.UTC)
	for _, tc := range []struct {
		msg, s1, s2 string
		d           time.Duration
	}{
		{"request", "GET", "/mail/config-v1.1.xml", 1234567 * time.Nanosecond},
		{"request", "POST", "/autodiscover/autodiscover.xml", 0},
		{"request", "GET", "/autodiscover/autodiscover.json/v1.0/Alice+x@Example.COM", time.Second},
		{"request", "GET", "/a b", time.Minute},           // quoted by the text handler
		{"request", "GET", `/"quoted"`, time.Millisecond}, // escaped
		{"request", "GET", "/<script>", 1},                // HTML characters
		{"request", "GET", "/ümlaut", 1},                  // non-ASCII
		{"request", "GET", "/\x00\n", 1},                  // control characters
		{"request", "GET", "", 1},                         // empty
		{"two words", "GET", "/", 1},
		{"k=v", "GET", "/", 1},
	} {
		same(t, record(now, slog.LevelInfo, tc.msg, tc.s1, tc.s2, 200, tc.d))
	}
	same(t, record(time.Time{}, slog.LevelWarn+2, "request", "GET", "/", -1, -time.Second))
	same(t, record(now.In(time.FixedZone("CET", 3600)), slog.LevelError, "request", "GET", "/", 1, 1))
	same(t, record(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "request", "GET", "/", 1, 1))
	r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.Any("err", io.EOF), slog.Group("g", slog.Int("a", 1)), slog.Bool("b", true), slog.Float64("f", 1.5))
	same(t, r) // kinds left to the standard handler
}

// TestSameOutputOverTime writes lines through one handler, which keeps the
// formatted second of the line before: the next millisecond, the next
// second, the same instant in another zone, a second before the epoch and
// back must each be written as the standard handler writes them.
func TestSameOutputOverTime(t *testing.T) {
	base := time.Date(2026, 11, 26, 2, 40, 1, 998_500_000, time.UTC)
	cet, other := time.FixedZone("CET", 3600), time.FixedZone("X", -(9*3600+30*60))
	times := []time.Time{
		base, base.Add(time.Millisecond), base.Add(2 * time.Millisecond), // into the next second
		base.Add(2 * time.Millisecond).In(cet), base.Add(3 * time.Millisecond).In(other),
		base.Add(time.Hour), base,
		time.Unix(-1, 500_000_000).UTC(), time.Unix(0, 0).UTC(), time.Unix(0, 999_999).UTC(),
		time.Date(1, 1, 1, 0, 0, 0, 1_000_000, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var ours, std bytes.Buffer
	h, s := New(&ours, false, nil), slog.NewTextHandler(&std, nil)
	for _, tm := range times {
		r := record(tm, slog.LevelInfo, "request", "GET", "/", 200, 1)
		ours.Reset()
		std.Reset()
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if err := s.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if ours.String() != std.String() {
			t.Errorf("%v:\nours %q\nstd  %q", tm, ours.String(), std.String())
		}
	}
}

// FuzzSameOutput: whatever the values, the output is the standard handler's.
func FuzzSameOutput(f *testing.F) {
	f.Add(int64(1764124801123456789), 0, "request", "GET", "/mail/config-v1.1.xml", int64(200), int64(1234567))
	f.Add(int64(0), 4, "x y", "", "/\"", int64(-1), int64(-5))
	f.Fuzz(func(t *testing.T, nanos int64, level int, msg, s1, s2 string, n, d int64) {
		same(t, record(time.Unix(0, nanos).UTC(), slog.Level(level), msg, s1, s2, n, time.Duration(d)))
	})
}

func TestLevelsAndDerivedHandlers(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, false, &slog.HandlerOptions{Level: slog.LevelWarn})
	log := slog.New(h)
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	log.With("a", 1).WithGroup("g").Warn("derived", "k", "v")
	want := "level=WARN msg=shown k=v\n"
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	if len(lines) != 3 || !bytes.HasSuffix(lines[0], []byte(want)) || !bytes.HasSuffix(lines[1], []byte("level=WARN msg=derived a=1 g.k=v\n")) {
		t.Errorf("output:\n%s", buf.String())
	}
	if New(io.Discard, true, &slog.HandlerOptions{AddSource: true}).fast {
		t.Error("AddSource must go to the standard handler")
	}
}

func BenchmarkAccessLine(b *testing.B) {
	r := record(time.Now(), slog.LevelInfo, "request", "GET", "/mail/config-v1.1.xml", 200, 1234567)
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"fastlog-text", New(io.Discard, false, nil)},
		{"slog-text", slog.NewTextHandler(io.Discard, nil)},
		{"fastlog-json", New(io.Discard, true, nil)},
		{"slog-json", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = tc.h.Handle(context.Background(), r)
			}
		})
	}
	b.Run("fastlog-text-Log", func(b *testing.B) {
		h := New(io.Discard, false, nil)
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			attrs := [...]slog.Attr{slog.String("method", "GET"), slog.String("path", "/mail/config-v1.1.xml"),
				slog.Int("status", 200), slog.Duration("duration", 1234567), slog.String("client", "other"),
				slog.String("remote", "127.0.0.1"), slog.String("domain", "example.com")}
			_ = h.Log(context.Background(), now, slog.LevelInfo, "request", attrs[:]...)
		}
	})
}
