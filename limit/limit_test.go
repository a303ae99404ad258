package limit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// clock is a manual clock: no test depends on wall time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestNilAndZeroAllowEverything(t *testing.T) {
	var nl *Limiter
	for range 3 {
		rel, _, ok := nl.Enter()
		if !ok {
			t.Fatal("nil limiter refused Enter")
		}
		rel()
		rel, _, ok = nl.Acquire("x", "", nil)
		if !ok {
			t.Fatal("nil limiter refused Acquire")
		}
		rel()
	}
	l := New(Config{})
	for range 1000 {
		rel, _, ok := l.Acquire("x", "", nil)
		if !ok {
			t.Fatal("zero limits refused")
		}
		rel()
		if rel, _, ok = l.Enter(); !ok {
			t.Fatal("zero cap refused")
		}
		rel()
	}
	if l.Len() != 0 {
		t.Fatalf("unlimited participants should keep no state, have %d", l.Len())
	}
}

func TestRateLimitBurstAndRefill(t *testing.T) {
	c := newClock()
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 2, Burst: 3}, Now: c.now})
	for i := range 3 {
		if _, _, ok := l.Acquire("ocmw", "", nil); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	_, after, ok := l.Acquire("ocmw", "", nil)
	if ok {
		t.Fatal("request past the burst admitted")
	}
	if after <= 0 || after > 500*time.Millisecond {
		t.Fatalf("retry after %v, want (0, 500ms] at 2/s", after)
	}
	if RetryAfterSeconds(after) != 1 {
		t.Fatalf("Retry-After %d", RetryAfterSeconds(after))
	}
	// Another participant has its own bucket.
	if _, _, ok := l.Acquire("onem", "", nil); !ok {
		t.Fatal("another participant was limited")
	}
	c.add(after)
	if _, _, ok := l.Acquire("ocmw", "", nil); !ok {
		t.Fatal("not admitted after the advertised wait")
	}
	if _, _, ok := l.Acquire("ocmw", "", nil); ok {
		t.Fatal("refill gave more than one token")
	}
}

func TestRefusedRequestsDoNotSpendTokens(t *testing.T) {
	c := newClock()
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 1, Burst: 1}, Now: c.now})
	if _, _, ok := l.Acquire("p", "", nil); !ok {
		t.Fatal("first refused")
	}
	for range 100 {
		if _, _, ok := l.Acquire("p", "", nil); ok {
			t.Fatal("admitted past the limit")
		}
	}
	c.add(time.Second)
	if _, _, ok := l.Acquire("p", "", nil); !ok {
		t.Fatal("refusals pushed the next token back")
	}
}

func TestConcurrencyLimit(t *testing.T) {
	l := New(Config{Default: crossroads.Limits{MaxConcurrent: 2}})
	r1, _, ok1 := l.Acquire("p", "", nil)
	r2, _, ok2 := l.Acquire("p", "", nil)
	if !ok1 || !ok2 {
		t.Fatal("within the concurrency limit refused")
	}
	_, after, ok := l.Acquire("p", "", nil)
	if ok || after != OverloadRetryAfter {
		t.Fatalf("third concurrent admitted (%v) or wrong retry %v", ok, after)
	}
	r1()
	r3, _, ok := l.Acquire("p", "", nil)
	if !ok {
		t.Fatal("slot not freed by release")
	}
	r2()
	r3()
}

func TestRateRefusalReleasesConcurrencySlot(t *testing.T) {
	c := newClock()
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 1, Burst: 1, MaxConcurrent: 1}, Now: c.now})
	rel, _, ok := l.Acquire("p", "", nil)
	if !ok {
		t.Fatal("first refused")
	}
	rel()
	if _, _, ok := l.Acquire("p", "", nil); ok {
		t.Fatal("rate not enforced")
	}
	c.add(time.Second)
	if _, _, ok := l.Acquire("p", "", nil); !ok {
		t.Fatal("the rate refusal leaked a concurrency slot")
	}
}

