package load

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, in the manner of HdrHistogram: values below
// 2^histSubBits are counted exactly; above, every power-of-two range is cut
// into histHalf equal buckets. A bucket is therefore never wider than
// 1/histHalf of its lower bound, and reporting its midpoint is off by at most
// 1/(2·histHalf) ≈ 0.2 % of the true value. Memory is fixed (≈ 58 KiB) and
// covers every non-negative int64.
const (
	histSubBits = 8
	histSub     = 1 << histSubBits // 256 exact values, then 128 buckets per octave
	histHalf    = histSub / 2
	// bits.Len64 of a non-negative int64 is at most 63.
	histBuckets = histSub + (63-histSubBits)*histHalf
)

// HistogramPrecision bounds the relative error of a quantile: the value
// reported is within HistogramPrecision·v of the recorded value v of that
// rank.
const HistogramPrecision = 1.0 / histSub

// Histogram records non-negative int64 values (nanoseconds, for latencies)
// in bounded memory. The zero value is ready to use. It is not safe for
// concurrent use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// histIndex returns the bucket of v (v ≥ 0).
func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits // ≥ 1
	m := int(uint64(v) >> uint(e))           // in [histHalf, histSub)
	return histSub + (e-1)*histHalf + (m - histHalf)
}

// histBounds returns the lowest value of bucket i and its width.
func histBounds(i int) (lower, width int64) {
	if i < histSub {
		return int64(i), 1
	}
	j := i - histSub
	e := j/histHalf + 1
	m := int64(j%histHalf + histHalf)
	return m << uint(e), 1 << uint(e)
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// RecordDuration adds d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest value recorded (exact), 0 if none.
func (h *Histogram) Min() int64 { return h.min }

// Max is the largest value recorded (exact), 0 if none.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact mean of the values recorded, 0 if none.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value of rank ⌈q·n⌉ (at least 1) in sorted order,
// within HistogramPrecision; q is clamped to [0, 1]. Quantile(0) is the
// exact minimum and Quantile(1) the exact maximum. 0 if empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 || math.IsNaN(q) {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i]
		if cum >= rank {
			lower, width := histBounds(i)
			v := lower + width/2
			// The extremes are known exactly; never report beyond them.
			return min(max(v, h.min), h.max)
		}
	}
	return h.max // unreachable: the counts sum to n
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Summary gives the usual latency quantiles of a histogram of nanoseconds.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.n,
		Min:   time.Duration(h.min),
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(h.Quantile(0.50)),
		P90:   time.Duration(h.Quantile(0.90)),
		P99:   time.Duration(h.Quantile(0.99)),
		P999:  time.Duration(h.Quantile(0.999)),
		Max:   time.Duration(h.max),
	}
}
