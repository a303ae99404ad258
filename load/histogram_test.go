package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBucketsTile(t *testing.T) {
	// Every bucket starts where the previous one ends, and the index of a
	// value lies within that bucket's bounds.
	next := int64(0)
	for i := range histBuckets {
		lo, w := histBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if i >= histSub && float64(w)/float64(lo) > 1.0/histHalf {
			t.Fatalf("bucket %d: width %d too wide for lower bound %d", i, w, lo)
		}
		for _, v := range []int64{lo, lo + w/2, lo + w - 1} {
			if got := histIndex(v); got != i {
				t.Fatalf("histIndex(%d) = %d, want %d", v, got, i)
			}
		}
		next = lo + w
		if i == histBuckets-1 && next != math.MinInt64 { // wrapped past MaxInt64
			t.Fatalf("last bucket ends at %d, want 2^63", next)
		}
	}
	if got := histIndex(math.MaxInt64); got != histBuckets-1 {
		t.Fatalf("histIndex(MaxInt64) = %d", got)
	}
}

func TestHistogramQuantilesAgainstSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform-small": func() int64 { return rng.Int64N(300) },
		"uniform":       func() int64 { return rng.Int64N(50_000_000) },
		"lognormal":     func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5 + 13)) },
		"bimodal": func() int64 {
			if rng.IntN(100) < 3 {
				return 200_000_000 + rng.Int64N(1_000_000_000)
			}
			return 800_000 + rng.Int64N(200_000)
		},
	}
	qs := []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			ref := make([]int64, 100_000)
			var sum float64
			for i := range ref {
				ref[i] = gen()
				sum += float64(ref[i])
				h.Record(ref[i])
			}
			slices.Sort(ref)
			if h.Count() != uint64(len(ref)) || h.Min() != ref[0] || h.Max() != ref[len(ref)-1] {
				t.Fatalf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), len(ref), ref[0], ref[len(ref)-1])
			}
			if want := sum / float64(len(ref)); math.Abs(h.Mean()-want) > 1e-6*want {
				t.Fatalf("mean %f, want %f", h.Mean(), want)
			}
			for _, q := range qs {
				rank := max(int(math.Ceil(q*float64(len(ref)))), 1)
				want := ref[rank-1]
				got := h.Quantile(q)
				if d := math.Abs(float64(got - want)); d > HistogramPrecision*float64(want) {
					t.Errorf("q%.4f = %d, want %d ± %.1f (off by %.0f)", q, got, want, HistogramPrecision*float64(want), d)
				}
			}
		})
	}
}

func TestHistogramSmallExact(t *testing.T) {
	var h Histogram
	for _, v := range []int64{5, 1, 4, 2, 3, -7} {
		h.Record(v)
	}
	// Sorted: 0 1 2 3 4 5 (negative counts as 0); small values are exact.
	for q, want := range map[float64]int64{0: 0, 0.5: 2, 0.51: 3, 0.99: 5, 1: 5} {
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, want)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram should report 0")
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10_000 {
		v := rng.Int64N(1 << 30)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Fatal("merge lost counts or extremes")
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %d, direct %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	a.Reset()
	if a.Count() != 0 || a.Max() != 0 {
		t.Error("reset left values")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	vals := make([]int64, 1024)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range vals {
		vals[i] = int64(math.Exp(rng.NormFloat64() + 13))
	}
	i := 0
	for b.Loop() {
		h.Record(vals[i&1023])
		i++
	}
}
