package aggregate

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

const visits = `region,sex,age,cost
East,F,30,100
East,F,40,200
East,M,50,
East,M,17,50
West,F,60,10
West,F,25,20
West,F,35,30
,F,33,1000
West,NA,44,1000
`

func mustRun(t *testing.T, csv string, q Query) Table {
	t.Helper()
	if q.Dataset == "" {
		q.Dataset = "visits.csv"
	}
	tab, err := Run(context.Background(), strings.NewReader(csv), q, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

type got struct {
	labels string
	value  float64
	n      int64
}

func cells(tab Table) []got {
	var out []got
	for _, c := range tab.Cells {
		out = append(out, got{strings.Join(append(append([]string{}, c.Index...), c.Column...), "/"), c.Value, c.N})
	}
	return out
}

func TestStatistics(t *testing.T) {
	// Rows with a missing label (",F" and "West,NA") are dropped: 2.
	// Count by region × sex: East F 2, East M 2, West F 3, West M 0.
	tab := mustRun(t, visits, Query{Index: []string{"region"}, Columns: []string{"sex"}, Statistic: Count})
	want := []got{{"East/F", 2, 2}, {"East/M", 2, 2}, {"West/F", 3, 3}, {"West/M", 0, 0}}
	if !reflect.DeepEqual(cells(tab), want) || tab.Dropped != 2 {
		t.Errorf("count: %v dropped %d, want %v dropped 2", cells(tab), tab.Dropped, want)
	}
	// By region alone only ",F" is dropped (sex is not grouped on).
	// Sum of cost by region: East 100+200+50 = 350 over n = 3 (one missing),
	// West 10+20+30+1000 = 1060 over 4.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Sum, Value: "cost"})
	if !reflect.DeepEqual(cells(tab), []got{{"East", 350, 3}, {"West", 1060, 4}}) || tab.Cells[0].Missing != 1 || tab.Cells[0].Rows() != 4 {
		t.Errorf("sum: %v %+v", cells(tab), tab.Cells[0])
	}
	if !reflect.DeepEqual(tab.Cells[0].Top, []float64{200, 100, 50}) || tab.Cells[0].AbsSum != 350 {
		t.Errorf("top %v abs %v", tab.Cells[0].Top, tab.Cells[0].AbsSum)
	}
	// Mean: East 350/3, West 1060/4 = 265.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Mean, Value: "cost"})
	if math.Abs(tab.Cells[0].Value-350.0/3) > 1e-9 || tab.Cells[1].Value != 265 {
		t.Errorf("mean: %v", cells(tab))
	}
	// Median: East {50, 100, 200} → 100; West {10, 20, 30, 1000} → (20+30)/2 = 25.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Median, Value: "cost"})
	if !reflect.DeepEqual(cells(tab), []got{{"East", 100, 3}, {"West", 25, 4}}) {
		t.Errorf("median: %v", cells(tab))
	}
	// Quantile 0.25 of East {50, 100, 200}: h = 2 × 0.25 = 0.5 → 50 + 0.5 × 50 = 75.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Quantile, Value: "cost", Q: 0.25})
	if tab.Cells[0].Value != 75 {
		t.Errorf("q 0.25: %v", cells(tab))
	}
	// Median of an even count: ages of East {17, 30, 40, 50} → (30+40)/2 = 35.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Median, Value: "age"})
	if tab.Cells[0].Value != 35 {
		t.Errorf("even median: %v", cells(tab))
	}
	// Count with a value column counts rows whose value is present.
	tab = mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Count, Value: "cost"})
	if !reflect.DeepEqual(cells(tab), []got{{"East", 3, 3}, {"West", 4, 4}}) || tab.Cells[0].Missing != 1 {
		t.Errorf("count of cost: %v", cells(tab))
	}
	// Two index columns.
	tab = mustRun(t, visits, Query{Index: []string{"region", "sex"}, Statistic: Count})
	if !reflect.DeepEqual(cells(tab), []got{{"East/F", 2, 2}, {"East/M", 2, 2}, {"West/F", 3, 3}}) {
		t.Errorf("two index columns: %v", cells(tab))
	}
}

