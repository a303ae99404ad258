package aggregate

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// TopContributions is how many of a cell's largest contributions (by
// absolute value) a table keeps for the dominance and p-ratio rules; the
// dominance rule's n may not exceed it.
const TopContributions = 10

// Default limits (see Limits).
const (
	DefaultMaxCells     = 100_000
	DefaultMaxValues    = 10_000_000 // 80 MB of values for median and quantile
	DefaultMaxLineBytes = 1 << 20
)

// ErrTooLarge is returned when a query would pass a Limits bound.
var ErrTooLarge = errors.New("query result too large")

// ErrBadData is wrapped by errors about the dataset's content (a malformed
// CSV, a missing column, a value that is not a number).
var ErrBadData = errors.New("bad dataset")

// Limits bound the memory a query may use; zero fields take the defaults.
type Limits struct {
	MaxCells     int   // cells of the table (index tuples × column tuples)
	MaxValues    int64 // values kept for median and quantile, all cells together
	MaxLineBytes int   // bytes between two newlines of the CSV (a record is read whole)
}

func (l Limits) withDefaults() Limits {
	if l.MaxCells <= 0 {
		l.MaxCells = DefaultMaxCells
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultMaxValues
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	return l
}

// Cell is one cell of a table. Top holds individual-level values: it is for
// the output checker inside the hub and must not be released (see Redact).
type Cell struct {
	Index  []string `json:"index"`  // labels of the index columns, in order
	Column []string `json:"column"` // labels of the column columns, in order (empty without columns)
	Value  float64  `json:"value"`  // the statistic; 0 when N is 0
	// N is the number of rows contributing to the statistic: for count
	// without a value column every row of the cell, otherwise the rows whose
	// value is present; with a unit column, the distinct units among them.
	N        int64     `json:"n"`
	Missing  int64     `json:"missing,omitempty"`  // rows of the cell whose value is missing (not in N)
	Negative int64     `json:"negative,omitempty"` // contributions below zero
	Sum      float64   `json:"sum,omitempty"`      // sum of contributions (after Bounds)
	AbsSum   float64   `json:"abs_sum,omitempty"`  // sum of their absolute values
	Top      []float64 `json:"top,omitempty"`      // largest absolute contributions, descending, at most TopContributions

	values []float64 // median, quantile: every contribution, until finished
}

// Rows is the cell's population: its rows whether or not their value is present.
func (c Cell) Rows() int64 { return c.N + c.Missing }

// Table is a query's result. It carries no rows.
type Table struct {
	Dataset   string    `json:"dataset"`
	Statistic Statistic `json:"statistic"`
	Value     string    `json:"value,omitempty"` // value column
	Q         float64   `json:"q,omitempty"`
	Bounds    *Bounds   `json:"bounds,omitempty"`
	Index     []string  `json:"index"`             // index column names
	Columns   []string  `json:"columns,omitempty"` // column column names
	Unit      string    `json:"unit,omitempty"`    // unit column: contributions are per unit
	Cells     []Cell    `json:"cells"`             // index tuples (sorted) × column tuples (sorted), row-major
	// Dropped counts rows left out because a group-by label was missing.
	Dropped int64 `json:"dropped,omitempty"`
}

// Magnitude reports whether the table's statistic is computed from values
// (sum, mean, median, quantile) rather than a count of rows.
func (t Table) Magnitude() bool { return t.Statistic != Count }

// Redact returns a copy of t without the individual-level detail (Top,
// AbsSum, Sum, Negative): what may leave the hub once checked.
func (t Table) Redact() Table {
	r := t
	r.Cells = make([]Cell, len(t.Cells))
	for i, c := range t.Cells {
		r.Cells[i] = Cell{Index: c.Index, Column: c.Column, Value: c.Value, N: c.N, Missing: c.Missing}
	}
	return r
}

type acc struct {
	n, missing, negative int64
	sum, abs             float64
	top                  []float64
	values               []float64
	units                map[string]int // unit → index in unitSums (first-seen order, for deterministic sums)
	unitSums             []float64
}

// unit adds x to unit u's contribution; it reports whether u is new.
func (a *acc) unit(u string, x float64) bool {
	if a.units == nil {
		a.units = map[string]int{}
	}
	if i, ok := a.units[u]; ok {
		a.unitSums[i] += x
		return false
	}
	a.units[strings.Clone(u)] = len(a.unitSums)
	a.unitSums = append(a.unitSums, x)
	return true
}

func (a *acc) add(x float64, keepValues bool) {
	a.n++
	a.sum += x
	if x < 0 {
		a.negative++
	}
	ax := math.Abs(x)
	a.abs += ax
	if keepValues {
		a.values = append(a.values, x)
	}
	a.top = pushTop(a.top, ax)
}

// pushTop inserts v into top (descending, at most TopContributions long).
func pushTop(top []float64, v float64) []float64 {
	if len(top) == TopContributions && v <= top[len(top)-1] {
		return top
	}
	i := sort.Search(len(top), func(i int) bool { return top[i] < v })
	if len(top) < TopContributions {
		top = append(top, 0)
	}
	copy(top[i+1:], top[i:len(top)-1])
	top[i] = v
	return top
}

type labelSet struct {
	ids    map[string]int
	labels [][]string
}

func (s *labelSet) id(key []byte, fields []string) int {
	if id, ok := s.ids[string(key)]; ok {
		return id
	}
	id := len(s.labels)
	s.ids[string(key)] = id
	l := make([]string, len(fields))
	for i, f := range fields {
		l[i] = strings.Clone(f)
	}
	s.labels = append(s.labels, l)
	return id
}

type filterFn func(field string) bool

func compile(f Filter) filterFn {
	c := f.Canonical()
	switch c.Op {
	case Eq:
		return func(s string) bool { return !IsMissing(s) && strings.TrimSpace(s) == c.Value }
	case Ne:
		return func(s string) bool { return !IsMissing(s) && strings.TrimSpace(s) != c.Value }
	case In:
		set := map[string]bool{}
		for _, v := range c.Values {
			set[v] = true
		}
		return func(s string) bool { return !IsMissing(s) && set[strings.TrimSpace(s)] }
	}
	v, _ := number(c.Value)
	cmp := map[Op]func(x float64) bool{
		Lt: func(x float64) bool { return x < v },
		Le: func(x float64) bool { return x <= v },
		Gt: func(x float64) bool { return x > v },
		Ge: func(x float64) bool { return x >= v },
	}[c.Op]
	return func(s string) bool {
		x, ok := number(s)
		return ok && cmp(x)
	}
}

// Run reads a CSV dataset (header row first, comma-separated, RFC 4180
// quoting) from r, streaming, and answers q. Rows whose group-by label is
// missing are dropped (counted in Table.Dropped); rows failing a filter are
// skipped; a value that is present but not a number is an error (ErrBadData),
// as is a column the query names that the header lacks. ctx is checked every
// few thousand rows.
func Run(ctx context.Context, r io.Reader, q Query, lim Limits) (Table, error) {
	if err := q.Validate(); err != nil {
		return Table{}, err
	}
	lim = lim.withDefaults()
	cr := csv.NewReader(&lineLimit{r: r, max: lim.MaxLineBytes})
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return Table{}, fmt.Errorf("%w: no header row", ErrBadData)
	}
	if errors.Is(err, ErrTooLarge) {
		return Table{}, err
	}
	if err != nil {
		return Table{}, fmt.Errorf("%w: header: %v", ErrBadData, err)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			return Table{}, fmt.Errorf("%w: column %q twice in the header", ErrBadData, h)
		}
		col[h] = i
	}
	lookup := func(name string) (int, error) {
		i, ok := col[name]
		if !ok {
			return 0, fmt.Errorf("%w: no column %q", ErrBadData, name)
		}
		return i, nil
	}
	idx := make([]int, len(q.Index))
	for i, c := range q.Index {
		if idx[i], err = lookup(c); err != nil {
			return Table{}, err
		}
	}
	cols := make([]int, len(q.Columns))
	for i, c := range q.Columns {
		if cols[i], err = lookup(c); err != nil {
			return Table{}, err
		}
	}
	unitCol := -1
	if q.Unit != "" {
		if unitCol, err = lookup(q.Unit); err != nil {
			return Table{}, err
		}
	}
	valCol := -1
	if q.Value != "" {
		if valCol, err = lookup(q.Value); err != nil {
			return Table{}, err
		}
	}
	type cond struct {
		col int
		ok  filterFn
	}
	conds := make([]cond, len(q.Filters))
	for i, f := range q.Filters {
		c, err := lookup(f.Column)
		if err != nil {
			return Table{}, err
		}
		conds[i] = cond{c, compile(f)}
	}
	keepValues := q.Statistic == Median || q.Statistic == Quantile
	rows := labelSet{ids: map[string]int{}}
	columns := labelSet{ids: map[string]int{}}
	accs := map[uint64]*acc{}
	var kept, dropped int64
	var key []byte
	rowFields := make([]string, len(idx))
	colFields := make([]string, len(cols))
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if errors.Is(err, ErrTooLarge) {
			return Table{}, err
		}
		if err != nil {
			return Table{}, fmt.Errorf("%w: %v", ErrBadData, err)
		}
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return Table{}, err
			}
		}
		match := true
		for _, c := range conds {
			if !c.ok(rec[c.col]) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		missingLabel := false
		for i, c := range idx {
			rowFields[i] = strings.TrimSpace(rec[c])
			missingLabel = missingLabel || IsMissing(rowFields[i])
		}
		for i, c := range cols {
			colFields[i] = strings.TrimSpace(rec[c])
			missingLabel = missingLabel || IsMissing(colFields[i])
		}
		var unit string
		if unitCol >= 0 {
			unit = strings.TrimSpace(rec[unitCol])
			missingLabel = missingLabel || IsMissing(unit)
		}
		if missingLabel {
			dropped++
			continue
		}
		key = appendKey(key[:0], rowFields)
		ri := rows.id(key, rowFields)
		key = appendKey(key[:0], colFields)
		ci := columns.id(key, colFields)
		if len(rows.labels)*max(len(columns.labels), 1) > lim.MaxCells {
			return Table{}, fmt.Errorf("%w: more than %d cells", ErrTooLarge, lim.MaxCells)
		}
		k := uint64(ri)<<32 | uint64(ci)
		a := accs[k]
		if a == nil {
			a = &acc{}
			accs[k] = a
		}
		if valCol < 0 && unitCol < 0 {
			a.n++
			a.sum++
			a.abs++
			continue
		}
		var field string
		if valCol >= 0 {
			field = rec[valCol]
		}
		if valCol >= 0 && IsMissing(field) {
			a.missing++
			continue
		}
		if valCol < 0 {
			if a.unit(unit, 0) {
				if kept++; kept > lim.MaxValues {
					return Table{}, fmt.Errorf("%w: more than %d units", ErrTooLarge, lim.MaxValues)
				}
			}
			continue
		}
		x, ok := number(field)
		if !ok {
			return Table{}, fmt.Errorf("%w: line %d: column %q: %q is not a number", ErrBadData, line, q.Value, field)
		}
		if q.Bounds != nil {
			x = math.Min(math.Max(x, q.Bounds.Lower), q.Bounds.Upper)
		}
		if unitCol >= 0 {
			if a.unit(unit, x) {
				if kept++; kept > lim.MaxValues {
					return Table{}, fmt.Errorf("%w: more than %d units", ErrTooLarge, lim.MaxValues)
				}
			}
			continue
		}
		if keepValues {
			if kept++; kept > lim.MaxValues {
				return Table{}, fmt.Errorf("%w: more than %d values for %s", ErrTooLarge, lim.MaxValues, q.Statistic)
			}
		}
		if q.Statistic == Count {
			a.n++
			a.sum++
			a.abs++
			if x < 0 {
				a.negative++
			}
			continue
		}
		a.add(x, keepValues)
	}
	if unitCol >= 0 {
		for _, a := range accs {
			for _, v := range a.unitSums {
				if q.Statistic == Count {
					a.n++
					a.sum++
					a.abs++
					continue
				}
				a.add(v, keepValues)
			}
			a.units, a.unitSums = nil, nil
		}
	}
	t := Table{
		Dataset: q.Dataset, Statistic: q.Statistic, Value: q.Value, Q: q.Q, Bounds: q.Bounds,
		Index: append([]string{}, q.Index...), Columns: append([]string{}, q.Columns...), Unit: q.Unit, Dropped: dropped,
	}
	if q.Statistic == Median {
		t.Q = 0.5
	}
	rowOrder := sortedIDs(rows.labels)
	colOrder := sortedIDs(columns.labels)
	if len(cols) == 0 && len(colOrder) == 0 {
		columns.labels = [][]string{{}}
		colOrder = []int{0}
	}
	t.Cells = make([]Cell, 0, len(rowOrder)*len(colOrder))
	for _, ri := range rowOrder {
		for _, ci := range colOrder {
			c := Cell{Index: rows.labels[ri], Column: columns.labels[ci]}
			if a := accs[uint64(ri)<<32|uint64(ci)]; a != nil {
				c.N, c.Missing, c.Negative, c.Sum, c.AbsSum, c.values = a.n, a.missing, a.negative, a.sum, a.abs, a.values
				if valCol >= 0 && q.Statistic != Count {
					c.Top = a.top
				}
			}
			c.Value = value(t.Statistic, t.Q, &c)
			t.Cells = append(t.Cells, c)
		}
	}
	return t, nil
}

