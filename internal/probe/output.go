package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fatih/color"
)

// WriteJSON writes the report for scripts.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// palette colours the human output; every colour is off unless asked for,
// so the output in a pipe or a file stays plain.
type palette struct{ red, yellow, green, dim *color.Color }

func newPalette(on bool) palette {
	p := palette{color.New(color.FgRed, color.Bold), color.New(color.FgYellow), color.New(color.FgGreen), color.New(color.Faint)}
	for _, c := range []*color.Color{p.red, p.yellow, p.green, p.dim} {
		if on {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

// table prints rows with aligned columns. Colours are applied after the
// padding, so escape codes do not disturb the alignment.
type table struct {
	rows   [][]string
	colour []*color.Color // per row, for the first cell; may be nil
}

func (t *table) add(c *color.Color, cells ...string) {
	t.rows = append(t.rows, cells)
	t.colour = append(t.colour, c)
}

func (t *table) write(w io.Writer, indent string) {
	var width []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for ri, r := range t.rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			cell := c
			if i < len(r)-1 {
				cell += strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2)
			}
			if i == 0 && t.colour[ri] != nil {
				cell = t.colour[ri].Sprint(cell)
			}
			b.WriteString(cell)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// WriteText writes the report for people: the queries, a table of what
// each client would configure, the connections and the findings.
func WriteText(w io.Writer, r *Report, colour bool) {
	pal := newPalette(colour)
	status := func(s string) (string, *color.Color) {
		switch s {
		case StatusOK:
			return "ok", pal.green
		case StatusMissing:
			return "--", pal.dim
		}
		return "FAIL", pal.yellow
	}
	fmt.Fprintf(w, "Probe of %s (domain %s)\n\nQueries\n", r.Address, r.Domain)
	var q table
	for _, c := range r.Checks {
		st, col := status(c.Status)
		detail := c.Detail
		if c.ContentType != "" {
			detail += " [" + c.ContentType + "]"
		}
		if cert := c.Certificate; cert != nil {
			// Issuer and expiry of every HTTPS answer: which CA (a
			// managed certificate, a file) and how long it lasts.
			issued := ""
			if cert.IssuerName != "" || !cert.NotAfter.IsZero() {
				issued = "issued by " + cert.IssuerName + ", expires " + cert.NotAfter.UTC().Format("2006-01-02 15:04 MST")
			}
			switch {
			case cert.Valid:
				detail += "; certificate " + issued
			case issued != "":
				detail += "; " + cert.Error + " (" + issued + ")"
			default:
				detail += "; " + cert.Error
			}
		}
		q.add(col, st, strings.ToUpper(c.Kind), c.Target, detail)
	}
	q.write(w, "  ")

	fmt.Fprintln(w, "\nWhat each client would configure")
	var t table
	t.add(nil, "CLIENT", "DIRECTION", "PROTOCOL", "HOST", "PORT", "SECURITY", "SOURCE")
	for _, v := range r.Clients {
		for _, d := range []struct {
			name string
			e    *Endpoint
		}{{"incoming", v.Incoming}, {"outgoing", v.Outgoing}} {
			if d.e == nil {
				t.add(pal.red, v.Client, d.name, "-", "(none)", "-", "-", v.Source)
				continue
			}
			var col *color.Color
			if d.e.Security == SecurityPlain {
				col = pal.red
			}
			t.add(col, v.Client, d.name, d.e.Protocol, d.e.Host, strconv.Itoa(d.e.Port), d.e.Security, v.Source)
		}
	}
	t.write(w, "  ")

	if len(r.DAV) > 0 {
		fmt.Fprintln(w, "\nCalendars, contacts and JMAP")
		var d table
		d.add(nil, "SOURCE", "CALDAV", "CARDDAV", "JMAP")
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		for _, v := range r.DAV {
			d.add(nil, v.Source, dash(v.CalDAV), dash(v.CardDAV), dash(v.JMAP))
		}
		d.write(w, "  ")
	}

	if len(r.Connections) > 0 {
		fmt.Fprintln(w, "\nConnections")
		var c table
		for _, x := range r.Connections {
			st, col := "ok", pal.green
			if !x.OK {
				st, col = "FAIL", pal.red
			}
			detail := x.Detail
			if x.TLSVersion != "" {
				detail += " (" + x.TLSVersion + ")"
			}
			c.add(col, st, x.Endpoint.String(), detail)
		}
		c.write(w, "  ")
	}

	fmt.Fprintln(w, "\nFindings")
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "  none")
	}
	var f table
	for _, x := range r.Findings {
		col := pal.dim
		switch x.Severity {
		case SevError:
			col = pal.red
		case SevWarning:
			col = pal.yellow
		}
		f.add(col, strings.ToUpper(string(x.Severity)), x.Code, x.Message)
	}
	f.write(w, "  ")
	fmt.Fprintln(w)
	if r.OK {
		fmt.Fprintln(w, pal.green.Sprint("Every client gets a working TLS configuration."))
		return
	}
	n := 0
	for _, x := range r.Findings {
		if x.Severity == SevError {
			n++
		}
	}
	fmt.Fprintln(w, pal.red.Sprintf("%d problem(s): not every client gets a working TLS configuration.", n))
}
