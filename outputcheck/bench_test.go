//go:build unix

package outputcheck

import (
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/aggregate"
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

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N)/1e3, "cpu-ms/op")
}

// table10k is a sum table of 100 × 100 cells with 1–40 contributions each.
func table10k() aggregate.Table { return sumTable(100, 100, 1) }

// sumTable has rows × cols cells (cols 0: no column) of minN to minN+39
// contributions uniform in [0, 1000).
func sumTable(rows, cols, minN int) aggregate.Table {
	rng := rand.New(rand.NewPCG(3, 4))
	t := aggregate.Table{Dataset: "d", Statistic: aggregate.Sum, Value: "v", Index: []string{"a"}, Columns: []string{"b"}}
	if cols == 0 {
		t.Columns = nil
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < max(cols, 1); j++ {
			c := aggregate.Cell{Index: []string{strconv.Itoa(i)}, Column: []string{strconv.Itoa(j)}}
			if cols == 0 {
				c.Column = []string{}
			}
			n := minN + rng.IntN(40)
			for k := 0; k < n; k++ {
				x := rng.Float64() * 1000
				c.N++
				c.Sum += x
				c.AbsSum += x
				c.Top = append(c.Top, x)
			}
			sortDesc(c.Top)
			if len(c.Top) > aggregate.TopContributions {
				c.Top = c.Top[:aggregate.TopContributions]
			}
			c.Value = c.Sum
			t.Cells = append(t.Cells, c)
		}
	}
	return t
}

func sortDesc(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] > x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

func BenchmarkCheck10kCells(b *testing.B) {
	t := table10k()
	r := DefaultRules()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		res, err := Check(r, t)
		if err != nil || len(res.Cells) != 10000 {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkCheckRelease10kCells adds the differencing check against a
// history of 10 releases: 5 of 10,000 cells with a nested filter, 5 of 100
// cells grouped by a alone (margins of the table). "clean": 10–49
// contributions a cell, zeros not disclosive, nothing found (every
// comparison made); "findings": 1–40 a cell, many cells suppressed,
// findings stop at MaxFindings.
func BenchmarkCheckRelease10kCells(b *testing.B) {
	for _, c := range []struct {
		name string
		minN int
	}{{"clean", 10}, {"findings", 1}} {
		b.Run(c.name, func(b *testing.B) {
			t := sumTable(100, 100, c.minN)
			r := DefaultRules()
			if c.minN >= 10 {
				r.Actions = map[Rule]Action{Zero: Ignore}
			}
			q := aggregate.Query{Dataset: "d", Index: []string{"a"}, Columns: []string{"b"}, Statistic: aggregate.Sum, Value: "v"}
			var h History
			for i := 0; i < 10; i++ {
				oq, ot := q, t
				if i%2 == 0 {
					oq.Filters = []aggregate.Filter{{Column: "age", Op: aggregate.Ge, Value: strconv.Itoa(i)}}
				} else {
					oq.Columns, ot = nil, sumTable(100, 0, 10*40)
				}
				res, _ := Check(r, ot)
				h.Add(NewRelease(strconv.Itoa(i), time.Time{}, oq, ot, res))
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				res, err := CheckRelease(r, h, q, t)
				if err != nil || (c.minN >= 10) != (len(res.Differencing) == 0) {
					b.Fatal(err, len(res.Differencing))
				}
			}
			reportCPU(b, cpu)
		})
	}
}
