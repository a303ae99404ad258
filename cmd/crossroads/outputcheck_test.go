package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutputcheckGolden runs the real command on small CSVs whose verdicts
// are worked out here, against golden JSON in testdata/outputcheck.
//
// people.csv: East F 12 rows, East M 9, West F 15, no West M, one row
// without a region and one with sex NA (both dropped).
// firms.csv (turnover): A = 950 and 9 × 10; B = 10 × 100; C = −20 and 9 × 100.
// establishments.csv: sector A has firm F1's three establishments of 300
// and nine firms of 10; B twelve firms of 100.
func TestOutputcheckGolden(t *testing.T) {
	dir, err := filepath.Abs("testdata/outputcheck")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		golden string
		args   []string
		why    string
	}{
		{"count-region-sex.json", []string{"--data", "people.csv", "--index", "region", "--columns", "sex"},
			"East/M 9 < 10: threshold; West/M n = 0: zero; East/F 12 and West/F 15 pass → fail"},
		{"count-region-sex-rules.json", []string{"--data", "people.csv", "--index", "region", "--columns", "sex", "--rules", "rules.yaml"},
			"threshold 5: East/M 9 passes; zeros ignored → pass"},
		{"count-two-index.json", []string{"--data", "people.csv", "--index", "region,sex"},
			"two index columns: only the observed tuples, no West/M cell; East/M threshold → fail"},
		{"count-sector.json", []string{"--data", "firms.csv", "--index", "sector"},
			"without --values the statistic is count: 10 each → pass"},
		{"sum-sector.json", []string{"--data", "firms.csv", "--index", "sector", "--values", "turnover", "--agg", "sum"},
			"A: (950+10)/1040 = 0.923 > 0.9 dominance, 1040−960 = 80 < 95 p-ratio; C: −20 negative → fail"},
		{"mean-sector.json", []string{"--data", "firms.csv", "--index", "sector", "--values", "turnover", "--agg", "mean"},
			"the same contributions: A 104, B 100, C 880/10 = 88"},
		{"median-sector.json", []string{"--data", "firms.csv", "--index", "sector", "--values", "turnover", "--agg", "median"},
			"medians: A (10+10)/2 = 10, B 100, C 100"},
		{"sum-sector-review.json", []string{"--data", "firms.csv", "--index", "sector", "--values", "turnover", "--agg", "sum", "--rules", "rules-review.yaml"},
			"dominance and p-ratio ignored: only C's negative value remains → review"},
		{"sum-sector-unit.json", []string{"--data", "establishments.csv", "--index", "sector", "--values", "turnover", "--agg", "sum", "--unit", "firm"},
			"per firm A: F1 = 900 of 990, (900+10)/990 = 0.92 > 0.9 dominance, 990 − 910 = 80 < 90 p-ratio, n = 10 firms (per row it would pass)"},
	} {
		t.Run(c.golden, func(t *testing.T) {
			r := cli(t, dir, nil, append([]string{"outputcheck"}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			want, err := os.ReadFile(filepath.Join(dir, c.golden))
			if err != nil {
				t.Fatal(err)
			}
			if r.stdout != string(want) {
				t.Errorf("%s\n got %s\nwant %s", c.why, r.stdout, want)
			}
			var doc struct {
				Status string            `json:"status"`
				Cells  []json.RawMessage `json:"cells"`
			}
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			if err := dec.Decode(&doc); err != nil || dec.More() {
				t.Errorf("not exactly one JSON document: %v", err)
			}
		})
	}
}

func TestOutputcheckBadInput(t *testing.T) {
	dir, err := filepath.Abs("testdata/outputcheck")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("sector,turnover\nA,lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--index", "sector"}, "--data and --index are required"},
		{[]string{"--data", "firms.csv"}, "--data and --index are required"},
		{[]string{"--data", "nonexistent.csv", "--index", "sector"}, "nonexistent.csv"},
		{[]string{"--data", "firms.csv", "--index", "region"}, `no column "region"`},
		{[]string{"--data", "firms.csv", "--index", "sector", "--values", "turnover", "--agg", "mode"}, `--agg "mode"`},
		{[]string{"--data", "firms.csv", "--index", "sector", "--agg", "sum"}, "needs --values"},
		{[]string{"--data", "firms.csv", "--index", "sector", "--rules", "bad-rules.yaml"}, "supress"},
		{[]string{"--data", "firms.csv", "--index", "sector", "--rules", "missing.yaml"}, "rules"},
		{[]string{"--data", bad, "--index", "sector", "--values", "turnover", "--agg", "sum"}, `"lots" is not a number`},
		{[]string{"--data", "firms.csv", "--index", "a,b,c"}, "index"},
		{[]string{"--data", "firms.csv", "--index", "sector", "extra"}, "unexpected argument"},
		{[]string{"--data", "firms.csv", "--index", "sector", "--unit", "owner"}, `no column "owner"`},
	} {
		r := cli(t, dir, nil, append([]string{"outputcheck"}, c.args...)...)
		if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q (want it to mention %q)", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
}
