package dnsserver

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// answer is a response of a zone template: the answer and authority
// sections in wire form, with the places that depend on the query. Only the
// question differs between the domains of a template, and every name under
// the apex is written as its own labels followed by a pointer to the apex
// inside the question; where the apex starts, and where the sections start
// (for pointers to names written earlier), is known per query only, so those
// pointers are filled in then.
type answer struct {
	// body is the answer and authority sections; a pointer fix-up
	// holds two placeholder octets.
	body   []byte
	fixups []fixup
	rcode  uint8
	// inserts counts the insertApex fix-ups, for the answer's size.
	inserts uint16
	an, ns  uint16
}

// fixup is a place in answer.body whose contents depend on the query.
type fixup struct {
	// off is where in the body.
	off uint16
	// arg is, for an insert, the offset of the record's RDLENGTH; for
	// a body pointer, the body offset it points to.
	arg  uint16
	kind uint8
	// skip is how many octets of the apex's wire form to leave out:
	// 5 ("\x04_tcp") for the domain of a _tcp zone, more for a suffix.
	skip uint8
}

const (
	// ptrApex is a pointer to the apex (or the domain) in the question.
	ptrApex = iota
	// insertApex writes the apex's labels in full instead: SRV targets
	// must not be compressed (RFC 2782), so a target under the apex is
	// copied from the question, and the record's RDLENGTH grows.
	insertApex
	// ptrBody is a pointer to a name earlier in the body, which moves
	// with the length of the question.
	ptrBody
)

// encoder writes the records of one template. It knows the record types
// this server publishes (SOA, NS, SRV, A, AAAA, CNAME, TXT) and nothing
// else.
//
// Names are compressed like the library compresses them, so that answers
// have about the same size and are truncated alike: against the question
// and against names written before. One case is left out: in a template
// shared by many domains, a name outside the apex that shares a suffix with
// the apex only (ns.hoster.example in the zone of customer.example shares
// "example."), which depends on the domain; such a name is written in full,
// a few octets more.
type encoder struct {
	// apex is the template's apex and domain the served domain (the same
	// unless the zone is _tcp.<domain>), both lower case with a dot.
	apex, domain string
	body         []byte
	fixups       []fixup
	// rdlen is the offset of the current record's RDLENGTH.
	rdlen int
	// known maps the names written so far (and their suffixes) to
	// where they are: a question offset (fixed) or a body offset.
	known map[string]location
	// inserted is set once an apex was copied in: later body offsets
	// move per domain, so they are no longer remembered.
	inserted bool
	// plainSOA writes the SOA's names uncompressed and in lower case,
	// as the NXDOMAIN answer always had them.
	plainSOA bool
	// shared is true for a provider's template, whose apex stands for
	// every domain of the provider.
	shared bool
}

type location struct {
	off  int
	body bool
}

// answer encodes a response for the name rel (relative to the apex) with
// these answer and authority records. nx is true for the NXDOMAIN answer,
// whose question is not a name of the zone.
func (e *encoder) answer(rel string, nx bool, an, ns []dns.RR) (*answer, error) {
	e.body, e.fixups, e.inserted = nil, nil, false
	e.known = map[string]location{}
	qname := e.apex
	if rel != "" {
		qname = rel + "." + e.apex
		// The question's own labels above the apex are at fixed
		// offsets.
		for off := 0; off < len(rel); {
			e.known[qname[off:]] = location{off: 12 + off}
			i := strings.IndexByte(rel[off:], '.')
			if i < 0 {
				break
			}
			off += i + 1
		}
	}
	rcode := dns.RcodeSuccess
	if nx {
		qname, rcode = "", dns.RcodeNameError
	}
	for _, rrs := range [][]dns.RR{an, ns} {
		for _, rr := range rrs {
			if err := e.rr(rr); err != nil {
				return nil, fmt.Errorf("encoding the DNS answer for %s: %w", qname, err)
			}
		}
	}
	if len(e.body) > 0xFFFF-512 {
		return nil, fmt.Errorf("the DNS answer for %s is too large", qname)
	}
	a := &answer{body: e.body, fixups: e.fixups, rcode: uint8(rcode), an: uint16(len(an)), ns: uint16(len(ns))}
	for _, f := range e.fixups {
		if f.kind == insertApex {
			a.inserts++
		}
	}
	return a, nil
}

