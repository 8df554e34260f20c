package dnsserver

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// answer is a response of a zone template: the answer and authority
// sections in wire form, with the places where the zone's apex goes. Only
// the question differs between the domains of a template, and every name
// under the apex is written as its own labels followed by a pointer to the
// apex inside the question; that offset is known per query only, so the
// pointers are filled in then.
type answer struct {
	// body is the answer and authority sections; a pointer fix-up
	// holds two placeholder octets.
	body   []byte
	fixups []fixup
	rcode  uint8
	an, ns uint16
}

// fixup is a place in answer.body where the apex of the query goes.
type fixup struct {
	// off is where in the body.
	off uint16
	// rdlen is the offset of the record's RDLENGTH, for an insert.
	rdlen uint16
	// skip is how many octets of the apex's wire form to leave out:
	// 5 ("\x04_tcp") for a name under the domain but not under a _tcp
	// apex.
	skip uint8
	// insert writes the apex's labels in full instead of a pointer:
	// SRV targets must not be compressed (RFC 2782), so a target
	// under the apex is copied from the question.
	insert bool
}

// encoder writes the records of one template. It knows the record types
// this server publishes (SOA, NS, SRV, A, AAAA, CNAME) and nothing else.
type encoder struct {
	// apex is the template's apex and domain the served domain (the same
	// unless the zone is _tcp.<domain>), both lower case with a dot.
	apex, domain string
	body         []byte
	fixups       []fixup
	// rdlen is the offset of the current record's RDLENGTH.
	rdlen int
}

// answer encodes a response for the name rel (relative to the apex) with
// these answer and authority records. nx is true for the NXDOMAIN answer,
// whose question is not a name of the zone.
func (e *encoder) answer(rel string, nx bool, an, ns []dns.RR) (*answer, error) {
	e.body, e.fixups = nil, nil
	qname := e.apex
	if rel != "" {
		qname = rel + "." + e.apex
	}
	rcode := dns.RcodeSuccess
	if nx {
		qname, rcode = "", dns.RcodeNameError
	}
	for _, rrs := range [][]dns.RR{an, ns} {
		for _, rr := range rrs {
			if err := e.rr(qname, rr); err != nil {
				return nil, fmt.Errorf("encoding the DNS answer for %s: %w", qname, err)
			}
		}
	}
	if len(e.body) > 0xFFFF-512 {
		return nil, fmt.Errorf("the DNS answer for %s is too large", qname)
	}
	return &answer{body: e.body, fixups: e.fixups, rcode: uint8(rcode), an: uint16(len(an)), ns: uint16(len(ns))}, nil
}

func (e *encoder) rr(qname string, rr dns.RR) error {
	h := rr.Header()
	e.name(strings.ToLower(h.Name), qname, true)
	e.body = binary.BigEndian.AppendUint16(e.body, h.Rrtype)
	e.body = binary.BigEndian.AppendUint16(e.body, h.Class)
	e.body = binary.BigEndian.AppendUint32(e.body, h.Ttl)
	rdlen := len(e.body)
	e.rdlen = rdlen
	e.body = append(e.body, 0, 0)
	switch r := rr.(type) {
	case *dns.SOA:
		e.name(r.Ns, qname, true)
		e.name(r.Mbox, qname, true)
		for _, v := range []uint32{r.Serial, r.Refresh, r.Retry, r.Expire, r.Minttl} {
			e.body = binary.BigEndian.AppendUint32(e.body, v)
		}
	case *dns.NS:
		e.name(r.Ns, qname, true)
	case *dns.CNAME:
		e.name(r.Target, qname, true)
	case *dns.SRV:
		e.body = binary.BigEndian.AppendUint16(e.body, r.Priority)
		e.body = binary.BigEndian.AppendUint16(e.body, r.Weight)
		e.body = binary.BigEndian.AppendUint16(e.body, r.Port)
		e.name(r.Target, qname, false)
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
	default:
		return fmt.Errorf("record type %s is not published", dns.TypeToString[h.Rrtype])
	}
	if len(e.body) > 0xFFFF {
		return fmt.Errorf("answer too large")
	}
	binary.BigEndian.PutUint16(e.body[rdlen:], uint16(len(e.body)-rdlen-2))
	return nil
}

// name writes a domain name. The query name itself is a pointer to the
// question (0xC00C); a name under the apex (or under the domain of a _tcp
// zone) is its own labels and a pointer to the apex in the question, or with
// compress false (SRV targets) the apex's labels copied from the question.
// Other names are written in full, uncompressed.
func (e *encoder) name(name, qname string, compress bool) {
	name = strings.ToLower(dns.Fqdn(name))
	if compress && name == qname {
		e.body = append(e.body, 0xC0, 12)
		return
	}
	for _, s := range []struct {
		suffix string
		skip   int
	}{{e.apex, 0}, {e.domain, len(e.apex) - len(e.domain)}} {
		if name != s.suffix && !strings.HasSuffix(name, "."+s.suffix) {
			continue
		}
		e.labels(name[:len(name)-len(s.suffix)])
		f := fixup{off: uint16(len(e.body)), skip: uint8(s.skip), insert: !compress}
		if compress {
			e.body = append(e.body, 0, 0)
		} else {
			f.rdlen = uint16(e.rdlen)
		}
		e.fixups = append(e.fixups, f)
		return
	}
	e.labels(name)
	e.body = append(e.body, 0)
}

// labels writes the labels of a name in presentation form ("a.b." or "");
// the names here are host names and need no escapes.
func (e *encoder) labels(s string) {
	for s != "" && s != "." {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			i = len(s)
		}
		e.body = append(e.body, byte(i))
		e.body = append(e.body, s[:i]...)
		if i == len(s) {
			break
		}
		s = s[i+1:]
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
	size := 12 + len(q.qname) + 4 + len(a.body) + len(a.fixups)*apexLen + 11
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
	prev, grown := 0, 0
	for _, f := range a.fixups {
		out = append(out, a.body[prev:f.off]...)
		prev = int(f.off)
		start := apexOff + int(f.skip)
		if !f.insert {
			ptr := 12 + start
			out = append(out, 0xC0|byte(ptr>>8), byte(ptr))
			prev += 2
			continue
		}
		// The apex as configured: lower case, whatever the query's.
		for _, c := range q.qname[start:] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
		}
		n := len(q.qname) - start
		p := qEnd + int(f.rdlen) + grown
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
		limit := dns.MinMsgSize
		extra := 0
		if q.edns {
			limit = min(max(int(q.udp), dns.MinMsgSize), MaxUDPSize)
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
// (key; its labels at the same offsets as in q.qname) from the zones.
func (z *Zones) respond(q *query, key []byte, udp bool) []byte {
	t, off := z.lookup(key)
	if t == nil {
		return refused(q, udp)
	}
	rel := key[:max(off-1, 0)]
	n, ok := t.names[string(rel)]
	if !ok {
		return t.nxdomain.render(q, off, udp)
	}
	return n.answer(q.qtype).render(q, off, udp)
}