func TestOverridesAndAuthorisationLimits(t *testing.T) {
	c := newClock()
	l := New(Config{
		Default:      crossroads.Limits{RatePerSecond: 1, Burst: 1},
		Participants: map[string]crossroads.Limits{"big": {RatePerSecond: 100, Burst: 10}},
		Now:          c.now,
	})
	for i := range 10 {
		if _, _, ok := l.Acquire("big", "", nil); !ok {
			t.Fatalf("override not applied at %d", i)
		}
	}
	if _, _, ok := l.Acquire("big", "", nil); ok {
		t.Fatal("override burst not enforced")
	}
	// Authorisation limits: their own bucket, keyed by authorisation.
	lim := &crossroads.Limits{RatePerSecond: 1, Burst: 2}
	for range 2 {
		if _, _, ok := l.Acquire("small", "auth-1", lim); !ok {
			t.Fatal("authorisation burst refused")
		}
	}
	if _, _, ok := l.Acquire("small", "auth-1", lim); ok {
		t.Fatal("authorisation limit not enforced")
	}
	if _, _, ok := l.Acquire("small", "auth-2", lim); !ok {
		t.Fatal("another authorisation shares the bucket")
	}
	if _, _, ok := l.Acquire("small", "auth-3", nil); !ok {
		t.Fatal("an authorisation without limits was limited")
	}
	// Raising an authorisation's limits takes effect at once.
	if _, _, ok := l.Acquire("small", "auth-1", &crossroads.Limits{RatePerSecond: 1, Burst: 5}); !ok {
		t.Fatal("raised burst not applied")
	}
}

func TestConfigureAtRunTime(t *testing.T) {
	l := New(Config{})
	if _, _, ok := l.Acquire("p", "", nil); !ok {
		t.Fatal("refused with no limits")
	}
	l.Configure(crossroads.Limits{MaxConcurrent: 1}, nil, 1)
	rel, _, ok := l.Enter()
	if !ok {
		t.Fatal("cap 1: first refused")
	}
	if _, after, ok := l.Enter(); ok || after <= 0 {
		t.Fatal("cap 1: second admitted")
	}
	if l.InFlight() != 1 {
		t.Fatalf("in flight %d", l.InFlight())
	}
	rel()
	if l.InFlight() != 0 {
		t.Fatalf("in flight %d after release", l.InFlight())
	}
	r, _, ok := l.Acquire("p", "", nil)
	if !ok {
		t.Fatal("refused")
	}
	if _, _, ok := l.Acquire("p", "", nil); ok {
		t.Fatal("new default not applied")
	}
	r()
}

func TestMemoryBounded(t *testing.T) {
	c := newClock()
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 10}, MaxEntries: 160, Now: c.now})
	busy, _, ok := l.Acquire("busy", "", nil)
	if !ok {
		t.Fatal("refused")
	}
	for i := range 20_000 {
		c.add(time.Microsecond)
		rel, _, ok := l.Acquire("p"+strconv.Itoa(i), "", nil)
		if !ok {
			t.Fatalf("fresh participant %d refused", i)
		}
		rel()
	}
	if n := l.Len(); n > 160+shards {
		t.Fatalf("%d limiters kept, bound 160", n)
	}
	// The busy entry was not evicted: its slot is still counted.
	l.Configure(crossroads.Limits{MaxConcurrent: 1}, nil, 0)
	if _, _, ok := l.Acquire("busy", "", nil); ok {
		t.Fatal("busy entry evicted while in flight")
	}
	busy()
}

func TestConcurrentUse(t *testing.T) {
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 1e6, Burst: 1000, MaxConcurrent: 8}, MaxInFlight: 16, MaxEntries: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				leave, _, ok := l.Enter()
				if !ok {
					continue
				}
				rel, _, ok := l.Acquire("p"+strconv.Itoa((g*31+i)%100), "", nil)
				if ok {
					rel()
				}
				leave()
			}
		}()
	}
	wg.Wait()
	if l.InFlight() != 0 {
		t.Fatalf("in flight %d after all released", l.InFlight())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 90 * time.Second: 90} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}

// BenchmarkAcquire is the hot path: one participant, limits that admit.
func BenchmarkAcquire(b *testing.B) {
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 1e12, Burst: 1 << 30, MaxConcurrent: 1 << 20}, MaxInFlight: 1 << 20})
	b.ReportAllocs()
	for b.Loop() {
		leave, _, _ := l.Enter()
		rel, _, _ := l.Acquire("ocmw-gent", "", nil)
		rel()
		leave()
	}
}

// BenchmarkAcquireParallel spreads 64 participants over all Ps.
func BenchmarkAcquireParallel(b *testing.B) {
	l := New(Config{Default: crossroads.Limits{RatePerSecond: 1e12, Burst: 1 << 30, MaxConcurrent: 1 << 20}, MaxInFlight: 1 << 20})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = "participant-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			leave, _, _ := l.Enter()
			rel, _, _ := l.Acquire(ids[i%len(ids)], "", nil)
			rel()
			leave()
			i++
		}
	})
}

// BenchmarkAcquireUnlimited: what the pipeline pays when no limit is set.
func BenchmarkAcquireUnlimited(b *testing.B) {
	l := New(Config{})
	b.ReportAllocs()
	for b.Loop() {
		leave, _, _ := l.Enter()
		rel, _, _ := l.Acquire("ocmw-gent", "", nil)
		rel()
		leave()
	}
}
