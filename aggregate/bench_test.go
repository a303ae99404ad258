//go:build unix

package aggregate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far: on a shared
// machine the CPU a benchmark burns says more than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dataset1M is a synthetic CSV of 1,000,000 rows: region (20 values), sex
// (2), age (0–99) and cost (0–9,999.99); about 28 MB.
func dataset1M(b *testing.B) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	var buf bytes.Buffer
	buf.Grow(30 << 20)
	buf.WriteString("region,sex,age,cost\n")
	sexes := []string{"F", "M"}
	for i := 0; i < 1_000_000; i++ {
		fmt.Fprintf(&buf, "R%02d,%s,%d,%.2f\n", rng.IntN(20), sexes[rng.IntN(2)], rng.IntN(100), rng.Float64()*10000)
	}
	return buf.Bytes()
}

func BenchmarkRun1M(b *testing.B) {
	data := dataset1M(b)
	for _, c := range []struct {
		name string
		q    Query
	}{
		{"count", Query{Dataset: "d", Index: []string{"region"}, Columns: []string{"sex"}, Statistic: Count}},
		{"mean-filtered", Query{Dataset: "d", Index: []string{"region"}, Columns: []string{"sex"}, Statistic: Mean, Value: "cost",
			Filters: []Filter{{Column: "age", Op: Ge, Value: "18"}}}},
		{"median", Query{Dataset: "d", Index: []string{"region"}, Columns: []string{"sex"}, Statistic: Median, Value: "cost"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				tab, err := Run(context.Background(), bytes.NewReader(data), c.q, Limits{})
				if err != nil || len(tab.Cells) != 40 {
					b.Fatal(err, len(tab.Cells))
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N)/1e3, "cpu-ms/op")
		})
	}
}
