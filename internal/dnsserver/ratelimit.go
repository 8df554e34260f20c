package dnsserver

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"mailautoconf/internal/config"
)

// Response-rate limit defaults (dns.rate_limit), those of NSD's RRL
// (rrl-ratelimit 200, rrl-slip 2, rrl-ipv4-prefix-length 24). IPv6 sources
// are grouped by /56, what a provider usually gives one customer: a /64
// would let one customer's network count as 256. The burst defaults to one
// second's worth of responses.
const (
	DefaultRate       = 200
	DefaultSlip       = 2
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 56
)

// rrlSets is the number of sets of the bucket table; each set holds
// rrlWays buckets, so the table holds 65,536 buckets in about 1.2 MB,
// whatever the traffic. That is plenty: a bucket matters only while it
// has not refilled, which for a bucket that got n responses lasts n/rate
// seconds. Light traffic, even a flood from spoofed random sources, leaves
// its buckets idle within milliseconds (one response at 200/s: 5 ms), and
// only heavy buckets, those being limited, last a second.
const (
	rrlSets = 1 << 14
	rrlWays = 4
)

// verdict is what the rate limit says about one UDP response.
type verdict int

const (
	allow verdict = iota
	slip          // send the answer truncated: TC=1, no records
	drop          // send nothing
)

// Response classes, as NSD, Knot and BIND tell them apart: a bucket is
// per source network and class, so that a resolver asking many different
// names is not limited like one asking the same name again and again.
const (
	// classAnswer is a positive answer, limited per name and type.
	classAnswer uint8 = iota + 1
	// classNXDomain and classNoData are limited per zone: a flood of
	// random sub-domains ("random subdomain attack", "water torture")
	// shares one bucket however many names it invents.
	classNXDomain
	classNoData
	// classError (REFUSED, FORMERR, NOTIMP, BADVERS...) is limited per
	// source network only.
	classError
)

// class is what the bucket of a response depends on besides the source.
type class struct {
	kind  uint8
	qtype uint16 // classAnswer only
	// name is the lower-case name in presentation form: the question
	// (classAnswer) or the zone apex (classNXDomain, classNoData).
	name []byte
}

var errorClass = class{kind: classError}

// rrlSettings is dns.rate_limit with the defaults filled in; the zero
// value is off.
type rrlSettings struct {
	on bool
	// interval is the time one response costs and window the credit
	// of a quiet bucket (burst × interval), in nanoseconds.
	interval, window int64
	slip             uint32
	v4, v6           int
	exempt           []netip.Prefix
}

// newRRLSettings fills in the defaults of a validated dns.rate_limit.
func newRRLSettings(rl config.RateLimit) rrlSettings {
	rate := DefaultRate
	if rl.ResponsesPerSecond != nil {
		rate = *rl.ResponsesPerSecond
	}
	if rate <= 0 {
		return rrlSettings{}
	}
	burst := rl.Burst
	if burst <= 0 {
		burst = rate
	}
	s := rrlSettings{
		on:       true,
		interval: int64(time.Second) / int64(rate),
		slip:     DefaultSlip,
		v4:       DefaultIPv4Prefix,
		v6:       DefaultIPv6Prefix,
	}
	s.window = int64(burst) * s.interval
	if rl.Slip != nil {
		s.slip = uint32(*rl.Slip)
	}
	if rl.IPv4Prefix != 0 {
		s.v4 = rl.IPv4Prefix
	}
	if rl.IPv6Prefix != 0 {
		s.v6 = rl.IPv6Prefix
	}
	for _, e := range rl.Exempt {
		if p, err := config.ParsePrefix(e); err == nil {
			s.exempt = append(s.exempt, p)
		}
	}
	return s
}

// limiter is the table of response-rate buckets. It belongs to the
// handler, not to a configuration: a reload changes the settings the
// buckets are checked against, and a source being limited stays limited.
//
// Each bucket is a GCRA (generic cell rate algorithm) token bucket: one
// number, the time at which it will be full again (tat); a response is
// allowed when, after adding its interval, the bucket is not more than
// the window ahead of now. The table is a fixed array of small sets
// (set-associative, like a CPU cache): a bucket is found by a keyed hash
// of its source network and class, and a new bucket replaces the one of
// its set that is closest to full, so the buckets being limited are the
// last to go and memory never grows.
type limiter struct {
	seed  maphash.Seed
	epoch time.Time
	once  sync.Once
	sets  []rrlSet
}

