package outputcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/aggregate"
)

// rowsOf returns CSV lines "label,value" for each value, n times label with value v.
type rows struct {
	b strings.Builder
}

func newRows(header string) *rows { r := &rows{}; r.b.WriteString(header + "\n"); return r }

func (r *rows) add(n int, line string) *rows {
	for i := 0; i < n; i++ {
		r.b.WriteString(line + "\n")
	}
	return r
}

func (r *rows) values(prefix string, vs ...any) *rows {
	for _, v := range vs {
		fmt.Fprintf(&r.b, "%s,%v\n", prefix, v)
	}
	return r
}

func run(t *testing.T, csv string, q aggregate.Query) aggregate.Table {
	t.Helper()
	if q.Dataset == "" {
		q.Dataset = "d.csv"
	}
	tab, err := aggregate.Run(context.Background(), strings.NewReader(csv), q, aggregate.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func check(t *testing.T, r Rules, tab aggregate.Table) Result {
	t.Helper()
	res, err := Check(r, tab)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// cellFails returns the fails of the cell with these index labels (and column labels).
func cellFails(t *testing.T, res Result, labels ...string) []Rule {
	t.Helper()
	for _, c := range res.Cells {
		if reflect.DeepEqual(append(append([]string{}, c.Index...), c.Column...), labels) {
			return c.Fails
		}
	}
	t.Fatalf("no cell %q in %+v", labels, res.Cells)
	return nil
}

func wantFails(t *testing.T, res Result, want []Rule, labels ...string) {
	t.Helper()
	got := cellFails(t, res, labels...)
	if len(want) == 0 {
		want = []Rule{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cell %q: fails %v, want %v", labels, got, want)
	}
}

func TestThreshold(t *testing.T) {
	// Count by region: East 12 rows, North 10, West 9. Threshold 10:
	// East 12 >= 10 passes, North 10 >= 10 passes (the bound is strict:
	// n < 10 fails), West 9 < 10 fails. One failing cell: status fail.
	csv := newRows("region").add(12, "East").add(10, "North").add(9, "West").b.String()
	tab := run(t, csv, aggregate.Query{Index: []string{"region"}, Statistic: aggregate.Count})
	res := check(t, DefaultRules(), tab)
	if res.Status != StatusFail {
		t.Fatalf("status %s, want fail", res.Status)
	}
	wantFails(t, res, nil, "East")
	wantFails(t, res, nil, "North")
	wantFails(t, res, []Rule{Threshold}, "West")
	for _, c := range res.Cells {
		if c.Suppress != (c.Index[0] == "West") {
			t.Errorf("%v: suppress %v", c.Index, c.Suppress)
		}
	}
	// Threshold 9: West 9 is not < 9, every cell passes.
	r := DefaultRules()
	r.Threshold = 9
	if res := check(t, r, tab); res.Status != Pass {
		t.Errorf("threshold 9: status %s, want pass", res.Status)
	}
	// Threshold 13: all three (12, 10, 9 < 13) fail.
	r.Threshold = 13
	res = check(t, r, tab)
	for _, c := range res.Cells {
		if !c.Suppress {
			t.Errorf("threshold 13: %v not suppressed", c.Index)
		}
	}
	// Action review: West is not suppressed, the verdict is review.
	r = DefaultRules()
	r.Actions = map[Rule]Action{Threshold: Review}
	res = check(t, r, tab)
	if res.Status != StatusReview || cellFails(t, res, "West")[0] != Threshold || res.Cells[2].Suppress {
		t.Errorf("threshold review: %+v", res)
	}
	// Action ignore: pass.
	r.Actions = map[Rule]Action{Threshold: Ignore}
	if res := check(t, r, tab); res.Status != Pass {
		t.Errorf("threshold ignored: status %s", res.Status)
	}
}

func TestDominance(t *testing.T) {
	// Sum of income by sector, 10 rows each (threshold passes).
	//   A: 500, 400, 8 × 10 → X = 980; top two 900; 900/980 = 0.918 > 0.9: fails.
	//      p-ratio: X − x1 − x2 = 80 >= 0.1 × 500 = 50: passes.
	//   B: 500, 300, 8 × 25 → X = 1000; top two 800/1000 = 0.8 <= 0.9: passes;
	//      p-ratio: 200 >= 50: passes.
	r := newRows("sector,income")
	r.values("A", 500, 400, 10, 10, 10, 10, 10, 10, 10, 10)
	r.values("B", 500, 300, 25, 25, 25, 25, 25, 25, 25, 25)
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"sector"}, Statistic: aggregate.Sum, Value: "income"})
	res := check(t, DefaultRules(), tab)
	wantFails(t, res, []Rule{Dominance}, "A")
	wantFails(t, res, nil, "B")
	if res.Status != StatusFail || !res.Cells[0].Suppress || res.Cells[1].Suppress {
		t.Errorf("status %s, cells %+v", res.Status, res.Cells)
	}
	// The same on the mean: the rule looks at the contributions, not the statistic.
	tab = run(t, r.b.String(), aggregate.Query{Index: []string{"sector"}, Statistic: aggregate.Mean, Value: "income"})
	wantFails(t, check(t, DefaultRules(), tab), []Rule{Dominance}, "A")
	// n = 3, k = 0.9 on B: 500 + 300 + 25 = 825 / 1000 = 0.825: passes;
	// k = 0.8 on B with n = 3: 0.825 > 0.8 fails.
	rr := DefaultRules()
	rr.DominanceN, rr.DominanceK = 3, 0.8
	wantFails(t, check(t, rr, tab), []Rule{Dominance}, "B")
	// n = 1, k = 0.5 on A: 500/980 = 0.51 > 0.5 fails; B: 500/1000 = 0.5 is not > 0.5, passes.
	rr = DefaultRules()
	rr.DominanceN, rr.DominanceK = 1, 0.5
	res = check(t, rr, tab)
	wantFails(t, res, []Rule{Dominance}, "A")
	wantFails(t, res, nil, "B")
	// A count table has no contributions to dominate: not applied.
	tab = run(t, r.b.String(), aggregate.Query{Index: []string{"sector"}, Statistic: aggregate.Count})
	if res := check(t, DefaultRules(), tab); res.Status != Pass {
		t.Errorf("count: %s", res.Status)
	}
}

func TestPRatio(t *testing.T) {
	// With n = 2 and k = 0.9, a p-ratio breach implies dominance (rest <
	// 0.1 x1 makes (x1+x2)/X > 0.9), so the p-ratio alone is shown with the
	// N-K rule at n = 1, k = 0.9.
	//   C: 1000, 900, 8 × 10 → X = 1980. x1/X = 0.505 <= 0.9: dominance passes.
	//      X − x1 − x2 = 80 < 0.1 × 1000 = 100: p-ratio fails.
	//   D: 1000, 900, 8 × 15 → X = 2020; rest 120 >= 100: passes.
	r := newRows("sector,income")
	r.values("C", 1000, 900, 10, 10, 10, 10, 10, 10, 10, 10)
	r.values("D", 1000, 900, 15, 15, 15, 15, 15, 15, 15, 15)
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"sector"}, Statistic: aggregate.Sum, Value: "income"})
	rules := DefaultRules()
	rules.DominanceN = 1
	res := check(t, rules, tab)
	wantFails(t, res, []Rule{PRatio}, "C")
	wantFails(t, res, nil, "D")
	// p = 0.05: C's 80 >= 50 passes.
	rules.PRatio = 0.05
	wantFails(t, check(t, rules, tab), nil, "C")
	// Defaults on C: dominance (1900/1980 = 0.96 > 0.9) and p-ratio.
	wantFails(t, check(t, DefaultRules(), tab), []Rule{Dominance, PRatio}, "C")
}

