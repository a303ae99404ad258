package audit

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Commit latency: how long the store took to make each group commit
// durable (the transaction and its fsync), in buckets of a quarter power of
// two of microseconds, so that an operator (and crossroads bench) can tell
// the tail the disk adds from the tail the CPU adds.
const latencyBuckets = 96 // up to 2^24 µs ≈ 17 s

// Latency is a histogram of group-commit durations: Counts[i] commits took
// at most BucketBound(i).
type Latency struct {
	Counts [latencyBuckets]int64
}

type latencyHist struct {
	counts [latencyBuckets]atomic.Int64
}

func latencyBucket(d time.Duration) int {
	us := d.Microseconds()
	if us <= 1 {
		return 0
	}
	// i = ceil(4·log2(us)), with the fraction from the top bits.
	e := bits.Len64(uint64(us)) - 1 // 2^e ≤ us
	i := 4*e + int(math.Ceil(4*math.Log2(float64(us)/float64(uint64(1)<<e))))
	return min(i, latencyBuckets-1)
}

// BucketBound is the upper bound of bucket i.
func BucketBound(i int) time.Duration {
	return time.Duration(math.Pow(2, float64(i)/4) * float64(time.Microsecond))
}

func (h *latencyHist) observe(d time.Duration) { h.counts[latencyBucket(d)].Add(1) }

func (h *latencyHist) snapshot() Latency {
	var l Latency
	for i := range h.counts {
		l.Counts[i] = h.counts[i].Load()
	}
	return l
}

// Sub returns the commits of l not in earlier (a window between two
// snapshots).
func (l Latency) Sub(earlier Latency) Latency {
	for i := range l.Counts {
		l.Counts[i] -= earlier.Counts[i]
	}
	return l
}

// Quantile returns the upper bound of the bucket holding quantile q (0 with
// no commits).
func (l Latency) Quantile(q float64) time.Duration {
	var n int64
	for _, c := range l.Counts {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i, c := range l.Counts {
		seen += c
		if seen >= max(rank, 1) {
			return BucketBound(i)
		}
	}
	return BucketBound(latencyBuckets - 1)
}
