package dnsserver

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// MaxUDPSize is the largest UDP answer sent, whatever the client's EDNS
// buffer: 1232 octets fit in the IPv6 minimum MTU without fragmentation
// (DNS flag day 2020), and a small ceiling keeps reflected answers small.
const MaxUDPSize = 1232

// Handler answers DNS queries from the zones of the configuration in force.
type Handler struct {
	current func() *Zones
	log     *slog.Logger
	observe func(qtype uint16, rcode int)
	// rrl holds the response-rate buckets; the settings come with the
	// zones, so a reload changes them without forgetting who is limited.
	rrl *limiter
}

// Observe sets a function called with the query type and response code of
// every answer sent, for metrics. Call it before serving.
func (h *Handler) Observe(fn func(qtype uint16, rcode int)) { h.observe = fn }

// count reports an answer to the observer, reading the question back from
// the answer (uncompressed, as every answer here writes it).
func (h *Handler) count(b []byte) {
	if h.observe == nil || len(b) < 12 {
		return
	}
	var qtype uint16
	if binary.BigEndian.Uint16(b[4:]) == 1 {
		off := 12
		for off < len(b) && b[off] != 0 && b[off] < 64 {
			off += int(b[off]) + 1
		}
		if off+3 <= len(b) {
			qtype = binary.BigEndian.Uint16(b[off+1:])
		}
	}
	h.observe(qtype, int(b[3]&0xF))
}

// NewHandler returns a handler; current returns the zones in force, so a
// reload never mixes two configurations within one answer.
func NewHandler(current func() *Zones, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{current: current, log: log, rrl: newLimiter()}
}

// ServeDNS implements dns.Handler. It never recurses: names outside the
// zones get REFUSED and the RA flag is never set.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("panic answering a DNS query", "panic", fmt.Sprint(p))
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	z := h.current()
	ua, udp := w.RemoteAddr().(*net.UDPAddr)
	if !udp || !z.rrl.on {
		h.write(w, z.Respond(r, udp))
		return
	}
	var kbuf [256]byte
	out, c := z.respondMsg(r, true, kbuf[:0])
	src, _ := netip.AddrFromSlice(ua.IP)
	h.write(w, h.limit(&z.rrl, src, c, out, h.rrl.now()))
}

func (h *Handler) write(w dns.ResponseWriter, b []byte) {
	if b == nil {
		return
	}
	if _, err := w.Write(b); err != nil {
		h.log.Debug("writing a DNS answer", "remote", w.RemoteAddr().String(), "err", err)
		return
	}
	h.count(b)
}

// Respond builds the wire-format answer to a query. udp selects the size
// limits of UDP (512 octets without EDNS, the client's buffer up to
// MaxUDPSize with it); over TCP the full answer is always sent.
func (z *Zones) Respond(r *dns.Msg, udp bool) []byte {
	var kbuf [256]byte
	out, _ := z.respondMsg(r, udp, kbuf[:0])
	return out
}

// respondMsg is Respond with the answer's class for the rate limit; kbuf
// (capacity 256) holds the class's name.
func (z *Zones) respondMsg(r *dns.Msg, udp bool, kbuf []byte) ([]byte, class) {
	if r.Opcode != dns.OpcodeQuery {
		return small(r, dns.RcodeNotImplemented, false), errorClass
	}
	if len(r.Question) != 1 {
		return small(r, dns.RcodeFormatError, false), errorClass
	}
	if optCount(r.Extra) > 1 {
		// RFC 6891 section 6.1.1: more than one OPT is a format error;
		// the parser would otherwise let the first one win silently.
		return small(r, dns.RcodeFormatError, false), errorClass
	}
	opt := r.IsEdns0()
	if opt != nil && opt.Version() != 0 {
		return small(r, dns.RcodeBadVers, false), errorClass // RFC 6891 section 6.1.3
	}
	q := r.Question[0]
	switch {
	case q.Qtype == dns.TypeOPT:
		return small(r, dns.RcodeFormatError, false), errorClass
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		return small(r, dns.RcodeRefused, false), errorClass
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		// The zones come from the configuration; whoever needs them
		// exports them with `mailautoconf records`, not by transfer.
		return small(r, dns.RcodeRefused, false), errorClass
	}
	var wbuf [256]byte
	wire, key, ok := plainName(q.Name, wbuf[:0], kbuf)
	if !ok {
		b := make([]byte, 256)
		n, err := dns.PackDomainName(q.Name, b, 0, nil, false)
		if err != nil {
			return small(r, dns.RcodeRefused, false), errorClass
		}
		wire = b[:n]
		key = wireKey(wire)
	}
	qq := query{id: r.Id, qname: wire, qtype: q.Qtype, qclass: q.Qclass}
	if r.RecursionDesired {
		qq.flags |= 0x0100
	}
	if r.CheckingDisabled {
		qq.flags |= 0x0010
	}
	if opt != nil {
		qq.edns, qq.do, qq.udp = true, opt.Do(), opt.UDPSize()
	}
	return z.respond(&qq, key, udp)
}