func TestSmallCellsFailEveryRule(t *testing.T) {
	// One row of 70: threshold (1 < 10), dominance (70/70 = 1 > 0.9) and
	// p-ratio (rest 0 < 7).
	tab := run(t, "g,v\nx,70\n", aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v"})
	wantFails(t, check(t, DefaultRules(), tab), []Rule{Threshold, Dominance, PRatio}, "x")
	// All-zero contributions: nothing to dominate (X = 0).
	tab = run(t, newRows("g,v").add(10, "x,0").b.String(), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v"})
	wantFails(t, check(t, DefaultRules(), tab), nil, "x")
}

func TestZero(t *testing.T) {
	// Count by region × sex: East F 12, East M 11, West F 15, West M none.
	// The cross-tabulation has the West/M cell with n = 0: zero fails (not
	// threshold, which is for 0 < n < 10).
	csv := newRows("region,sex").add(12, "East,F").add(11, "East,M").add(15, "West,F").b.String()
	tab := run(t, csv, aggregate.Query{Index: []string{"region"}, Columns: []string{"sex"}, Statistic: aggregate.Count})
	if len(tab.Cells) != 4 {
		t.Fatalf("%d cells, want 2 × 2", len(tab.Cells))
	}
	res := check(t, DefaultRules(), tab)
	wantFails(t, res, []Rule{Zero}, "West", "M")
	wantFails(t, res, nil, "East", "M")
	if res.Status != StatusFail {
		t.Errorf("status %s", res.Status)
	}
	r := DefaultRules()
	r.Actions = map[Rule]Action{Zero: Ignore}
	if res := check(t, r, tab); res.Status != Pass {
		t.Errorf("zeros ignored: %s", res.Status)
	}
}

func TestNegative(t *testing.T) {
	// Sum of balance, 10 rows: nine 10s and −5. Absolute contributions: X =
	// 95, top two 20/95 = 0.21 (dominance passes), rest 75 >= 1 (p-ratio
	// passes). A negative value: review, not suppressed.
	r := newRows("g,balance").values("x", 10, 10, 10, 10, 10, 10, 10, 10, 10, -5)
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "balance"})
	if tab.Cells[0].Value != 85 {
		t.Fatalf("sum %v, want 85", tab.Cells[0].Value)
	}
	res := check(t, DefaultRules(), tab)
	wantFails(t, res, []Rule{Negative}, "x")
	if res.Status != StatusReview || res.Cells[0].Suppress || !res.Review {
		t.Errorf("%+v", res)
	}
	rules := DefaultRules()
	rules.Actions = map[Rule]Action{Negative: Fail}
	if res := check(t, rules, tab); res.Status != StatusFail {
		t.Errorf("negative as fail: %s", res.Status)
	}
}

