// Package limit is the hub's flow control: per-participant and
// per-authorisation token-bucket rate limits and concurrency limits, and a
// global cap on exchanges in flight that sheds load before the hub falls
// over.
//
// The exchange pipeline calls, on every exchange:
//
//	Enter()                              before anything else: the global in-flight cap (503 overloaded)
//	Acquire(participant, "", nil)        once the requester is authenticated: the participant's limits (429)
//	Acquire(participant, authID, &lim)   once an authorisation with Limits has allowed it (429)
//
// and calls each release function when the exchange is over. Participant
// limits are the configured default, or the participant's own override;
// they bound all of a participant's traffic, refused requests included.
// An authorisation's Limits bound, in addition, the traffic under that
// authorisation. A Limiter is safe for concurrent use; a nil *Limiter
// allows everything.
//
// Memory is bounded: at most MaxEntries limiters are kept; when full, the
// idle ones (no exchange in flight) that were used least recently are
// dropped. Participants are authenticated by certificate, so the key space
// is small in practice; the bound is a backstop.
package limit

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/crossroads-hub/crossroads"
)

// Defaults.
const (
	DefaultMaxEntries = 10_000
	// OverloadRetryAfter is what Enter suggests to shed clients, and what a
	// concurrency refusal suggests (when a slot frees is unknown).
	OverloadRetryAfter = time.Second
	shards             = 16
)