func TestFilters(t *testing.T) {
	count := func(fs ...Filter) float64 {
		tab := mustRun(t, visits, Query{Index: []string{"sex"}, Statistic: Count, Filters: fs})
		var n float64
		for _, c := range tab.Cells {
			n += c.Value
		}
		return n
	}
	for _, c := range []struct {
		f    Filter
		want float64
	}{
		// Grouped by sex: 8 rows (West,NA is dropped; the row without a
		// region is kept, and matches no condition on region).
		{Filter{Column: "region", Op: Eq, Value: "East"}, 4},
		{Filter{Column: "region", Op: Ne, Value: "East"}, 3},
		{Filter{Column: "age", Op: Lt, Value: "30"}, 2}, // 17, 25
		{Filter{Column: "age", Op: Le, Value: "30"}, 3}, // 17, 25, 30
		{Filter{Column: "age", Op: Gt, Value: "50"}, 1}, // 60
		{Filter{Column: "age", Op: Ge, Value: "50"}, 2}, // 50, 60
		{Filter{Column: "cost", Op: Ge, Value: "0"}, 7}, // the missing cost matches nothing
		{Filter{Column: "cost", Op: Ne, Value: "7"}, 7}, // not even ne
		{Filter{Column: "region", Op: In, Values: []string{"West", "North"}}, 3},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %v rows, want %v", c.f, got, c.want)
		}
	}
	if got := count(Filter{Column: "region", Op: Eq, Value: "East"}, Filter{Column: "sex", Op: Eq, Value: "F"}); got != 2 {
		t.Errorf("AND: %v", got)
	}
}

func TestOrderAndBounds(t *testing.T) {
	csv := "k,v\n10,1\n9,2\nb,3\na,4\n9,-50\n"
	tab := mustRun(t, csv, Query{Index: []string{"k"}, Statistic: Sum, Value: "v", Bounds: &Bounds{Lower: 0, Upper: 3}})
	// Numbers first in numeric order, then text: 9, 10, a, b.
	// Bounds [0, 3]: 9 → 2 + 0 (−50 clamped), a → 3 (4 clamped), b → 3.
	want := []got{{"9", 2, 2}, {"10", 1, 1}, {"a", 3, 1}, {"b", 3, 1}}
	if !reflect.DeepEqual(cells(tab), want) {
		t.Errorf("%v, want %v", cells(tab), want)
	}
}

func TestTopMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("g,v\n")
	var vals []float64
	for i := 0; i < 500; i++ {
		v := math.Round(rng.NormFloat64()*1000) / 10
		vals = append(vals, math.Abs(v))
		b.WriteString("x," + strconv.FormatFloat(v, 'f', -1, 64) + "\n")
	}
	tab := mustRun(t, b.String(), Query{Index: []string{"g"}, Statistic: Sum, Value: "v"})
	sort.Sort(sort.Reverse(sort.Float64Slice(vals)))
	if !reflect.DeepEqual(tab.Cells[0].Top, vals[:TopContributions]) {
		t.Errorf("top %v, want %v", tab.Cells[0].Top, vals[:TopContributions])
	}
}

