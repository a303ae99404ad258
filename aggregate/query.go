// Package aggregate runs declarative aggregate queries over tabular datasets
// (CSV with a header row) and returns tables of statistics — per cell the
// value, the number of contributing rows and what an output checker needs
// (the largest contributions, counts of missing and negative values) — but
// never the rows themselves.
//
// A query is JSON:
//
//	{"dataset": "visits.csv",
//	 "filters": [{"column": "age", "op": "ge", "value": 18},
//	             {"column": "region", "op": "in", "values": ["East", "West"]}],
//	 "index": ["region"], "columns": ["sex"],
//	 "statistic": "mean", "value": "cost", "bounds": {"lower": 0, "upper": 5000}}
//
// The table has one cell per combination of an observed index tuple and an
// observed column tuple (as a cross-tabulation does: combinations that
// never occur are cells with n = 0), in a deterministic order.
//
// With a unit column (Query.Unit), contributions are per unit — as
// statistical agencies apply the threshold and dominance rules to
// contributors, not records.
//
// Memory: count, sum and mean keep a fixed-size accumulator per cell
// (TopContributions values and a few counters), so a query over any number
// of rows uses O(cells) memory, bounded by Limits.MaxCells. Median and
// quantile keep every contributing value: O(rows) memory, bounded by
// Limits.MaxValues (8 bytes a value); a unit column keeps one entry per
// distinct unit in each cell, bounded by the same limit. One CSV line may not
// exceed Limits.MaxLineBytes. A query past a limit fails with ErrTooLarge
// rather than growing.
package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Op is a filter comparison.
type Op string

// The filter comparisons. eq, ne and in compare text exactly (after trimming
// spaces); lt, le, gt and ge compare numbers (a row whose field is not a
// number does not match). A missing field (see IsMissing) matches no
// condition, ne included.
const (
	Eq Op = "eq"
	Ne Op = "ne"
	Lt Op = "lt"
	Le Op = "le"
	Gt Op = "gt"
	Ge Op = "ge"
	In Op = "in"
)

// Statistic is what a cell holds.
type Statistic string

// The statistics. Count needs no value column (with one, it counts the rows
// whose value is present); the others need one.
const (
	Count    Statistic = "count"
	Sum      Statistic = "sum"
	Mean     Statistic = "mean"
	Median   Statistic = "median"
	Quantile Statistic = "quantile" // with Query.Q in [0, 1]; linear interpolation (R type 7)
)

// Limits on a query's shape, set by the caller (not by the query).
const (
	MaxFilters    = 32
	MaxInValues   = 1000
	MaxIndex      = 2 // group-by columns as index (rows of the table)
	MaxColumns    = 1 // group-by columns as columns of the table
	MaxQueryBytes = 64 << 10
)

// Filter is one condition on a row; a query's filters are all required (AND).
type Filter struct {
	Column string   `json:"column" yaml:"column"`
	Op     Op       `json:"op" yaml:"op"`
	Value  string   `json:"value,omitempty" yaml:"value,omitempty"`   // every op but in
	Values []string `json:"values,omitempty" yaml:"values,omitempty"` // in
}

// Bounds clamp each value into [Lower, Upper] before any statistic; needed
// for differentially private sums (they bound one row's contribution).
type Bounds struct {
	Lower float64 `json:"lower" yaml:"lower"`
	Upper float64 `json:"upper" yaml:"upper"`
}

// Query is a declarative aggregate query.
type Query struct {
	Dataset   string    `json:"dataset" yaml:"dataset"`
	Filters   []Filter  `json:"filters,omitempty" yaml:"filters,omitempty"`
	Index     []string  `json:"index" yaml:"index"`
	Columns   []string  `json:"columns,omitempty" yaml:"columns,omitempty"`
	Statistic Statistic `json:"statistic" yaml:"statistic"`
	Value     string    `json:"value,omitempty" yaml:"value,omitempty"`
	Q         float64   `json:"q,omitempty" yaml:"q,omitempty"`
	Bounds    *Bounds   `json:"bounds,omitempty" yaml:"bounds,omitempty"`
	// Unit optionally names the column identifying the contributor (a
	// person, an enterprise). With it, the rows of one unit in a cell make
	// one contribution (their values summed), n counts distinct units, and
	// every statistic is over the units' contributions (count: units; mean:
	// per unit). Rows without a unit are dropped.
	Unit string `json:"unit,omitempty" yaml:"unit,omitempty"`
}

// ErrInvalidQuery is wrapped by every error of ParseQuery and Validate.
var ErrInvalidQuery = errors.New("invalid query")

