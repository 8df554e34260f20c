package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/dnsserver"
)

// DNS transport limits. A query is a few dozen octets; a resolver that
// keeps a TCP connection open pipelines its queries on it. The TCP
// connection limits and idle timeout are configured (dns.tcp, applied by
// dnsserver.TCPGuard).
const (
	// DNSReadTimeout is how long a new TCP connection may take to send
	// its first query (at most the idle timeout).
	DNSReadTimeout  = 2 * time.Second
	DNSWriteTimeout = 2 * time.Second
	// DNSUDPBuffer is the largest UDP query read; larger ones are cut
	// and then fail to parse (FORMERR).
	DNSUDPBuffer = 4096
	// DNSUDPSocketBuffer is the receive buffer asked for the UDP socket
	// (the kernel caps it at net.core.rmem_max): the default of about
	// 200 KB holds only a few hundred queries, which a burst fills
	// while the workers are not scheduled, and the kernel then drops
	// queries before the server or its rate limit sees them.
	DNSUDPSocketBuffer = 4 << 20
)

// dnsListeners are the UDP and TCP sockets of the DNS server, on the same
// port.
type dnsListeners struct {
	udp     net.PacketConn
	tcp     net.Listener
	servers []*dns.Server
}

// listenDNS opens UDP and TCP on opts.DNSAddr. With port 0 the TCP socket
// takes the port the kernel chose for UDP, retrying when it is taken.
func (s *Server) listenDNS() error {
	if s.opts.DNSAddr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s.opts.DNSAddr)
	if err != nil {
		return fmt.Errorf("DNS listen address %q: %w", s.opts.DNSAddr, err)
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", s.opts.DNSAddr)
		if err != nil {
			return fmt.Errorf("listening for DNS on udp %s: %w", s.opts.DNSAddr, err)
		}
		if uc, ok := pc.(*net.UDPConn); ok {
			if err := uc.SetReadBuffer(DNSUDPSocketBuffer); err != nil {
				s.log.Warn("setting the DNS UDP receive buffer", "err", err)
			}
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			pc.Close()
			lastErr = err
			if port == "0" {
				continue
			}
			break
		}
		s.dns = &dnsListeners{udp: pc, tcp: ln}
		return nil
	}
	return fmt.Errorf("listening for DNS on tcp %s: %w", s.opts.DNSAddr, lastErr)
}

// DNSAddr is the DNS server's UDP address (TCP is on the same port), nil
// without DNS.
func (s *Server) DNSAddr() net.Addr {
	if s.dns == nil {
		return nil
	}
	return s.dns.udp.LocalAddr()
}

// startDNS serves DNS on the open sockets. The returned channel reports a
// server that stopped by itself.
func (s *Server) startDNS() <-chan error {
	errc := make(chan error, 2)
	if s.dns == nil {
		return errc
	}
	zones := func() *dnsserver.Zones { return s.State().DNS }
	h := dnsserver.NewHandler(zones, s.log)
	h.Observe(s.observeDNS())
	guard := dnsserver.NewTCPGuard(zones, s.log)
	servers := []*dns.Server{
		// MaxTCPQueries -1: a resolver may send any number of queries
		// on one connection (RFC 7766); the library's default closes
		// it after 128.
		{Listener: guard.Listener(s.dns.tcp), Net: "tcp", MaxTCPQueries: -1,
			IdleTimeout: guard.IdleTimeout, DecorateReader: guard.DecorateReader},
	}
	if uc, ok := s.dns.udp.(*net.UDPConn); ok {
		go func() {
			if err := h.ServeUDP(uc, udpWorkers()); err != nil {
				errc <- fmt.Errorf("serving DNS over udp: %w", err)
			}
		}()
	} else {
		servers = append(servers, &dns.Server{PacketConn: s.dns.udp, Net: "udp", UDPSize: DNSUDPBuffer})
	}
	for _, srv := range servers {
		srv.Handler = h
		srv.DecorateWriter = clearRA
		srv.ReadTimeout = DNSReadTimeout
		srv.WriteTimeout = DNSWriteTimeout
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		s.dns.servers = append(s.dns.servers, srv)
		failed := make(chan struct{})
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				errc <- fmt.Errorf("serving DNS over %s: %w", srv.Net, err)
			}
			close(failed)
		}()
		// Wait until it runs, so that a quick shutdown finds it started.
		select {
		case <-started:
		case <-failed:
		}
	}
	s.log.Info("listening", "dns", s.dns.udp.LocalAddr().String())
	return errc
}

