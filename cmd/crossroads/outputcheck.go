package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crossroads-hub/crossroads/aggregate"
	"github.com/crossroads-hub/crossroads/outputcheck"
)

func init() {
	register("outputcheck", "check a table offline with the secure-processing output rules", runOutputcheck)
}

// outputcheckCell and outputcheckResult are the command's JSON output.
type outputcheckCell struct {
	Index  []string           `json:"index"`
	Column []string           `json:"column"`
	Value  float64            `json:"value"`
	N      int64              `json:"n"`
	Fails  []outputcheck.Rule `json:"fails"`
}

type outputcheckResult struct {
	Status outputcheck.Status `json:"status"`
	Cells  []outputcheckCell  `json:"cells"`
}

func runOutputcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("outputcheck", flag.ContinueOnError)
	data := fs.String("data", "", "the dataset: a CSV file with a header row")
	index := fs.String("index", "", "group-by column(s) of the table's rows: a or a,b")
	columns := fs.String("columns", "", "group-by column of the table's columns (optional)")
	values := fs.String("values", "", "value column (optional; without it the statistic is count)")
	agg := fs.String("agg", "", "statistic of the value column: count, sum, mean or median (default count)")
	unit := fs.String("unit", "", "column identifying the contributor (person, firm): contributions and n per unit (optional)")
	rulesFile := fs.String("rules", "", "disclosure-control rules, YAML (optional; defaults: threshold 10, dominance 2/0.9, p-ratio 0.1)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: crossroads outputcheck --data FILE.csv --index a[,b] [--columns c]
       [--values x --agg count|sum|mean|median] [--unit u] [--rules FILE.yaml]

Builds the table a secure-processing workspace would (the same packages:
aggregate and outputcheck) and checks it with the output rules: threshold,
dominance, p-ratio, zero, negative, missing. Prints one JSON document:

  {"status":"pass|fail|review","cells":[{"index":["East"],"column":["F"],
    "value":229,"n":229,"fails":["threshold"]}]}

Rows with a missing label are dropped. With --unit, the rows of one
contributor in a cell make one contribution and n counts contributors. Exit status 0 whatever the verdict;
non-zero only on bad input. The rules file (see docs/outputcheck.md):

  threshold: 10
  dominance_n: 2
  dominance_k: 0.9
  p_ratio: 0.1
  actions: {zero: fail, negative: review, missing: review}

`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(os.Stderr, "crossroads outputcheck: unexpected argument %q\n", pos[0])
		fs.Usage()
		return errUsage
	}
	if *data == "" || *index == "" {
		fmt.Fprintln(os.Stderr, "crossroads outputcheck: --data and --index are required")
		fs.Usage()
		return errUsage
	}
	q := aggregate.Query{Dataset: filepath.Base(*data), Index: splitList(*index), Columns: splitList(*columns),
		Statistic: aggregate.Count, Value: *values, Unit: *unit}
	if *agg != "" {
		q.Statistic = aggregate.Statistic(*agg)
		switch q.Statistic {
		case aggregate.Count, aggregate.Sum, aggregate.Mean, aggregate.Median:
		default:
			return fmt.Errorf("--agg %q: want count, sum, mean or median", *agg)
		}
		if *values == "" && q.Statistic != aggregate.Count {
			return fmt.Errorf("--agg %s needs --values", *agg)
		}
	}
	if err := q.Validate(); err != nil {
		return err
	}
	rules := outputcheck.DefaultRules()
	if *rulesFile != "" {
		b, err := os.ReadFile(*rulesFile)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		if rules, err = outputcheck.ParseRules(b); err != nil {
			return fmt.Errorf("rules %s: %w", *rulesFile, err)
		}
	}
	f, err := os.Open(*data)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	t, err := aggregate.Run(ctx, f, q, aggregate.Limits{})
	if err != nil {
		return fmt.Errorf("%s: %w", *data, err)
	}
	res, err := outputcheck.Check(rules, t)
	if err != nil {
		return err
	}
	out := outputcheckResult{Status: res.Status, Cells: make([]outputcheckCell, 0, len(res.Cells))}
	for _, c := range res.Cells {
		out.Cells = append(out.Cells, outputcheckCell{Index: c.Index, Column: c.Column, Value: c.Value, N: c.N, Fails: c.Fails})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// splitList splits a comma-separated flag value, dropping spaces around names.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}
