package audit

import (
	"testing"
	"time"
)

func TestLatencyQuantiles(t *testing.T) {
	var h latencyHist
	for i := 0; i < 98; i++ {
		h.observe(300 * time.Microsecond)
	}
	h.observe(20 * time.Millisecond)
	h.observe(time.Hour) // beyond the last bucket: counted in it
	l := h.snapshot()
	if q := l.Quantile(0.5); q < 300*time.Microsecond || q > 360*time.Microsecond {
		t.Errorf("p50 %s, want about 300µs", q)
	}
	if q := l.Quantile(0.99); q < 20*time.Millisecond || q > 24*time.Millisecond {
		t.Errorf("p99 %s, want about 20ms", q)
	}
	if q := l.Sub(l).Quantile(0.99); q != 0 {
		t.Errorf("empty window: p99 %s", q)
	}
	for i := 1; i < latencyBuckets; i++ {
		if d := BucketBound(i); latencyBucket(d) > i || latencyBucket(d+time.Microsecond) < i {
			t.Fatalf("bucket %d bound %s falls in %d", i, d, latencyBucket(d))
		}
	}
}
