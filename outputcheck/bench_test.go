package outputcheck

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/aggregate"
)

// table10k is a sum table of 100 × 100 cells with 1–40 contributions each.
func table10k() aggregate.Table { return sumTable(100, 100) }

func sumTable(rows, cols int) aggregate.Table {
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
			n := 1 + rng.IntN(40)
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
	for i := 0; i < b.N; i++ {
		res, err := Check(r, t)
		if err != nil || len(res.Cells) != 10000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckRelease10kCells adds the differencing check against a
// history of 10 releases: 5 of 10,000 cells with a nested filter, 5 of 100
// cells grouped by a alone (margins of the table).
func BenchmarkCheckRelease10kCells(b *testing.B) {
	t := table10k()
	r := DefaultRules()
	q := aggregate.Query{Dataset: "d", Index: []string{"a"}, Columns: []string{"b"}, Statistic: aggregate.Sum, Value: "v"}
	var h History
	for i := 0; i < 10; i++ {
		oq, ot := q, t
		if i%2 == 0 {
			oq.Filters = []aggregate.Filter{{Column: "age", Op: aggregate.Ge, Value: strconv.Itoa(i)}}
		} else {
			oq.Columns, ot = nil, sumTable(100, 0)
		}
		res, _ := Check(r, ot)
		h.Add(NewRelease(strconv.Itoa(i), time.Time{}, oq, ot, res))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := CheckRelease(r, h, q, t); err != nil {
			b.Fatal(err)
		}
	}
}