// lineLimit fails a read once more than max bytes pass without a newline,
// so that one endless line cannot make the CSV reader buffer it all.
type lineLimit struct {
	r   io.Reader
	max int
	run int // bytes since the last newline
}

var errLongLine = errors.New("line too long")

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for chunk := p[:n]; ; {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			l.run += len(chunk)
			break
		}
		if l.run+i > l.max {
			l.run += i
			break
		}
		l.run, chunk = 0, chunk[i+1:]
	}
	if l.run > l.max {
		return 0, fmt.Errorf("%w: %w (more than %d bytes)", ErrTooLarge, errLongLine, l.max)
	}
	return n, err
}

// appendKey encodes labels unambiguously (length-prefixed).
func appendKey(b []byte, fields []string) []byte {
	for _, f := range fields {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	return b
}

func value(s Statistic, q float64, c *Cell) float64 {
	defer func() { c.values = nil }()
	if c.N == 0 {
		return 0
	}
	switch s {
	case Count:
		return float64(c.N)
	case Sum:
		return c.Sum
	case Mean:
		return c.Sum / float64(c.N)
	}
	sort.Float64s(c.values)
	return quantile(c.values, q)
}

// quantile of sorted xs by linear interpolation between order statistics
// (R type 7, numpy's default): h = (n-1)q.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	h := float64(len(xs)-1) * q
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-lo)*(xs[i+1]-xs[i])
}