func TestBadData(t *testing.T) {
	q := Query{Dataset: "d", Index: []string{"region"}, Statistic: Sum, Value: "cost"}
	for name, csv := range map[string]string{
		"empty":          "",
		"no column":      "area,cost\nx,1\n",
		"no value col":   "region,price\nx,1\n",
		"not a number":   "region,cost\nx,abc\n",
		"ragged":         "region,cost\nx,1,2\n",
		"bad quote":      "region,cost\n\"x,1\n",
		"duplicate head": "region,region,cost\nx,y,1\n",
		"infinite":       "region,cost\nx,Inf\n",
	} {
		_, err := Run(context.Background(), strings.NewReader(csv), q, Limits{})
		if !errors.Is(err, ErrBadData) {
			t.Errorf("%s: err %v, want ErrBadData", name, err)
		}
	}
	if _, err := Run(context.Background(), strings.NewReader(visits), Query{}, Limits{}); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("invalid query: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := "region,cost\n" + strings.Repeat("x,1\n", 10000)
	if _, err := Run(ctx, strings.NewReader(big), q, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestLimits(t *testing.T) {
	csv := "k,v\na,1\nb,2\nc,3\n"
	if _, err := Run(context.Background(), strings.NewReader(csv), Query{Dataset: "d", Index: []string{"k"}, Statistic: Count}, Limits{MaxCells: 2}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("cells: %v", err)
	}
	if _, err := Run(context.Background(), strings.NewReader(csv), Query{Dataset: "d", Index: []string{"k"}, Statistic: Median, Value: "v"}, Limits{MaxValues: 2}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("values: %v", err)
	}
	// Sum keeps no values: the same limit does not apply.
	if _, err := Run(context.Background(), strings.NewReader(csv), Query{Dataset: "d", Index: []string{"k"}, Statistic: Sum, Value: "v"}, Limits{MaxValues: 2}); err != nil {
		t.Errorf("sum: %v", err)
	}
}

func TestLineLimit(t *testing.T) {
	q := Query{Dataset: "d", Index: []string{"k"}, Statistic: Count}
	long := "k\n" + strings.Repeat("x", 1001) + "\ny\n"
	for name, r := range map[string]io.Reader{
		"one read":      strings.NewReader(long),
		"byte by byte":  iotest.OneByteReader(strings.NewReader(long)),
		"long header":   strings.NewReader(strings.Repeat("k", 2000) + "\nx\n"),
		"quoted inside": strings.NewReader("k\n\"" + strings.Repeat("x", 1001) + "\"\n"),
	} {
		if _, err := Run(context.Background(), r, q, Limits{MaxLineBytes: 1000}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", name, err)
		}
	}
	// Many lines of 1000 bytes, read in small pieces, are fine.
	ok := "k\n" + strings.Repeat(strings.Repeat("x", 1000)+"\n", 50)
	tab, err := Run(context.Background(), iotest.HalfReader(strings.NewReader(ok)), q, Limits{MaxLineBytes: 1000})
	if err != nil || len(tab.Cells) != 1 || tab.Cells[0].N != 50 {
		t.Errorf("lines at the limit: %v %+v", err, tab.Cells)
	}
}

func TestMerge(t *testing.T) {
	// Two holders: East 100, 200 | East 50, West 10. Sum 350 and 10, means
	// 350/3 and 10, top of East 200, 100, 50.
	a := mustRun(t, "region,cost\nEast,100\nEast,200\n", Query{Index: []string{"region"}, Statistic: Mean, Value: "cost"})
	b := mustRun(t, "region,cost\nEast,50\nWest,10\n", Query{Index: []string{"region"}, Statistic: Mean, Value: "cost"})
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 2 || m.Cells[0].N != 3 || math.Abs(m.Cells[0].Value-350.0/3) > 1e-9 || m.Cells[1].Value != 10 ||
		!reflect.DeepEqual(m.Cells[0].Top, []float64{200, 100, 50}) {
		t.Errorf("merged %+v", m.Cells)
	}
	med := mustRun(t, "region,cost\nEast,1\n", Query{Index: []string{"region"}, Statistic: Median, Value: "cost"})
	if _, err := Merge(med, med); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("median: %v", err)
	}
	c := mustRun(t, "region,cost\nEast,1\n", Query{Index: []string{"region"}, Statistic: Sum, Value: "cost"})
	if _, err := Merge(a, c); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("different statistics: %v", err)
	}
	if _, err := Merge(); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("none: %v", err)
	}
}

