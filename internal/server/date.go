package server

import (
	"net/http"
	"sync/atomic"
	"time"
)

// httpDate is the Date header of the current second, formatted once per
// second rather than by net/http for every answer (which formats it anew
// each time when the handler has not set one): under load that formatting
// was about as much CPU as the access line.
type httpDate struct {
	cur atomic.Pointer[dateValue]
}

type dateValue struct {
	unix int64
	v    []string
}

// header returns the Date header's value for now, as net/http writes it
// (http.TimeFormat, in GMT). The slice is shared by every answer of the
// second: its capacity is its length, so that an Add appends elsewhere.
func (d *httpDate) header(now time.Time) []string {
	sec := now.Unix()
	if p := d.cur.Load(); p != nil && p.unix == sec {
		return p.v
	}
	v := []string{now.UTC().Format(http.TimeFormat)}
	d.cur.Store(&dateValue{unix: sec, v: v[:1:1]})
	return v[:1:1]
}