// UnmarshalJSON accepts a filter's value (and values) as JSON strings,
// numbers or booleans; all are kept as text.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var raw struct {
		Column string            `json:"column"`
		Op     Op                `json:"op"`
		Value  json.RawMessage   `json:"value"`
		Values []json.RawMessage `json:"values"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil {
		return err
	}
	*f = Filter{Column: raw.Column, Op: raw.Op}
	if len(raw.Value) > 0 {
		s, err := literal(raw.Value)
		if err != nil {
			return fmt.Errorf("filter on %q: value: %w", raw.Column, err)
		}
		f.Value = s
	}
	for _, v := range raw.Values {
		s, err := literal(v)
		if err != nil {
			return fmt.Errorf("filter on %q: values: %w", raw.Column, err)
		}
		f.Values = append(f.Values, s)
	}
	return nil
}

func literal(m json.RawMessage) (string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(m))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %s", m)
}

// ParseQuery decodes one JSON query (unknown fields refused) and validates it.
func ParseQuery(b []byte) (Query, error) {
	if len(b) > MaxQueryBytes {
		return Query{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidQuery, MaxQueryBytes)
	}
	var q Query
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&q); err != nil {
		return Query{}, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	if d.More() {
		return Query{}, fmt.Errorf("%w: more than one JSON value", ErrInvalidQuery)
	}
	if err := q.Validate(); err != nil {
		return Query{}, err
	}
	return q, nil
}

func validName(s string) bool {
	return s != "" && len(s) <= 256 && strings.TrimSpace(s) == s && !strings.ContainsAny(s, "\x00\n\r")
}

// Validate reports whether q is well formed: a dataset; 1–2 index and 0–1
// column group-by columns, all distinct; a known statistic with the value
// column it needs; well-formed filters (numeric ops with a numeric value,
// in with 1–1000 values); finite bounds with lower <= upper.
func (q Query) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidQuery, fmt.Sprintf(format, a...))
	}
	if !validName(q.Dataset) {
		return bad("dataset: want a name")
	}
	if len(q.Index) < 1 || len(q.Index) > MaxIndex {
		return bad("index: want 1 to %d columns, got %d", MaxIndex, len(q.Index))
	}
	if len(q.Columns) > MaxColumns {
		return bad("columns: want at most %d, got %d", MaxColumns, len(q.Columns))
	}
	seen := map[string]bool{}
	for _, c := range append(append([]string{}, q.Index...), q.Columns...) {
		if !validName(c) {
			return bad("group-by column %q: not a column name", c)
		}
		if seen[c] {
			return bad("group-by column %q named twice", c)
		}
		seen[c] = true
	}
	switch q.Statistic {
	case Count:
	case Sum, Mean, Median, Quantile:
		if q.Value == "" {
			return bad("statistic %s needs a value column", q.Statistic)
		}
	default:
		return bad("statistic %q: want count, sum, mean, median or quantile", q.Statistic)
	}
	if q.Unit != "" && !validName(q.Unit) {
		return bad("unit: %q is not a column name", q.Unit)
	}
	if q.Value != "" && !validName(q.Value) {
		return bad("value: %q is not a column name", q.Value)
	}
	if q.Statistic == Quantile {
		if !(q.Q >= 0 && q.Q <= 1) {
			return bad("q: want a fraction in [0, 1], got %v", q.Q)
		}
	} else if q.Q != 0 {
		return bad("q: only with statistic quantile")
	}
	if q.Bounds != nil {
		if q.Value == "" {
			return bad("bounds: need a value column")
		}
		l, u := q.Bounds.Lower, q.Bounds.Upper
		if math.IsNaN(l) || math.IsNaN(u) || math.IsInf(l, 0) || math.IsInf(u, 0) || l > u {
			return bad("bounds: want finite lower <= upper")
		}
	}
	if len(q.Filters) > MaxFilters {
		return bad("filters: at most %d", MaxFilters)
	}
	for i, f := range q.Filters {
		if err := f.validate(); err != nil {
			return bad("filter %d: %v", i, err)
		}
	}
	return nil
}

func (f Filter) validate() error {
	if !validName(f.Column) {
		return fmt.Errorf("column %q: not a column name", f.Column)
	}
	switch f.Op {
	case Eq, Ne:
		if f.Values != nil {
			return fmt.Errorf("op %s takes value, not values", f.Op)
		}
	case Lt, Le, Gt, Ge:
		if f.Values != nil {
			return fmt.Errorf("op %s takes value, not values", f.Op)
		}
		if _, ok := number(f.Value); !ok {
			return fmt.Errorf("op %s needs a number, got %q", f.Op, f.Value)
		}
	case In:
		if f.Value != "" {
			return fmt.Errorf("op in takes values, not value")
		}
		if len(f.Values) < 1 || len(f.Values) > MaxInValues {
			return fmt.Errorf("op in needs 1 to %d values", MaxInValues)
		}
	default:
		return fmt.Errorf("op %q: want eq, ne, lt, le, gt, ge or in", f.Op)
	}
	return nil
}

// Canonical is a filter's normal form: the value trimmed, in's values sorted
// and deduplicated. Two filters with equal canonical forms select the same rows.
func (f Filter) Canonical() Filter {
	c := Filter{Column: f.Column, Op: f.Op, Value: strings.TrimSpace(f.Value)}
	if f.Op == In {
		vs := make([]string, 0, len(f.Values))
		for _, v := range f.Values {
			vs = append(vs, strings.TrimSpace(v))
		}
		sort.Strings(vs)
		c.Values = compactStrings(vs)
	}
	if n, ok := number(c.Value); ok && f.Op != Eq && f.Op != Ne {
		c.Value = strconv.FormatFloat(n, 'g', -1, 64)
	}
	return c
}

// String is the canonical filter as text, e.g. age ge 18 or region in [East West].
func (f Filter) String() string {
	c := f.Canonical()
	if c.Op == In {
		return fmt.Sprintf("%s in %q", c.Column, c.Values)
	}
	return fmt.Sprintf("%s %s %q", c.Column, c.Op, c.Value)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// number parses s (trimmed) as a finite float.
func number(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, false
	}
	return n, true
}

var missingWords = [...]string{"na", "n/a", "nan", "null", "none"}

// IsMissing reports whether a field is a missing value: empty (after
// trimming spaces), or NA, N/A, NaN, NULL or None in any case.
func IsMissing(s string) bool {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 0:
		return true
	case 2, 3, 4:
		for _, m := range missingWords {
			if strings.EqualFold(s, m) {
				return true
			}
		}
	}
	return false
}