func TestMissing(t *testing.T) {
	// Mean of cost: group a has 12 rows, 2 without cost → n = 10 (threshold
	// passes), missing 2 → review. Group b has 12 rows, 3 missing → n = 9:
	// threshold fails (and missing).
	r := newRows("g,cost").add(10, "a,7").add(2, "a,").add(9, "b,7").add(2, "b,NA").add(1, "b, ")
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Mean, Value: "cost"})
	res := check(t, DefaultRules(), tab)
	wantFails(t, res, []Rule{Missing}, "a")
	wantFails(t, res, []Rule{Threshold, Missing}, "b")
	if res.Status != StatusFail || !res.Review || res.Cells[0].Suppress || !res.Cells[1].Suppress {
		t.Errorf("%+v", res)
	}
	// Without b: review only.
	tab.Cells = tab.Cells[:1]
	if res := check(t, DefaultRules(), tab); res.Status != StatusReview {
		t.Errorf("status %s, want review", res.Status)
	}
}

func TestUndecidableContributionsGoToReview(t *testing.T) {
	// A redacted sum table (no contributions) cannot be checked for
	// dominance or p-ratio: review.
	r := newRows("g,v").add(20, "a,5")
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v"})
	if res := check(t, DefaultRules(), tab); res.Status != Pass {
		t.Fatalf("full table: %s", res.Status)
	}
	res := check(t, DefaultRules(), tab.Redact())
	if res.Status != StatusReview {
		t.Errorf("redacted: %s", res.Status)
	}
	wantFails(t, res, []Rule{Dominance, PRatio}, "a")
}

func TestReleased(t *testing.T) {
	csv := newRows("region").add(12, "East").add(9, "West").b.String()
	tab := run(t, csv, aggregate.Query{Index: []string{"region"}, Statistic: aggregate.Count})
	res := check(t, DefaultRules(), tab)
	rel := res.Released(tab)
	if len(rel.Cells) != 1 || rel.Cells[0].Index[0] != "East" || rel.Cells[0].Top != nil {
		t.Errorf("released %+v", rel.Cells)
	}
	res.Refused = true
	if n := len(res.Released(tab).Cells); n != 0 {
		t.Errorf("refused: %d cells released", n)
	}
}

