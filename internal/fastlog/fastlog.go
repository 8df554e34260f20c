// Package fastlog is the service's logging: a slog handler (Handler) and
// the batching writer it writes through (Writer). Both exist for the access
// log, one line per request, which with slog's own handler written straight
// to stderr cost about as much as answering the request.
//
// Handler is slog's own text or JSON handler, with a shortcut for the
// records that make up nearly all of the output, the access lines.
//
// slog.TextHandler and slog.JSONHandler spend about a microsecond on an
// access line (a state per record, quoting rules checked rune by rune for
// every key and value, and a lock), more than routing, rendering and the
// metrics of the request together, and more than a tenth of what the
// fastest possible Go HTTP server spends per request. A record whose
// attributes are plain (strings of letters, digits and a few punctuation
// marks that neither format quotes or escapes, integers, durations; no
// groups, no derived loggers) is written here directly, byte for byte as the
// standard handler would write it (FuzzSameOutput checks this). Every other
// record, and everything when HandlerOptions asks for sources or
// replacements, goes to the standard handler.
package fastlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"mailautoconf/internal/bufpool"
)

// Handler is a slog.Handler writing text (logfmt) or JSON lines.
type Handler struct {
	std   slog.Handler
	w     io.Writer
	json  bool
	level slog.Leveler
	fast  bool
	bufs  *bufpool.Pool
	// second is the text format of the last second written, which
	// nearly every access line shares with the one before it.
	second atomic.Pointer[stamp]
}

// stamp is a second formatted as the text handler writes it: the part
// before the milliseconds and the zone after them.
type stamp struct {
	unix   int64
	loc    *time.Location
	prefix []byte // 2006-01-02T15:04:05
	zone   []byte // Z07:00
}

// New returns a handler writing to w, which must accept concurrent writes
// of whole lines (each Write call is one line): the standard handler and
// the shortcut write independently.
func New(w io.Writer, json bool, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	h := &Handler{w: w, json: json, level: opts.Level, bufs: &bufpool.Pool{}}
	if h.level == nil {
		h.level = slog.LevelInfo
	}
	if json {
		h.std = slog.NewJSONHandler(w, opts)
	} else {
		h.std = slog.NewTextHandler(w, opts)
	}
	h.fast = !opts.AddSource && opts.ReplaceAttr == nil
	return h
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler; derived handlers are the standard one.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }

// WithGroup implements slog.Handler; derived handlers are the standard one.
func (h *Handler) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

// Log writes one record given as its parts, as Handle would write the
// record made of them, without building a slog.Record: a record keeps five
// attributes inline and allocates for more, and an access line has seven.
// attrs is not kept. Like Handle, it does not check the level: the caller
// asks Enabled first.
func (h *Handler) Log(ctx context.Context, t time.Time, level slog.Level, msg string, attrs ...slog.Attr) error {
	if !h.fast || !plainParts(t, level, msg) || !plainAttrs(attrs) {
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return h.std.Handle(ctx, r)
	}
	return h.write(t, level, msg, attrs, nil)
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast || !plainRecord(r) {
		return h.std.Handle(ctx, r)
	}
	return h.write(r.Time, r.Level, r.Message, nil, &r)
}

// Line appends one line field by field, as Log would write it for the
// same parts given as attributes, for a caller that writes many lines of one
// shape (the access log): without slog.Attr values, whose kind is looked
// at again for every field, nor a second pass over them. Begin starts it;
// End reports whether every part was plain.
type Line struct {
	e     enc
	start int
	ok    bool
}

// Begin starts a line with the time, level and message.
func (h *Handler) Begin(dst []byte, t time.Time, level slog.Level, msg string) Line {
	l := Line{start: len(dst), ok: h.fast && plainParts(t, level, msg)}
	if !l.ok {
		l.e.b = dst
		return l
	}
	l.e.b = h.appendLine(dst, t, level, msg, nil, nil)
	// appendLine closed the line; it is reopened for the fields.
	l.e.b = l.e.b[:len(l.e.b)-1]
	if h.json {
		l.e.b = l.e.b[:len(l.e.b)-1]
	}
	l.e.json = h.json
	return l
}

// String appends a string field.
func (l *Line) String(key, value string) {
	if l.ok = l.ok && plain(key) && plain(value); l.ok {
		l.e.key(key)
		l.e.str(value)
	}
}

// StringFunc appends a string field whose value f appends to the line,
// f(dst, s): text derived from s (a path with its addresses redacted)
// without a string made for it.
func (l *Line) StringFunc(key, s string, f func(dst []byte, s string) []byte) {
	if l.ok = l.ok && plain(key); !l.ok {
		return
	}
	l.e.key(key)
	if l.e.json {
		l.e.b = append(l.e.b, '"')
	}
	n := len(l.e.b)
	l.e.b = f(l.e.b, s)
	if l.ok = plain(l.e.b[n:]); l.ok && l.e.json {
		l.e.b = append(l.e.b, '"')
	}
}

// Int appends an integer field.
func (l *Line) Int(key string, v int64) {
	if l.ok = l.ok && plain(key); l.ok {
		l.e.key(key)
		l.e.b = strconv.AppendInt(l.e.b, v, 10)
	}
}

// Duration appends a duration field.
func (l *Line) Duration(key string, d time.Duration) {
	if l.ok = l.ok && plain(key); l.ok {
		l.e.key(key)
		if l.e.json {
			l.e.b = strconv.AppendInt(l.e.b, int64(d), 10)
		} else {
			l.e.b = append(l.e.b, d.String()...)
		}
	}
}