func TestRedact(t *testing.T) {
	tab := mustRun(t, visits, Query{Index: []string{"region"}, Statistic: Sum, Value: "cost"})
	r := tab.Redact()
	for _, c := range r.Cells {
		if c.Top != nil || c.AbsSum != 0 || c.Sum != 0 {
			t.Errorf("redacted cell keeps detail: %+v", c)
		}
	}
	if tab.Cells[0].Top == nil {
		t.Error("Redact changed the original")
	}
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery([]byte(`{"dataset":"visits.csv","filters":[{"column":"age","op":"ge","value":18},
		{"column":"region","op":"in","values":["East","West"]}],"index":["region"],"columns":["sex"],
		"statistic":"mean","value":"cost","bounds":{"lower":0,"upper":5000}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Query{Dataset: "visits.csv", Filters: []Filter{{Column: "age", Op: Ge, Value: "18"}, {Column: "region", Op: In, Values: []string{"East", "West"}}},
		Index: []string{"region"}, Columns: []string{"sex"}, Statistic: Mean, Value: "cost", Bounds: &Bounds{0, 5000}}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("got %+v", q)
	}
	for _, bad := range []string{
		``, `[]`, `{}`, `{"dataset":"d","index":["a"],"statistic":"count"} {}`,
		`{"dataset":"d","index":["a"],"statistic":"count","extra":1}`,
		`{"dataset":"d","index":[],"statistic":"count"}`,
		`{"dataset":"d","index":["a","b","c"],"statistic":"count"}`,
		`{"dataset":"d","index":["a"],"columns":["b","c"],"statistic":"count"}`,
		`{"dataset":"d","index":["a"],"columns":["a"],"statistic":"count"}`,
		`{"dataset":"d","index":["a"],"statistic":"sum"}`,
		`{"dataset":"d","index":["a"],"statistic":"mode","value":"v"}`,
		`{"dataset":"d","index":["a"],"statistic":"quantile","value":"v","q":1.5}`,
		`{"dataset":"d","index":["a"],"statistic":"sum","value":"v","q":0.5}`,
		`{"dataset":"d","index":["a"],"statistic":"sum","value":"v","bounds":{"lower":2,"upper":1}}`,
		`{"dataset":"d","index":["a"],"statistic":"count","bounds":{"lower":0,"upper":1}}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"like","value":"x"}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"lt","value":"x"}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"in","values":[]}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"in","value":"x"}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"eq","values":["x"]}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"eq","value":{"x":1}}]}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[{"column":"a","op":"eq","value":"x","z":1}]}`,
		`{"dataset":"","index":["a"],"statistic":"count"}`,
		`{"dataset":"d","index":[" a"],"statistic":"count"}`,
		`{"dataset":"d","index":["a"],"statistic":"count","filters":[` + strings.Repeat(`{"column":"a","op":"eq","value":"x"},`, MaxFilters) + `{"column":"a","op":"eq","value":"x"}]}`,
	} {
		if _, err := ParseQuery([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if _, err := ParseQuery(make([]byte, MaxQueryBytes+1)); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("long: %v", err)
	}
}

func TestIsMissing(t *testing.T) {
	for _, s := range []string{"", " ", "NA", "na", "N/A", "NaN", "null", "NULL", "None"} {
		if !IsMissing(s) {
			t.Errorf("%q not missing", s)
		}
	}
	for _, s := range []string{"0", "nab", "x", "-"} {
		if IsMissing(s) {
			t.Errorf("%q missing", s)
		}
	}
}

func TestUnit(t *testing.T) {
	// Visits: patient p1 has 3 visits in East (100, 200, 300), p2 one (50),
	// p3 two (10, 20); one visit without a patient is dropped; p4 in East
	// has a missing cost.
	csv := "region,patient,cost\nEast,p1,100\nEast,p1,200\nEast,p2,50\nEast,p1,300\nEast,p3,10\nEast,p3,20\nEast,,999\nEast,p4,\n"
	q := Query{Index: []string{"region"}, Unit: "patient", Value: "cost"}
	// Per unit: p1 600, p2 50, p3 30 → n = 3 units, sum 680, mean per
	// patient 680/3, median of {30, 50, 600} = 50, top 600, 50, 30.
	q.Statistic = Sum
	tab := mustRun(t, csv, q)
	c := tab.Cells[0]
	if c.N != 3 || c.Value != 680 || c.Missing != 1 || tab.Dropped != 1 || !reflect.DeepEqual(c.Top, []float64{600, 50, 30}) || tab.Unit != "patient" {
		t.Errorf("sum per unit: %+v dropped %d", c, tab.Dropped)
	}
	q.Statistic = Mean
	if v := mustRun(t, csv, q).Cells[0].Value; math.Abs(v-680.0/3) > 1e-9 {
		t.Errorf("mean per unit %v", v)
	}
	q.Statistic = Median
	if v := mustRun(t, csv, q).Cells[0].Value; v != 50 {
		t.Errorf("median per unit %v", v)
	}
	// Count of units: with the value column p1, p2, p3 (p4's cost is
	// missing); without it, p1..p4.
	q.Statistic = Count
	if c := mustRun(t, csv, q).Cells[0]; c.N != 3 || c.Value != 3 {
		t.Errorf("count of units with a cost: %+v", c)
	}
	q.Value = ""
	if c := mustRun(t, csv, q).Cells[0]; c.N != 4 || c.Value != 4 {
		t.Errorf("count of units: %+v", c)
	}
	// The unit entries are bounded like values.
	if _, err := Run(context.Background(), strings.NewReader(csv), Query{Dataset: "d", Index: []string{"region"}, Unit: "patient", Statistic: Count}, Limits{MaxValues: 3}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("units past the limit: %v", err)
	}
	if _, err := Merge(tab, tab); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("merging per-unit tables: %v", err)
	}
	if _, err := Run(context.Background(), strings.NewReader(csv), Query{Dataset: "d", Index: []string{"region"}, Unit: "person", Statistic: Count}, Limits{}); !errors.Is(err, ErrBadData) {
		t.Errorf("no unit column: %v", err)
	}
}