func TestParseRules(t *testing.T) {
	r, err := ParseRules([]byte("threshold: 5\nactions: {zero: ignore, missing: fail}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultRules()
	want.Threshold = 5
	want.Actions = map[Rule]Action{Zero: Ignore, Missing: Fail}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if r, err := ParseRules(nil); err != nil || !reflect.DeepEqual(r, DefaultRules()) {
		t.Errorf("empty: %+v %v", r, err)
	}
	if r, err := ParseRules([]byte(`{"p_ratio": 0.2, "dominance_n": 3}`)); err != nil || r.PRatio != 0.2 || r.DominanceN != 3 {
		t.Errorf("JSON: %+v %v", r, err)
	}
	for _, bad := range []string{
		"treshold: 5", "threshold: 0", "threshold: -1", "dominance_n: 0", "dominance_n: 11",
		"dominance_k: 0", "dominance_k: 1.5", "p_ratio: 1", "p_ratio: -0.1",
		"actions: {bogus: fail}", "actions: {zero: maybe}", "threshold: [1]", "- a",
	} {
		if _, err := ParseRules([]byte(bad)); !errors.Is(err, ErrInvalidRules) {
			t.Errorf("%q: err %v, want ErrInvalidRules", bad, err)
		}
	}
	if _, err := Check(Rules{}, aggregate.Table{}); !errors.Is(err, ErrInvalidRules) {
		t.Errorf("zero Rules accepted: %v", err)
	}
}

func TestReleasedCarriesNoContributions(t *testing.T) {
	// Sum of 10 rows: 1234.5 and nine 100s. The released table shows the
	// sum (2134.5) but neither 1234.5 nor any list of contributions.
	r := newRows("g,v").values("x", 1234.5, 100, 100, 100, 100, 100, 100, 100, 100, 100)
	tab := run(t, r.b.String(), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v"})
	rules := DefaultRules()
	rules.Actions = map[Rule]Action{Dominance: Ignore, PRatio: Ignore}
	res := check(t, rules, tab)
	b, err := json.Marshal(res.Released(tab))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "2134.5") || strings.Contains(string(b), "1234.5") || strings.Contains(string(b), "top") {
		t.Errorf("released JSON: %s", b)
	}
	if b, _ := json.Marshal(res); strings.Contains(string(b), "1234.5") {
		t.Errorf("result JSON carries a contribution: %s", b)
	}
}

func TestUnitContributions(t *testing.T) {
	// Turnover by sector, one row per establishment; firm F1 owns three.
	// Per row: 300, 300, 300 and nine firms of 10 → X = 990, top two 600:
	// 0.61, dominance passes; 12 rows pass the threshold.
	// Per firm (unit): F1 = 900 and nine of 10 → top two 910/990 = 0.919 >
	// 0.9: dominance fails; p-ratio 990 − 910 = 80 < 90 fails; and 10 firms
	// still pass the threshold.
	r := newRows("sector,firm,turnover").add(3, "A,F1,300")
	for i := 2; i <= 10; i++ {
		r.add(1, fmt.Sprintf("A,F%d,10", i))
	}
	q := aggregate.Query{Index: []string{"sector"}, Statistic: aggregate.Sum, Value: "turnover"}
	wantFails(t, check(t, DefaultRules(), run(t, r.b.String(), q)), nil, "A")
	q.Unit = "firm"
	wantFails(t, check(t, DefaultRules(), run(t, r.b.String(), q)), []Rule{Dominance, PRatio}, "A")
	// Threshold on units: 10 firms pass, but drop F10 (one row) and 9 firms
	// in 11 rows fail.
	r2 := newRows("sector,firm,turnover").add(3, "A,F1,10")
	for i := 2; i <= 9; i++ {
		r2.add(1, fmt.Sprintf("A,F%d,10", i))
	}
	q.Statistic = aggregate.Count
	q.Value = ""
	wantFails(t, check(t, DefaultRules(), run(t, r2.b.String(), q)), []Rule{Threshold}, "A")
	q.Unit = ""
	wantFails(t, check(t, DefaultRules(), run(t, r2.b.String(), q)), nil, "A")
}