// End closes the line and returns the buffer with it, and true; or, when a
// part was not plain, the buffer as it was before Begin and false (then
// Log must write the record).
func (l *Line) End() ([]byte, bool) {
	if !l.ok {
		return l.e.b[:l.start], false
	}
	b := l.e.b
	if l.e.json {
		b = append(b, '}')
	}
	return append(b, '\n'), true
}

// WriteLines writes lines made by Line in one call to the
// handler's writer.
func (h *Handler) WriteLines(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := h.w.Write(b)
	return err
}

// write formats a plain record: the attributes of r when r is not nil,
// attrs otherwise.
func (h *Handler) write(t time.Time, level slog.Level, msg string, attrs []slog.Attr, r *slog.Record) error {
	bp := h.bufs.Get()
	defer h.bufs.Put(bp)
	b := h.appendLine((*bp)[:0], t, level, msg, attrs, r)
	_, err := h.w.Write(b)
	*bp = b
	return err
}

// appendLine appends a plain record as one line.
func (h *Handler) appendLine(dst []byte, t time.Time, level slog.Level, msg string, attrs []slog.Attr, r *slog.Record) []byte {
	e := enc{b: dst, json: h.json, first: true}
	if h.json {
		e.b = append(e.b, '{')
	}
	if !t.IsZero() {
		t = t.Round(0)
		e.key(slog.TimeKey)
		if h.json {
			e.b = append(e.b, '"')
			e.b = t.AppendFormat(e.b, time.RFC3339Nano)
			e.b = append(e.b, '"')
		} else {
			e.b = h.appendTime(e.b, t)
		}
	}
	e.key(slog.LevelKey)
	e.str(level.String())
	e.key(slog.MessageKey)
	e.str(msg)
	if r != nil {
		r.Attrs(func(a slog.Attr) bool {
			e.attr(a)
			return true
		})
	}
	for _, a := range attrs {
		e.attr(a)
	}
	b := e.b
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n')
}

// enc appends the parts of one line.
type enc struct {
	b     []byte
	json  bool
	first bool
}

func (e *enc) key(k string) {
	switch {
	case e.first:
		e.first = false
	case e.json:
		e.b = append(e.b, ',')
	default:
		e.b = append(e.b, ' ')
	}
	if e.json {
		e.b = append(e.b, '"')
		e.b = append(e.b, k...)
		e.b = append(e.b, '"', ':')
	} else {
		e.b = append(e.b, k...)
		e.b = append(e.b, '=')
	}
}

// attr appends a plain attribute.
func (e *enc) attr(a slog.Attr) {
	e.key(a.Key)
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		e.str(v.String())
	case slog.KindInt64:
		e.b = strconv.AppendInt(e.b, v.Int64(), 10)
	case slog.KindDuration:
		if e.json {
			e.b = strconv.AppendInt(e.b, int64(v.Duration()), 10)
		} else {
			e.b = append(e.b, v.Duration().String()...)
		}
	}
}

// str appends a plain string value.
func (e *enc) str(s string) {
	if e.json {
		e.b = append(e.b, '"')
		e.b = append(e.b, s...)
		e.b = append(e.b, '"')
	} else {
		e.b = append(e.b, s...)
	}
}

// plainRecord reports whether every part of r is written verbatim by both
// standard handlers.
func plainRecord(r slog.Record) bool {
	if !plainParts(r.Time, r.Level, r.Message) {
		return false
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		ok = plainAttr(a)
		return ok
	})
	return ok
}

func plainParts(t time.Time, level slog.Level, msg string) bool {
	if y := t.Year(); !t.IsZero() && (y < 0 || y >= 10000) {
		return false // the JSON handler reports an error there
	}
	return plain(msg) && plain(level.String())
}

func plainAttrs(as []slog.Attr) bool {
	for _, a := range as {
		if !plainAttr(a) {
			return false
		}
	}
	return true
}

func plainAttr(a slog.Attr) bool {
	switch a.Value.Kind() {
	case slog.KindString:
		return plain(a.Key) && plain(a.Value.String())
	case slog.KindInt64, slog.KindDuration:
		return plain(a.Key)
	}
	return false
}

// plain reports whether s is non-empty and made of characters that the text
// handler does not quote and the JSON handler does not escape (a string,
// or bytes a field was appended as).
func plain[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte: letters, digits and "-._/:@+%~,!*'()[];$?#" — no space, no
// '=', no quote or backslash, no control or non-ASCII byte, and none of
// "<>&" that a JSON encoder might escape for HTML.
var plainByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._/:@+%~,!*'()[];$?#" {
		t[c] = true
	}
	return t
}()

// appendTime appends t in the text handler's time format, RFC 3339 with
// exactly three digits of milliseconds, truncated, formatting the date,
// time of day and zone once per second: under load, formatting the
// whole time was a quarter of what writing an access line cost.
func (h *Handler) appendTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	st := h.second.Load()
	if st == nil || st.unix != sec || st.loc != loc {
		// The offset is a function of the instant and the
		// location, so a second in one location has one zone.
		whole := t.Truncate(time.Second)
		st = &stamp{unix: sec, loc: loc,
			prefix: whole.AppendFormat(nil, "2006-01-02T15:04:05"),
			zone:   whole.AppendFormat(nil, "Z07:00")}
		h.second.Store(st)
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, st.prefix...)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, st.zone...)
}
