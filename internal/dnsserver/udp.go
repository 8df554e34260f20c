package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ServeUDP answers queries on a UDP socket with a few goroutines that each
// read, answer and write in a loop. It replaces the library's UDP server on
// the hot path: that one starts a goroutine per packet, which costs about a
// third of the throughput. Parsing and the accept rules
// (dns.DefaultMsgAcceptFunc) are the library's. It returns when the socket
// is closed.
//
// On a wildcard socket (0.0.0.0, [::] or ":53", as containers listen) each
// answer must leave from the address its query was sent to: a resolver
// drops an answer from any other address, and on a host with several
// addresses the kernel would pick one by route. The destination of each
// query is read from the IP_PKTINFO / IPV6_PKTINFO control message and set
// as the source of its answer, as the library's server does.
func (h *Handler) ServeUDP(pc *net.UDPConn, workers int) error {
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- h.udpLoop(pc)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

// udpBatch is how many datagrams one system call reads or writes
// (recvmmsg/sendmmsg on Linux). Under load the socket queue holds many
// queries, and one call per datagram would cost more than answering it.
const udpBatch = 32

// batchConn is the batch interface of x/net's ipv4 and ipv6 PacketConns.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (h *Handler) udpLoop(pc *net.UDPConn) error {
	var bc batchConn
	if pc.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		bc = ipv4.NewPacketConn(pc)
	} else {
		bc = ipv6.NewPacketConn(pc)
	}
	wild := pc.LocalAddr().(*net.UDPAddr).IP.IsUnspecified()
	if wild {
		if err := recvDst(pc); err != nil {
			return err
		}
	}
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		if wild {
			in[i].OOB = make([]byte, oobSize)
		}
	}
	out := make([]ipv4.Message, 0, udpBatch)
	scratch := make([]byte, 0, 256)
	for {
		n, err := bc.ReadBatch(in, 0)
		// One clock reading serves the batch: it is read in well under
		// a millisecond, far less than the rate limit can tell apart.
		now := h.rrl.now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		out = out[:0]
		for _, m := range in[:n] {
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			src, _ := netip.AddrFromSlice(ua.IP)
			if b := h.packet(m.Buffers[0][:m.N], src.Unmap(), scratch, now); b != nil {
				var oob []byte
				if wild {
					oob = replySource(m.OOB[:m.NN])
				}
				out = append(out, ipv4.Message{Buffers: [][]byte{b}, Addr: ua, OOB: oob})
				h.count(b)
			}
		}
		for sent := 0; sent < len(out); {
			k, err := bc.WriteBatch(out[sent:], 0)
			if err != nil {
				h.log.Debug("writing DNS answers", "err", err)
				break
			}
			sent += k
		}
	}
}

// oobSize holds an IPv4 or an IPv6 packet-information control message.
var oobSize = max(len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
	len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)))

// recvDst asks the kernel for the destination address of every datagram.
// An IPv6 socket also receives IPv4 (dual stack): it gets both options,
// and the IPv4 one may fail on an IPv6-only socket.
func recvDst(pc *net.UDPConn) error {
	if pc.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		if err := ipv4.NewPacketConn(pc).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return fmt.Errorf("asking for the destination of UDP queries: %w", err)
		}
		return nil
	}
	if err := ipv6.NewPacketConn(pc).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("asking for the destination of UDP queries: %w", err)
	}
	_ = ipv4.NewPacketConn(pc).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	return nil
}

// replySource turns the control message of a query into the one that
// makes its answer leave from the address the query was sent to; nil when
// the query's destination is unknown (the kernel then chooses).
func replySource(oob []byte) []byte {
	var dst net.IP
	var cm6 ipv6.ControlMessage
	var cm4 ipv4.ControlMessage
	switch {
	case cm6.Parse(oob) == nil && cm6.Dst != nil:
		dst = cm6.Dst
	case cm4.Parse(oob) == nil && cm4.Dst != nil:
		dst = cm4.Dst
	default:
		return nil
	}
	// An IPv4 destination takes the IPv4 message, also on a dual-stack
	// socket: the IPv6 one cannot carry an IPv4 source.
	if dst.To4() != nil {
		return (&ipv4.ControlMessage{Src: dst.To4()}).Marshal()
	}
	return (&ipv6.ControlMessage{Src: dst}).Marshal()
}

// packet answers one UDP datagram from src at time now (the rate
// limiter's clock); nil means no answer. scratch is a buffer of at least
// 256 octets for the lower-cased name.
//
// The answer is built first and then rate limited, as NSD, Knot and BIND
// do: its bucket depends on what it says (a positive answer, a denial of
// existence, an error), not only on who asked.
func (h *Handler) packet(b []byte, src netip.Addr, scratch []byte, now int64) (out []byte) {
	if len(b) < 12 {
		return nil // not even a header: nobody to answer
	}
	dh := dns.Header{
		Id:      binary.BigEndian.Uint16(b[0:]),
		Bits:    binary.BigEndian.Uint16(b[2:]),
		Qdcount: binary.BigEndian.Uint16(b[4:]),
		Ancount: binary.BigEndian.Uint16(b[6:]),
		Nscount: binary.BigEndian.Uint16(b[8:]),
		Arcount: binary.BigEndian.Uint16(b[10:]),
	}
	z := h.current()
	action := dns.DefaultMsgAcceptFunc(dh)
	if action == dns.MsgIgnore {
		return nil // a response: answering could start a loop
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("panic answering a DNS query", "panic", p)
			out = h.limit(&z.rrl, src, errorClass, headerOnly(b, dns.RcodeServerFailure), now)
		}
	}()
	var c class
	switch action {
	case dns.MsgReject:
		out, c = headerOnly(b, dns.RcodeFormatError), errorClass
	case dns.MsgRejectNotImplemented:
		out, c = headerOnly(b, dns.RcodeNotImplemented), errorClass
	default:
		out, c = h.answer(z, b, scratch)
	}
	if !z.rrl.on {
		return out
	}
	return h.limit(&z.rrl, src, c, out, now)
}

// answer answers an accepted query: from the wire when it is plain, by
// full parsing otherwise.
func (h *Handler) answer(z *Zones, b, scratch []byte) ([]byte, class) {
	if q, ok := parseWire(b, scratch[:0]); ok {
		if out, c, ok := z.fastRespond(&q, true); ok {
			return out, c
		}
	}
	var r dns.Msg
	if err := r.Unpack(b); err != nil {
		return headerOnly(b, dns.RcodeFormatError), errorClass
	}
	return z.respondMsg(&r, true, scratch[:0])
}

// headerOnly answers with just a header: the query's ID and opcode, RD
// copied, the rcode. It is smaller than the query, so it cannot amplify.
func headerOnly(q []byte, rcode int) []byte {
	out := make([]byte, 12)
	copy(out, q[:2])
	out[2] = 0x80 | q[2]&0x79 // QR, opcode, RD
	out[3] = byte(rcode & 0xF)
	return out
}