// plainName converts a name without escapes to wire form (case kept) and
// to its lower-case key, appending to wire and key; ok is false for
// anything else, which dns.PackDomainName then handles.
func plainName(s string, wire, key []byte) ([]byte, []byte, bool) {
	if s == "." {
		return append(wire, 0), append(key, '.'), true
	}
	if len(s) > 254 || len(s) < 2 || s[len(s)-1] != '.' {
		return nil, nil, false
	}
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			return nil, nil, false
		case c == '.':
			if i == start || i-start > 63 {
				return nil, nil, false
			}
			wire = append(wire, byte(i-start))
			wire = append(wire, s[start:i]...)
			key = append(key, '.')
			start = i + 1
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		key = append(key, c)
	}
	return append(wire, 0), key, true
}

// wireKey is the lower-case presentation form of a wire-form name, with its
// labels at the same offsets. A dot inside a label becomes 0xFF so that it
// cannot split the label: no configured name contains either.
func wireKey(name []byte) []byte {
	key := make([]byte, 0, len(name))
	for off := 0; off < len(name) && name[off] != 0; {
		l := int(name[off])
		for _, c := range name[off+1 : min(off+1+l, len(name))] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c == '.':
				c = 0xFF
			}
			key = append(key, c)
		}
		key = append(key, '.')
		off += 1 + l
	}
	if len(key) == 0 {
		key = append(key, '.')
	}
	return key
}

// udpLimit is the largest UDP answer for a query (RFC 6891 section 6.2.5):
// 512 octets without EDNS, else the size the client advertises, at least
// 512 and at most MaxUDPSize.
func udpLimit(edns bool, size uint16) int {
	if !edns {
		return dns.MinMsgSize
	}
	return min(max(int(size), dns.MinMsgSize), MaxUDPSize)
}

// appendOPT adds our OPT record (RFC 6891): the buffer we accept, and the DO
// bit copied from the query (RFC 3225 section 3).
func appendOPT(b []byte, do bool) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	b = append(b, 0, 0, byte(dns.TypeOPT), byte(MaxUDPSize>>8), byte(MaxUDPSize&0xff), 0, 0, flags, 0, 0, 0)
	binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	return b
}

// small builds an answer without records (errors, REFUSED), echoing the
// question and EDNS.
func small(r *dns.Msg, rcode int, aa bool) []byte {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.Authoritative = aa
	m.Question = clipQuestion(r.Question)
	return finish(m, r.IsEdns0())
}

func clipQuestion(q []dns.Question) []dns.Question {
	if len(q) > 1 {
		return q[:1]
	}
	return q
}

// finish adds EDNS and packs. Its answers carry no records, so they fit
// in any UDP answer.
func finish(m *dns.Msg, opt *dns.OPT) []byte {
	if opt != nil || m.Rcode > 0xF {
		do := opt != nil && opt.Do()
		m.SetEdns0(MaxUDPSize, do)
	}
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// optCount counts the OPT pseudo-records among rrs.
func optCount(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}