// stopDNS stops the DNS servers.
func (s *Server) stopDNS(ctx context.Context) error {
	if s.dns == nil {
		return nil
	}
	var errs []error
	if err := s.dns.udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("stopping DNS over udp: %w", err))
	}
	for _, srv := range s.dns.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping DNS over %s: %w", srv.Net, err))
		}
	}
	return errors.Join(errs...)
}

// dnsTypeLabels are the query types counted by name; the rest are "other",
// so that a scan over all 65536 types cannot create as many time series.
var dnsTypeLabels = map[uint16]bool{
	dns.TypeA: true, dns.TypeAAAA: true, dns.TypeSRV: true, dns.TypeSOA: true, dns.TypeNS: true,
	dns.TypeCNAME: true, dns.TypeANY: true, dns.TypeTXT: true, dns.TypeMX: true, dns.TypeHTTPS: true,
	dns.TypeDS: true, dns.TypeDNSKEY: true, dns.TypeAXFR: true, dns.TypeIXFR: true,
}

// observeDNS counts answers in the metrics by query type and rcode. The
// counters are looked up once per label pair: the answer path is hot.
func (s *Server) observeDNS() func(qtype uint16, rcode int) {
	var cache sync.Map // uint32 -> interface{ Inc() }
	return func(qtype uint16, rcode int) {
		if !dnsTypeLabels[qtype] {
			qtype = 0
		}
		key := uint32(qtype)<<8 | uint32(rcode&0xFF)
		c, ok := cache.Load(key)
		if !ok {
			name := "other"
			if qtype != 0 {
				name = dns.TypeToString[qtype]
			}
			rc, ok := dns.RcodeToString[rcode]
			if !ok {
				rc = "other"
			}
			c, _ = cache.LoadOrStore(key, s.metrics.DNSQueries.WithLabelValues(name, rc))
		}
		c.(interface{ Inc() }).Inc()
	}
}

// clearRA wraps a DNS writer so that no message leaves with the RA
// (recursion available) flag. The handler never sets it, but the DNS
// library answers some malformed queries itself (bad section counts, other
// opcodes) with a copy of the query's header flags, RA included; an
// authoritative-only server must never claim recursion.
func clearRA(w dns.Writer) dns.Writer { return raClearing{w} }

type raClearing struct{ dns.Writer }

func (w raClearing) Write(b []byte) (int, error) {
	// Only touch the byte when the flag is set: the handler's answers are
	// often shared pre-built packets, which must not be written to.
	if len(b) >= 4 && b[3]&0x80 != 0 {
		c := append([]byte(nil), b...)
		c[3] &^= 0x80
		return w.Writer.Write(c)
	}
	return w.Writer.Write(b)
}

// udpWorkers is how many goroutines answer on the UDP socket: half the
// CPUs, at least one. Reads of one socket are serialised by Go's poller
// (one reader at a time), so more workers only overlap answering with the
// next read, and every answer also costs the kernel about as much again
// (its UDP send, on the sending CPU). Measured with dnsperf on 2 CPUs
// (bench/dns/run): one worker answered 139–141k queries per second with
// 0.82 CPUs, two 124–127k with 0.95 CPUs.
func udpWorkers() int { return max(1, runtime.GOMAXPROCS(0)/2) }