func (e *encoder) rr(rr dns.RR) error {
	h := rr.Header()
	e.name(h.Name, true)
	e.body = binary.BigEndian.AppendUint16(e.body, h.Rrtype)
	e.body = binary.BigEndian.AppendUint16(e.body, h.Class)
	e.body = binary.BigEndian.AppendUint32(e.body, h.Ttl)
	rdlen := len(e.body)
	e.rdlen = rdlen
	e.body = append(e.body, 0, 0)
	switch r := rr.(type) {
	case *dns.SOA:
		e.name(r.Ns, !e.plainSOA)
		e.name(r.Mbox, !e.plainSOA)
		for _, v := range []uint32{r.Serial, r.Refresh, r.Retry, r.Expire, r.Minttl} {
			e.body = binary.BigEndian.AppendUint32(e.body, v)
		}
	case *dns.NS:
		e.name(r.Ns, true)
	case *dns.CNAME:
		e.name(r.Target, true)
	case *dns.SRV:
		e.body = binary.BigEndian.AppendUint16(e.body, r.Priority)
		e.body = binary.BigEndian.AppendUint16(e.body, r.Weight)
		e.body = binary.BigEndian.AppendUint16(e.body, r.Port)
		e.name(r.Target, false)
	case *dns.A:
		a := r.A.To4()
		if a == nil {
			return fmt.Errorf("%s: not an IPv4 address", r.A)
		}
		e.body = append(e.body, a...)
	case *dns.AAAA:
		a := r.AAAA.To16()
		if a == nil {
			return fmt.Errorf("%s: not an IPv6 address", r.AAAA)
		}
		e.body = append(e.body, a...)
	case *dns.TXT:
		// The character-strings are packed by the library, which
		// reads the presentation escapes (\" and \\) they are kept
		// in; a TXT record holds no names to compress.
		rd, err := txtRData(r)
		if err != nil {
			return err
		}
		e.body = append(e.body, rd...)
	default:
		return fmt.Errorf("record type %s is not published", dns.TypeToString[h.Rrtype])
	}
	if len(e.body) > 0xFFFF {
		return fmt.Errorf("answer too large")
	}
	binary.BigEndian.PutUint16(e.body[rdlen:], uint16(len(e.body)-rdlen-2))
	return nil
}

// txtRData is the RDATA of a TXT record in wire form.
func txtRData(r *dns.TXT) ([]byte, error) {
	c := *r
	c.Hdr.Name = "."
	buf := make([]byte, dns.Len(&c)+16)
	end, err := dns.PackRR(&c, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("TXT record of %s: %w", r.Hdr.Name, err)
	}
	// The root name (1 octet), type, class, TTL and RDLENGTH (10).
	return buf[11:end], nil
}

// name writes a domain name, compressed unless compress is false (SRV
// targets, RFC 2782). The apex and everything below it point into the
// question (or, uncompressed, copy the apex from it); other names are
// written in full or point to an earlier copy.
func (e *encoder) name(name string, compress bool) {
	name = strings.ToLower(dns.Fqdn(name))
	for off := 0; off < len(name) && name[off:] != "."; {
		s := name[off:]
		if loc, ok := e.known[s]; ok && compress {
			e.labels(name, off)
			if loc.body {
				e.fixups = append(e.fixups, fixup{off: uint16(len(e.body)), arg: uint16(loc.off), kind: ptrBody})
				e.body = append(e.body, 0, 0)
			} else {
				e.body = append(e.body, 0xC0|byte(loc.off>>8), byte(loc.off))
			}
			return
		}
		// The question ends with the apex: its suffixes are there too
		// (for a domain's own template, "example.com." of the apex
		// sub.example.com.; a shared template's placeholder apex has
		// none in common with other names).
		if compress && (s == e.apex || strings.HasSuffix(e.apex, "."+s)) {
			e.labels(name, off)
			e.fixups = append(e.fixups, fixup{off: uint16(len(e.body)), skip: uint8(len(e.apex) - len(s)), kind: ptrApex})
			e.body = append(e.body, 0, 0)
			return
		}
		// Uncompressed, a shared template copies the apex from the
		// question; a domain's own template knows it.
		if !compress && e.shared && (s == e.apex || s == e.domain) {
			e.labels(name, off)
			e.fixups = append(e.fixups, fixup{off: uint16(len(e.body)), arg: uint16(e.rdlen), skip: uint8(len(e.apex) - len(s)), kind: insertApex})
			e.inserted = true
			return
		}
		off += strings.IndexByte(s, '.') + 1
	}
	e.labels(name, len(name))
	e.body = append(e.body, 0)
}

// labels writes the labels of name up to offset end, remembering where
// each suffix starts for later names; the names here are host names and
// need no escapes.
func (e *encoder) labels(name string, end int) {
	for off := 0; off < end && name[off:] != "."; {
		rest := name[off:]
		i := strings.IndexByte(rest, '.')
		if _, ok := e.known[rest]; !ok && !e.inserted && len(e.body) < 0x3000 {
			e.known[rest] = location{off: len(e.body), body: true}
		}
		e.body = append(e.body, byte(i))
		e.body = append(e.body, rest[:i]...)
		off += i + 1
	}
}