// Config configures a Limiter. Zero values mean no limit.
type Config struct {
	// Default bounds each participant that has no override.
	Default crossroads.Limits
	// Participants overrides Default for some participants.
	Participants map[string]crossroads.Limits
	// MaxInFlight caps the exchanges in flight across the hub.
	MaxInFlight int
	// MaxEntries bounds the number of limiters kept (default
	// DefaultMaxEntries).
	MaxEntries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter enforces limits. Use New.
type Limiter struct {
	now         func() time.Time
	maxPerShard int
	def         atomic.Pointer[crossroads.Limits]
	overrides   atomic.Pointer[map[string]crossroads.Limits]
	maxInFlight atomic.Int64
	inFlight    atomic.Int64
	leave       func()
	shards      [shards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[key]*entry
}

// key names a participant (kind 'p') or an authorisation (kind 'a').
type key struct {
	kind byte
	id   string
}

// entry is the state of one participant or authorisation.
type entry struct {
	lim      atomic.Pointer[crossroads.Limits] // what rl and the cap were last set to
	rl       atomic.Pointer[rate.Limiter]
	inFlight atomic.Int64
	lastUsed atomic.Int64 // unix nanoseconds
	release  func()       // made once, so Acquire does not allocate
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{now: cfg.Now, maxPerShard: max(1, (cfg.MaxEntries+shards-1)/shards)}
	for i := range l.shards {
		l.shards[i].m = make(map[key]*entry)
	}
	l.leave = func() { l.inFlight.Add(-1) }
	l.Configure(cfg.Default, cfg.Participants, cfg.MaxInFlight)
	return l
}

// Configure replaces the participant limits and the global cap at run time;
// exchanges in flight keep their slots.
func (l *Limiter) Configure(def crossroads.Limits, participants map[string]crossroads.Limits, maxInFlight int) {
	l.def.Store(&def)
	m := make(map[string]crossroads.Limits, len(participants))
	for k, v := range participants {
		m[k] = v
	}
	l.overrides.Store(&m)
	l.maxInFlight.Store(int64(max(0, maxInFlight)))
}

func noop() {}

// Enter takes a slot of the global in-flight cap. When the hub is full it
// returns ok false and how long the client should wait; otherwise the
// caller must call release once the exchange is over.
func (l *Limiter) Enter() (release func(), retryAfter time.Duration, ok bool) {
	if l == nil {
		return noop, 0, true
	}
	// Counted even without a cap, so that a cap set at run time sees the
	// exchanges already in flight.
	n := l.inFlight.Add(1)
	if max := l.maxInFlight.Load(); max > 0 && n > max {
		l.inFlight.Add(-1)
		return nil, OverloadRetryAfter, false
	}
	return l.leave, 0, true
}

// InFlight returns the number of exchanges holding a global slot.
func (l *Limiter) InFlight() int {
	if l == nil {
		return 0
	}
	return int(l.inFlight.Load())
}

// Acquire admits one exchange of participant. With authorisationID empty
// it applies the participant's limits (lim is ignored); otherwise it
// applies lim to the authorisation (nil lim: no limit). When refused, ok is
// false and retryAfter says when to try again (at least one second is a
// reasonable Retry-After; the value is exact for rate limits). When
// admitted, the caller must call release once the exchange is over.
func (l *Limiter) Acquire(participant, authorisationID string, lim *crossroads.Limits) (release func(), retryAfter time.Duration, ok bool) {
	if l == nil {
		return noop, 0, true
	}
	k := key{'a', authorisationID}
	if authorisationID == "" {
		if o := *l.overrides.Load(); len(o) > 0 {
			if v, found := o[participant]; found {
				lim = &v
			}
		}
		if lim == nil {
			lim = l.def.Load()
		}
		k = key{'p', participant}
	}
	if lim == nil || unlimited(lim) {
		return noop, 0, true
	}
	now := l.now()
	e := l.entry(k, lim, now)
	e.lastUsed.Store(now.UnixNano())
	if cur := e.lim.Load(); *cur != *lim {
		e.set(lim, now)
	}
	if lim.MaxConcurrent > 0 && e.inFlight.Add(1) > int64(lim.MaxConcurrent) {
		e.inFlight.Add(-1)
		return nil, OverloadRetryAfter, false
	} else if lim.MaxConcurrent <= 0 {
		e.inFlight.Add(1)
	}
	if lim.RatePerSecond > 0 {
		r := e.rl.Load().ReserveN(now, 1)
		if !r.OK() {
			e.inFlight.Add(-1)
			return nil, OverloadRetryAfter, false
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			e.inFlight.Add(-1)
			return nil, d, false
		}
	}
	return e.release, 0, true
}

func unlimited(l *crossroads.Limits) bool {
	return l.RatePerSecond <= 0 && l.MaxConcurrent <= 0
}

// entry finds or makes the entry for key.
func (l *Limiter) entry(k key, lim *crossroads.Limits, now time.Time) *entry {
	sh := &l.shards[fnv(k.id)%shards]
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	if e != nil {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.m[k]; e != nil {
		return e
	}
	if len(sh.m) >= l.maxPerShard {
		sh.evict(l.maxPerShard)
	}
	e = &entry{}
	e.release = func() { e.inFlight.Add(-1) }
	e.set(lim, now)
	e.lastUsed.Store(now.UnixNano())
	sh.m[k] = e
	return e
}

// set applies new limits to the entry: a new, full bucket (limits change
// only when the registers or the configuration do).
func (e *entry) set(lim *crossroads.Limits, _ time.Time) {
	c := *lim
	burst := c.Burst
	if burst <= 0 {
		burst = int(math.Max(1, math.Ceil(c.RatePerSecond)))
	}
	r := rate.Inf
	if c.RatePerSecond > 0 {
		r = rate.Limit(c.RatePerSecond)
	}
	e.rl.Store(rate.NewLimiter(r, burst))
	e.lim.Store(&c)
}

// evict drops idle entries, least recently used first, until the shard
// has room for about an eighth more. Entries with exchanges in flight stay
// (their release functions point at them), so a shard may overflow while
// all its entries are busy. Called with sh.mu held.
func (sh *shard) evict(maxEntries int) {
	target := maxEntries - max(1, maxEntries/8)
	if len(sh.m) <= target {
		return
	}
	type cand struct {
		k    key
		used int64
	}
	idle := make([]cand, 0, len(sh.m))
	for k, e := range sh.m {
		if e.inFlight.Load() == 0 {
			idle = append(idle, cand{k, e.lastUsed.Load()})
		}
	}
	slices.SortFunc(idle, func(a, b cand) int { return cmp.Compare(a.used, b.used) })
	for _, c := range idle[:min(len(idle), len(sh.m)-target)] {
		delete(sh.m, c.k)
	}
}

// Len returns the number of limiters kept.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// RetryAfterSeconds renders d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}
