package acme

import (
	"testing"
	"time"
)

// TestPacer: the background takes one order per interval and never the
// reserve; an on-demand order takes the reserve at once and, once it is
// spent, gets the next token before the background.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	min := time.Minute
	steps := []struct {
		name   string
		at     time.Duration
		urgent bool
		wait   time.Duration // 0: granted
	}{
		{"background starts at once", 0, false, 0},
		{"background waits for the next token", 0, false, min},
		{"on demand uses the reserve", 0, true, 0},
		{"on demand again", 0, true, 0},
		{"on demand, last reserve token", 0, true, 0},
		{"reserve spent: on demand waits one interval", 0, true, min},
		{"background waits for a full bucket", 0, false, 4 * min},
		{"a minute later on demand comes first", min, true, 0},
		{"background still waits for a full bucket", min, false, 4 * min},
		{"after the refill the background goes", 5 * min, false, 0},
		{"bucket holds at most reserve+1", time.Hour, true, 0},
		{"", time.Hour, true, 0},
		{"", time.Hour, true, 0},
		{"", time.Hour, true, 0},
		{"fifth burst token is not there", time.Hour, true, min},
	}
	p := newPacer(min, t0)
	for i, s := range steps {
		if got := p.reserveAt(at(s.at), s.urgent); got != s.wait {
			t.Errorf("step %d (%s): wait %s, want %s", i, s.name, got, s.wait)
		}
	}
}
