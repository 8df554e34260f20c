package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// wireQuery is a plain query read straight from the wire: one question and
// at most an OPT record. Anything else goes through the library's parser.
type wireQuery struct {
	qname         []byte // the name as sent (its case is echoed)
	key           []byte // lower-case presentation form, "a.example.com."
	qtype, qclass uint16
	end           int // end of the question section
	edns, do      bool
	udpSize       uint16
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
	q.qname = b[12:off]
	q.key = key
	q.qtype = binary.BigEndian.Uint16(b[off:])
	q.qclass = binary.BigEndian.Uint16(b[off+2:])
	q.end = off + 4
	rest := b[q.end:]
	if binary.BigEndian.Uint16(b[10:]) == 1 {
		// An OPT record: root owner, type 41, class = UDP size, TTL =
		// extended rcode, version, flags; options are ignored.
		if len(rest) < 11 || rest[0] != 0 || binary.BigEndian.Uint16(rest[1:]) != dns.TypeOPT ||
			rest[6] != 0 || len(rest) != 11+int(binary.BigEndian.Uint16(rest[9:])) {
			return q, false
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(rest[3:])
		q.do = rest[7]&0x80 != 0
	} else if len(rest) != 0 {
		return q, false
	}
	return q, true
}

// fastRespond answers a plain UDP or TCP query from the pre-packed data
// without building a message. ok is false when the query needs the slow
// path (errors, EDNS versions, meta types, unusual names).
func (z *Zones) fastRespond(b []byte, q *wireQuery, udp bool) ([]byte, bool) {
	switch {
	case q.qclass != dns.ClassINET && q.qclass != dns.ClassANY,
		q.qtype == dns.TypeAXFR, q.qtype == dns.TypeIXFR, q.qtype == dns.TypeOPT:
		return nil, false
	}
	var out []byte
	if n, ok := z.names[string(q.key)]; ok {
		tpl := n.nodata
		if q.qtype == dns.TypeANY {
			tpl = n.any
		} else if a, ok := n.answer[q.qtype]; ok {
			tpl = a
		}
		if len(tpl) < 12+len(q.qname)+4 {
			return nil, false
		}
		out = make([]byte, len(tpl), len(tpl)+11)
		copy(out, tpl)
		copy(out[12:], q.qname)
	} else {
		zone, off := z.zoneOfKey(q.key)
		if zone == nil {
			// REFUSED: the header and the question, nothing else.
			out = make([]byte, q.end, q.end+11)
			copy(out, b[:q.end])
			out[2] = 0x80 | b[2]&0x01
			out[3] = dns.RcodeRefused | b[3]&0x10
			clear(out[6:12])
			return withOPT(out, q, q.end, udp), true
		}
		// NXDOMAIN with the zone's SOA, its owner a pointer to the
		// zone's name inside the question (the key and the wire form
		// have their labels at the same offsets).
		out = make([]byte, q.end, q.end+2+len(zone.soaTail)+11)
		copy(out, b[:q.end])
		out[2] = 0x84 | b[2]&0x01 // QR, AA, RD copied
		out[3] = dns.RcodeNameError | b[3]&0x10
		clear(out[6:12])
		out[9] = 1 // NSCOUNT
		ptr := 12 + off
		out = append(out, 0xC0|byte(ptr>>8), byte(ptr))
		out = append(out, zone.soaTail...)
		return withOPT(out, q, q.end, udp), true
	}
	// Patch ID, RD, CD, question type and class into the template.
	copy(out[0:2], b[0:2])
	out[2] |= b[2] & 0x01
	out[3] |= b[3] & 0x10
	qe := 12 + len(q.qname)
	binary.BigEndian.PutUint16(out[qe:], q.qtype)
	binary.BigEndian.PutUint16(out[qe+2:], q.qclass)
	return withOPT(out, q, qe+4, udp), true
}

// withOPT truncates for UDP when needed and adds the OPT record.
func withOPT(out []byte, q *wireQuery, qEnd int, udp bool) []byte {
	if udp {
		limit := dns.MinMsgSize
		if q.edns {
			limit = min(max(int(q.udpSize), dns.MinMsgSize), MaxUDPSize)
		}
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

// zoneOfKey finds the closest enclosing zone of a lower-case name and the
// offset of the zone's name within it.
func (z *Zones) zoneOfKey(key []byte) (*Zone, int) {
	for off := 0; off < len(key); {
		if zone, ok := z.apexes[string(key[off:])]; ok {
			return zone, off
		}
		i := off
		for i < len(key) && key[i] != '.' {
			i++
		}
		off = i + 1
	}
	return nil, 0
}