// query is what an answer needs of a query: read from the wire by the fast
// path, or from a parsed message by the slow one.
type query struct {
	id     uint16
	flags  uint16 // the query's header flags, for RD and CD
	qname  []byte // wire form, in the case the client sent
	qtype  uint16
	qclass uint16
	edns   bool
	do     bool
	udp    uint16 // the client's EDNS buffer size
}

// render writes the complete response to q from a template answer; apexOff
// is the offset of the apex in q.qname.
func (a *answer) render(q *query, apexOff int, udp bool) []byte {
	apexLen := len(q.qname) - apexOff
	size := 12 + len(q.qname) + 4 + len(a.body) + int(a.inserts)*apexLen + 11
	out := make([]byte, 12, size)
	binary.BigEndian.PutUint16(out[0:], q.id)
	out[2] = 0x84 | byte(q.flags>>8)&0x01 // QR, AA, RD copied
	out[3] = a.rcode | byte(q.flags)&0x10 // CD copied
	out[5] = 1
	binary.BigEndian.PutUint16(out[6:], a.an)
	binary.BigEndian.PutUint16(out[8:], a.ns)
	out = append(out, q.qname...)
	out = binary.BigEndian.AppendUint16(out, q.qtype)
	out = binary.BigEndian.AppendUint16(out, q.qclass)
	qEnd := len(out)
	// grown is how much the inserts so far moved the body; record is
	// that amount before the current record's inserts, which all come
	// after its RDLENGTH.
	prev, grown, record, lastRec := 0, 0, 0, -1
	for _, f := range a.fixups {
		out = append(out, a.body[prev:f.off]...)
		prev = int(f.off)
		start := apexOff + int(f.skip)
		switch f.kind {
		case ptrApex:
			ptr := 12 + start
			out = append(out, 0xC0|byte(ptr>>8), byte(ptr))
			prev += 2
			continue
		case ptrBody:
			// Before any insert, so qEnd is all that moves it.
			ptr := qEnd + int(f.arg)
			out = append(out, 0xC0|byte(ptr>>8), byte(ptr))
			prev += 2
			continue
		}
		// The apex as configured: lower case, whatever the query's.
		from := len(out)
		out = append(out, q.qname[start:]...)
		for i, c := range out[from:] {
			if c-'A' < 26 {
				out[from+i] = c + ('a' - 'A')
			}
		}
		n := len(q.qname) - start
		if int(f.arg) != lastRec {
			record, lastRec = grown, int(f.arg)
		}
		p := qEnd + int(f.arg) + record
		binary.BigEndian.PutUint16(out[p:], binary.BigEndian.Uint16(out[p:])+uint16(n))
		grown += n
	}
	out = append(out, a.body[prev:]...)
	return withOPT(out, q, qEnd, udp)
}

// refused is the REFUSED answer: the header and the question, nothing else.
func refused(q *query, udp bool) []byte {
	out := make([]byte, 12, 12+len(q.qname)+4+11)
	binary.BigEndian.PutUint16(out[0:], q.id)
	out[2] = 0x80 | byte(q.flags>>8)&0x01
	out[3] = dns.RcodeRefused | byte(q.flags)&0x10
	out[5] = 1
	out = append(out, q.qname...)
	out = binary.BigEndian.AppendUint16(out, q.qtype)
	out = binary.BigEndian.AppendUint16(out, q.qclass)
	return withOPT(out, q, len(out), udp)
}

// withOPT truncates for UDP when needed and adds the OPT record.
func withOPT(out []byte, q *query, qEnd int, udp bool) []byte {
	if udp {
		limit := udpLimit(q.edns, q.udp)
		extra := 0
		if q.edns {
			extra = 11
		}
		if len(out)+extra > limit {
			// RFC 2181 section 9: no partial RRsets; TC=1 and the
			// resolver asks again over TCP.
			out = out[:qEnd]
			out[2] |= 0x02
			clear(out[6:10])
		}
	}
	if q.edns {
		out = appendOPT(out, q.do)
	}
	return out
}

// respond answers a query for a name in lower-case presentation form
// (key; its labels at the same offsets as in q.qname) from the zones, and
// tells the answer's class for the rate limit (its name is part of key).
func (z *Zones) respond(q *query, key []byte, udp bool) ([]byte, class) {
	t, off := z.lookup(key)
	if t == nil {
		return refused(q, udp), errorClass
	}
	rel := key[:max(off-1, 0)]
	n, ok := t.names[string(rel)]
	if !ok {
		return t.nxdomain.render(q, off, udp), class{kind: classNXDomain, name: key[off:]}
	}
	a := n.answer(q.qtype)
	c := class{kind: classAnswer, qtype: q.qtype, name: key}
	if a.an == 0 {
		c = class{kind: classNoData, name: key[off:]}
	}
	return a.render(q, off, udp), c
}