// CompareLabels orders label tuples element by element, numerically where
// both labels are numbers, otherwise as text; numbers sort before text.
func CompareLabels(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, xn := number(a[i])
		y, yn := number(b[i])
		switch {
		case xn && yn && x != y:
			if x < y {
				return -1
			}
			return 1
		case xn && !yn:
			return -1
		case !xn && yn:
			return 1
		}
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func sortedIDs(labels [][]string) []int {
	ids := make([]int, len(labels))
	for i := range ids {
		ids[i] = i
	}
	sort.Slice(ids, func(i, j int) bool { return CompareLabels(labels[ids[i]], labels[ids[j]]) < 0 })
	return ids
}

// ErrNotMergeable is returned by Merge for tables that cannot be combined.
var ErrNotMergeable = errors.New("tables cannot be merged")

// Merge combines partial tables of the same query computed on disjoint
// populations (several holders or sites) into the table of their union:
// counts and sums add, means are recomputed from sums and counts, the
// largest contributions of the union are the largest of the parts' (exact,
// as each part keeps its TopContributions largest). Median and quantile are
// not mergeable from partial tables, nor are per-unit tables (a unit may
// appear in several parts): ErrNotMergeable.
func Merge(parts ...Table) (Table, error) {
	if len(parts) == 0 {
		return Table{}, fmt.Errorf("%w: no tables", ErrNotMergeable)
	}
	first := parts[0]
	for _, p := range parts {
		if p.Unit != "" {
			return Table{}, fmt.Errorf("%w: per-unit tables (a unit may contribute to several parts)", ErrNotMergeable)
		}
	}
	switch first.Statistic {
	case Count, Sum, Mean:
	default:
		return Table{}, fmt.Errorf("%w: statistic %s", ErrNotMergeable, first.Statistic)
	}
	out := Table{Dataset: first.Dataset, Statistic: first.Statistic, Value: first.Value, Bounds: first.Bounds,
		Index: first.Index, Columns: first.Columns}
	rows := labelSet{ids: map[string]int{}}
	columns := labelSet{ids: map[string]int{}}
	accs := map[uint64]*Cell{}
	var key []byte
	for _, p := range parts {
		if p.Statistic != first.Statistic || p.Value != first.Value || !equal(p.Index, first.Index) ||
			!equal(p.Columns, first.Columns) || !sameBounds(p.Bounds, first.Bounds) {
			return Table{}, fmt.Errorf("%w: different queries", ErrNotMergeable)
		}
		out.Dropped += p.Dropped
		for _, c := range p.Cells {
			if len(c.Index) != len(first.Index) || len(c.Column) != len(first.Columns) {
				return Table{}, fmt.Errorf("%w: cell labels do not match the columns", ErrNotMergeable)
			}
			key = appendKey(key[:0], c.Index)
			ri := rows.id(key, c.Index)
			key = appendKey(key[:0], c.Column)
			ci := columns.id(key, c.Column)
			k := uint64(ri)<<32 | uint64(ci)
			m := accs[k]
			if m == nil {
				m = &Cell{}
				accs[k] = m
			}
			m.N += c.N
			m.Missing += c.Missing
			m.Negative += c.Negative
			m.Sum += c.Sum
			m.AbsSum += c.AbsSum
			for _, v := range c.Top {
				m.Top = pushTop(m.Top, v)
			}
		}
	}
	for _, ri := range sortedIDs(rows.labels) {
		for _, ci := range sortedIDs(columns.labels) {
			c := Cell{Index: rows.labels[ri], Column: columns.labels[ci]}
			if m := accs[uint64(ri)<<32|uint64(ci)]; m != nil {
				c.N, c.Missing, c.Negative, c.Sum, c.AbsSum, c.Top = m.N, m.Missing, m.Negative, m.Sum, m.AbsSum, m.Top
			}
			c.Value = value(out.Statistic, 0, &c)
			out.Cells = append(out.Cells, c)
		}
	}
	return out, nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameBounds(a, b *Bounds) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
