package provider

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// replayCache remembers the exchange ids served while their signature is
// still fresh. Ids are kept by the second of their signature's issuedAt:
// once that second is more than the skew in the past, any request signed
// in it is stale anyway and the ids are dropped. Memory is bounded by max:
// when full, the oldest second is forgotten and the floor raised past it,
// so that requests signed that early are refused rather than risked.
// It is sharded to keep lock contention low.
type replayCache struct {
	skew   int64        // seconds, rounded up
	pruned atomic.Int64 // the second of the last expiry pass
	shards [replayShards]replayShard
}

const replayShards = 16

type replayShard struct {
	mu      sync.Mutex
	max     int
	ids     map[[16]byte]int64 // id → second of issuedAt
	seconds map[int64][][16]byte
	floor   int64 // requests issued before this second are refused
}

type verdict int

const (
	fresh verdict = iota
	replayed
	tooOld
)

func newReplayCache(max int, skew time.Duration) *replayCache {
	c := &replayCache{skew: int64((skew + time.Second - 1) / time.Second)}
	per := max / replayShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		c.shards[i] = replayShard{max: per, ids: make(map[[16]byte]int64), seconds: make(map[int64][][16]byte)}
	}
	return c
}

// key is the 16 bytes of a UUID exchange id (the hub's form), or the
// first 16 bytes of the SHA-256 of any other id.
func key(id string) [16]byte {
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u
	}
	sum := sha256.Sum256([]byte(id))
	var k [16]byte
	copy(k[:], sum[:16])
	return k
}

// first reports whether id (signed at issued) is new, and remembers it.
func (c *replayCache) first(id string, issued, now time.Time) verdict {
	k := key(id)
	sec, nowSec := issued.Unix(), now.Unix()
	if last := c.pruned.Load(); nowSec > last && c.pruned.CompareAndSwap(last, nowSec) {
		// Once a second, whoever comes first forgets the stale seconds
		// of every shard.
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.Lock()
			sh.expire(nowSec - c.skew - 1)
			sh.mu.Unlock()
		}
	}
	sh := &c.shards[k[15]%replayShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sec < sh.floor {
		return tooOld
	}
	if _, ok := sh.ids[k]; ok {
		return replayed
	}
	for len(sh.ids) >= sh.max {
		oldest, ok := sh.oldest()
		if !ok || oldest > sec {
			// Everything kept is fresher than this request: refuse it.
			return tooOld
		}
		sh.drop(oldest)
		sh.floor = oldest + 1
		if sec < sh.floor {
			return tooOld
		}
	}
	sh.ids[k] = sec
	sh.seconds[sec] = append(sh.seconds[sec], k)
	return fresh
}

// expire drops the seconds before limit: their requests are stale.
func (sh *replayShard) expire(limit int64) {
	for s := range sh.seconds {
		if s < limit {
			sh.drop(s)
		}
	}
}

func (sh *replayShard) oldest() (int64, bool) {
	first, found := int64(0), false
	for s := range sh.seconds {
		if !found || s < first {
			first, found = s, true
		}
	}
	return first, found
}

func (sh *replayShard) drop(sec int64) {
	for _, k := range sh.seconds[sec] {
		delete(sh.ids, k)
	}
	delete(sh.seconds, sec)
}

// len returns the number of ids remembered.
func (c *replayCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.ids)
		sh.mu.Unlock()
	}
	return n
}