type rrlSet struct {
	mu sync.Mutex
	b  [rrlWays]rrlBucket
}

type rrlBucket struct {
	// tag is the upper half of the key's hash, never 0 (0 is empty).
	tag uint32
	// over counts the responses limited so far, for the slip: it is
	// not reset when a response is allowed, so that a resolver just
	// above the limit gets every slip-th of its limited answers
	// truncated rather than none.
	over uint32
	// tat is when the bucket is full again, in nanoseconds since the
	// epoch.
	tat int64
}

func newLimiter() *limiter {
	return &limiter{seed: maphash.MakeSeed(), epoch: time.Now()}
}

// now is the limiter's clock: nanoseconds since its creation, never 0
// (monotonic, so that a change of the wall clock changes nothing).
func (l *limiter) now() int64 { return int64(time.Since(l.epoch)) + 1 }

// check counts one response of class c to src at time now.
func (l *limiter) check(s *rrlSettings, src netip.Addr, c class, now int64) verdict {
	src = src.Unmap()
	for _, p := range s.exempt {
		if p.Contains(src) {
			return allow
		}
	}
	bits := s.v6
	if src.Is4() {
		bits = s.v4
	}
	pfx, err := src.Prefix(bits)
	if err != nil {
		return allow // no address: nobody to reflect to
	}
	// The key: the network, its length, the class and the name. A
	// collision only makes two keys share a bucket, and the keyed hash
	// keeps an attacker from aiming one at another's.
	var buf [16 + 4 + 256]byte
	a := pfx.Addr().As16()
	k := append(buf[:0], a[:]...)
	k = append(k, byte(bits), c.kind, byte(c.qtype>>8), byte(c.qtype))
	k = append(k, c.name...)
	h := maphash.Bytes(l.seed, k)

	l.once.Do(func() { l.sets = make([]rrlSet, rrlSets) })
	set := &l.sets[h&(rrlSets-1)]
	tag := uint32(h>>32) | 1
	set.mu.Lock()
	b, victim := (*rrlBucket)(nil), 0
	for i := range set.b {
		if set.b[i].tag == tag {
			b = &set.b[i]
			break
		}
		if set.b[i].tat < set.b[victim].tat {
			victim = i
		}
	}
	if b == nil {
		b = &set.b[victim]
		*b = rrlBucket{tag: tag, tat: now}
	}
	tat := max(b.tat, now)
	if tat+s.interval-now <= s.window {
		b.tat = tat + s.interval
		set.mu.Unlock()
		return allow
	}
	b.over++
	over := b.over
	set.mu.Unlock()
	if s.slip > 0 && over%s.slip == 0 {
		return slip
	}
	return drop
}

// limit applies the rate limit to the answer out of class c for src: out
// itself, nil (dropped) or out truncated (a slip).
func (h *Handler) limit(s *rrlSettings, src netip.Addr, c class, out []byte, now int64) []byte {
	if !s.on || out == nil {
		return out
	}
	switch h.rrl.check(s, src, c, now) {
	case drop:
		return nil
	case slip:
		return slipped(out)
	}
	return out
}

// slipped turns an answer into its truncated form, in place: the header
// with TC=1 and no records, the question, and the OPT record when the
// answer has one, as NSD sends its slips. It is never larger than the
// query, so a slip does not amplify; a resolver that gets it asks again
// over TCP, which proves its address and is not limited. Every answer
// here writes its question uncompressed and its OPT record, without
// options, last.
func slipped(out []byte) []byte {
	if len(out) < 12 {
		return out
	}
	end := 12
	if out[4] == 0 && out[5] == 1 {
		for end < len(out) && out[end] != 0 && out[end] < 64 {
			end += int(out[end]) + 1
		}
		end += 5
		if end > len(out) {
			return nil
		}
	}
	var opt []byte
	if ar := int(out[10])<<8 | int(out[11]); ar > 0 && len(out) >= end+11 {
		o := out[len(out)-11:]
		if o[0] == 0 && o[1] == 0 && o[2] == 41 && o[9] == 0 && o[10] == 0 {
			opt = o
		}
	}
	out[2] |= 0x02
	clear(out[6:12])
	if opt != nil {
		out[11] = 1
		end += copy(out[end:], opt)
	}
	return out[:end]
}
