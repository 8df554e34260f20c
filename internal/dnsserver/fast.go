package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// wireQuery is a plain query read straight from the wire: one question and
// at most an OPT record. Anything else goes through the library's parser.
type wireQuery struct {
	query
	key []byte // lower-case presentation form, "a.example.com."
}

// parseWire reads a standard query. ok is false for anything unusual
// (compression in the question, labels with characters outside letters,
// digits, '-', '_' and '*', EDNS other than a bare version-0 OPT), which
// the slow path then handles with full parsing.
func parseWire(b []byte, key []byte) (q wireQuery, ok bool) {
	if len(b) < 17 || b[2]&0xF8 != 0 || // a query (QR clear), opcode QUERY
		binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 ||
		binary.BigEndian.Uint16(b[8:]) != 0 || binary.BigEndian.Uint16(b[10:]) > 1 {
		return q, false
	}
	off := 12
	for {
		if off >= len(b) {
			return q, false
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(b) || off+1+l-12 > 255 {
			return q, false
		}
		for _, c := range b[off+1 : off+1+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return q, false
			}
			key = append(key, c)
		}
		key = append(key, '.')
		off += 1 + l
	}
	if len(key) == 0 {
		key = append(key, '.')
	}
	if off+4 > len(b) {
		return q, false
	}
	q.id = binary.BigEndian.Uint16(b[0:])
	q.flags = binary.BigEndian.Uint16(b[2:])
	q.qname = b[12:off]
	q.key = key
	q.qtype = binary.BigEndian.Uint16(b[off:])
	q.qclass = binary.BigEndian.Uint16(b[off+2:])
	rest := b[off+4:]
	if binary.BigEndian.Uint16(b[10:]) == 1 {
		// An OPT record: root owner, type 41, class = UDP size, TTL =
		// extended rcode, version, flags; options are ignored.
		if len(rest) < 11 || rest[0] != 0 || binary.BigEndian.Uint16(rest[1:]) != dns.TypeOPT ||
			rest[6] != 0 || len(rest) != 11+int(binary.BigEndian.Uint16(rest[9:])) {
			return q, false
		}
		q.edns = true
		q.udp = binary.BigEndian.Uint16(rest[3:])
		q.do = rest[7]&0x80 != 0
	} else if len(rest) != 0 {
		return q, false
	}
	return q, true
}

// fastRespond answers a plain UDP or TCP query from the zone templates
// without building a message, with the answer's class for the rate limit.
// ok is false when the query needs the slow path (errors, EDNS versions,
// meta types, unusual names).
func (z *Zones) fastRespond(q *wireQuery, udp bool) ([]byte, class, bool) {
	switch {
	case q.qclass != dns.ClassINET && q.qclass != dns.ClassANY,
		q.qtype == dns.TypeAXFR, q.qtype == dns.TypeIXFR, q.qtype == dns.TypeOPT:
		return nil, class{}, false
	}
	out, c := z.respond(&q.query, q.key, udp)
	return out, c, true
}
