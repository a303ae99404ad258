package outputcheck

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/aggregate"
)

var zeroTime time.Time

// History is what was released under one permit, for the differencing
// check. It is plain data (JSON), for the caller to persist; it is not safe
// for concurrent use.
type History struct {
	Releases []Release `json:"releases"`
}

// Release is one released table, reduced to what differencing needs: its
// population (dataset and filters), its grouping, and per cell the labels
// and the number of rows (or that it was suppressed). No values.
type Release struct {
	ID      string             `json:"id"`
	At      time.Time          `json:"at"`
	Dataset string             `json:"dataset"`
	Filters []aggregate.Filter `json:"filters,omitempty"` // canonical, sorted by String
	Group   []string           `json:"group"`             // group-by columns (index and columns), sorted
	Cells   []ReleasedCell     `json:"cells"`
}

// ReleasedCell is one cell of a Release.
type ReleasedCell struct {
	Labels     []string `json:"labels"`               // aligned with Release.Group
	Rows       int64    `json:"rows"`                 // n + missing; 0 when suppressed
	Suppressed bool     `json:"suppressed,omitempty"` // the cell's numbers were not released
}

// Finding is a disclosure by differencing.
type Finding struct {
	Release string `json:"release"` // the earlier release it combines with
	// Kind is "filter" (same grouping, populations nested by one condition),
	// "margin" (a total and its sub-totals) or "repeat" (the same query,
	// answered differently: the dataset changed in between).
	Kind   string   `json:"kind"`
	Group  []string `json:"group"`  // the grouping of the cell below
	Labels []string `json:"labels"` // the cell (for margin, the total's cell)
	// Difference is the number of rows isolated: those in one population and
	// not the other, or the total less its released sub-totals.
	Difference int64  `json:"difference"`
	Detail     string `json:"detail"`
}

// NewRelease reduces a checked table (t from q, res = Check of t) to a Release.
func NewRelease(id string, at time.Time, q aggregate.Query, t aggregate.Table, res Result) Release {
	rel := Release{ID: id, At: at, Dataset: q.Dataset, Filters: canonicalFilters(q.Filters)}
	names := append(append([]string{}, t.Index...), t.Columns...)
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return names[order[i]] < names[order[j]] })
	for _, i := range order {
		rel.Group = append(rel.Group, names[i])
	}
	for i, c := range t.Cells {
		all := append(append([]string{}, c.Index...), c.Column...)
		labels := make([]string, len(order))
		for j, k := range order {
			if k < len(all) {
				labels[j] = all[k]
			}
		}
		rc := ReleasedCell{Labels: labels, Rows: c.Rows()}
		if res.Refused || i >= len(res.Cells) || res.Cells[i].Suppress {
			rc = ReleasedCell{Labels: labels, Suppressed: true}
		}
		rel.Cells = append(rel.Cells, rc)
	}
	return rel
}

// Add records a release (after it has been released).
func (h *History) Add(r Release) { h.Releases = append(h.Releases, r) }

func canonicalFilters(fs []aggregate.Filter) []aggregate.Filter {
	out := make([]aggregate.Filter, 0, len(fs))
	seen := map[string]bool{}
	for _, f := range fs {
		c := f.Canonical()
		if s := c.String(); !seen[s] {
			seen[s] = true
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Check compares a candidate release with every earlier release of the
// same dataset and reports the combinations that isolate a small group:
//
//   - filter: same grouping, and one population nested in the other by one
//     condition (one has an extra filter, or one filter is replaced by a
//     stricter one on the same column: a narrower numeric bound, a subset
//     of an in list, eq of a value the other admits). For each cell
//     released in both, d = rows(wider) − rows(narrower); a finding when
//     0 < d < Threshold, or d = 0 while the zero rule is on (everyone in
//     the cell meets the condition).
//
//   - margin: same filters, and one grouping a strict subset of the other
//     (a total and its sub-totals). For each released cell of the coarser
//     table, with k sub-total cells suppressed and S the rows of those
//     released: a finding when k = 1 (the margin gives the suppressed cell
//     exactly, count and, for the same statistic, value) or when k > 1 and
//     the residual total − S is below Threshold.
//
//   - repeat: the same filters and grouping, asked again after the dataset
//     changed (rows added or removed): for each cell released both times, a
//     finding when 0 < |d| < Threshold (the rows that came or went).
//
// At most MaxFindings findings are returned: one is enough to refuse.
//
// It does not catch combinations of three or more releases, populations
// differing by more than one condition or overlapping without nesting,
// groupings that nest only through the data (e.g. town within region),
// other datasets or permits, or what noisy (differentially private)
// releases reveal; see docs/outputcheck.md.
func (h History) Check(r Rules, cand Release) []Finding {
	var out []Finding
	for _, old := range h.Releases {
		if len(out) >= MaxFindings {
			return out[:MaxFindings]
		}
		if old.Dataset != cand.Dataset {
			continue
		}
		sameGroup := equalStrings(old.Group, cand.Group)
		sameFilters := equalFilters(old.Filters, cand.Filters)
		switch {
		case sameGroup && sameFilters:
			out = append(out, repeatFindings(r, old.ID, old, cand)...)
		case sameGroup && !sameFilters:
			// A condition on a grouping column isolates no one: each cell
			// is then wholly in or wholly out of the narrower population.
			if cond, col, ok := narrower(cand.Filters, old.Filters); ok && indexOf(cand.Group, col) < 0 {
				out = append(out, filterFindings(r, old.ID, old, cand, cond)...)
			} else if cond, col, ok := narrower(old.Filters, cand.Filters); ok && indexOf(cand.Group, col) < 0 {
				out = append(out, filterFindings(r, old.ID, cand, old, cond)...)
			}
		case sameFilters && !sameGroup:
			if subset(old.Group, cand.Group) {
				out = append(out, marginFindings(r, old.ID, old, cand)...)
			} else if subset(cand.Group, old.Group) {
				out = append(out, marginFindings(r, old.ID, cand, old)...)
			}
		}
	}
	if len(out) > MaxFindings {
		out = out[:MaxFindings]
	}
	return out
}

// MaxFindings bounds the findings History.Check returns.
const MaxFindings = 100

func repeatFindings(r Rules, id string, old, cand Release) []Finding {
	rows := map[string]ReleasedCell{}
	for _, c := range cand.Cells {
		rows[labelKey(c.Labels)] = c
	}
	var out []Finding
	for _, o := range old.Cells {
		n, ok := rows[labelKey(o.Labels)]
		if !ok || o.Suppressed || n.Suppressed {
			continue
		}
		d := n.Rows - o.Rows
		if d < 0 {
			d = -d
		}
		if d > 0 && d < r.Threshold {
			out = append(out, Finding{Release: id, Kind: "repeat", Group: old.Group, Labels: o.Labels, Difference: d,
				Detail: fmt.Sprintf("cell %q had %d rows, now %d: the dataset changed by %d rows there", o.Labels, o.Rows, n.Rows, d)})
			if len(out) >= MaxFindings {
				break
			}
		}
	}
	return out
}

func filterFindings(r Rules, id string, wide, narrow Release, cond string) []Finding {
	rows := map[string]ReleasedCell{}
	for _, c := range narrow.Cells {
		rows[labelKey(c.Labels)] = c
	}
	var out []Finding
	for _, w := range wide.Cells {
		n, ok := rows[labelKey(w.Labels)]
		if !ok || w.Suppressed || n.Suppressed {
			continue
		}
		d := w.Rows - n.Rows
		if (d > 0 && d < r.Threshold) || (d == 0 && w.Rows > 0 && r.Action(Zero) != Ignore) {
			out = append(out, Finding{Release: id, Kind: "filter", Group: wide.Group, Labels: w.Labels, Difference: d,
				Detail: fmt.Sprintf("%d of %d rows in cell %q do not meet %s", d, w.Rows, w.Labels, cond)})
			if len(out) >= MaxFindings {
				break
			}
		}
	}
	return out
}

func marginFindings(r Rules, id string, coarse, fine Release) []Finding {
	pos := make([]int, len(coarse.Group))
	for i, g := range coarse.Group {
		pos[i] = indexOf(fine.Group, g)
	}
	type sub struct {
		rows       int64
		suppressed int
	}
	groups := map[string]*sub{}
	for _, c := range fine.Cells {
		proj := make([]string, len(pos))
		for i, p := range pos {
			proj[i] = c.Labels[p]
		}
		k := labelKey(proj)
		s := groups[k]
		if s == nil {
			s = &sub{}
			groups[k] = s
		}
		if c.Suppressed {
			s.suppressed++
		} else {
			s.rows += c.Rows
		}
	}
	var out []Finding
	for _, c := range coarse.Cells {
		s := groups[labelKey(c.Labels)]
		if c.Suppressed || s == nil || s.suppressed == 0 {
			continue
		}
		d := c.Rows - s.rows
		if s.suppressed == 1 || d < r.Threshold {
			out = append(out, Finding{Release: id, Kind: "margin", Group: coarse.Group, Labels: c.Labels, Difference: d,
				Detail: fmt.Sprintf("total %d of cell %q less its released sub-totals by %s leaves %d rows in %d suppressed cell(s)",
					c.Rows, c.Labels, strings.Join(fine.Group, ","), d, s.suppressed)})
			if len(out) >= MaxFindings {
				break
			}
		}
	}
	return out
}

// narrower reports whether filter set a selects a subset of b's rows by
// exactly one condition, and names it and its column.
func narrower(a, b []aggregate.Filter) (string, string, bool) {
	inB := map[string]bool{}
	for _, f := range b {
		inB[f.String()] = true
	}
	inA := map[string]bool{}
	var onlyA, onlyB []aggregate.Filter
	for _, f := range a {
		inA[f.String()] = true
		if !inB[f.String()] {
			onlyA = append(onlyA, f)
		}
	}
	for _, f := range b {
		if !inA[f.String()] {
			onlyB = append(onlyB, f)
		}
	}
	switch {
	case len(onlyA) == 1 && len(onlyB) == 0:
		return onlyA[0].String(), onlyA[0].Column, true
	case len(onlyA) == 1 && len(onlyB) == 1 && implies(onlyA[0], onlyB[0]):
		return onlyA[0].String() + " (rather than " + onlyB[0].String() + ")", onlyA[0].Column, true
	}
	return "", "", false
}

// implies reports whether every row meeting f meets g (canonical filters).
func implies(f, g aggregate.Filter) bool {
	if f.Column != g.Column {
		return false
	}
	vals := func(f aggregate.Filter) ([]string, bool) { // f as a finite set of values
		switch f.Op {
		case aggregate.Eq:
			return []string{f.Value}, true
		case aggregate.In:
			return f.Values, true
		}
		return nil, false
	}
	if fv, ok := vals(f); ok {
		for _, v := range fv {
			if !admits(g, v) {
				return false
			}
		}
		return true
	}
	a, _ := num(f.Value)
	b, ok := num(g.Value)
	if !ok {
		return false
	}
	switch f.Op {
	case aggregate.Lt, aggregate.Le:
		switch g.Op {
		case aggregate.Lt:
			return a < b || (a == b && f.Op == aggregate.Lt)
		case aggregate.Le:
			return a <= b
		}
	case aggregate.Gt, aggregate.Ge:
		switch g.Op {
		case aggregate.Gt:
			return a > b || (a == b && f.Op == aggregate.Gt)
		case aggregate.Ge:
			return a >= b
		}
	}
	return false
}

// admits reports whether a field equal to v meets g.
func admits(g aggregate.Filter, v string) bool {
	switch g.Op {
	case aggregate.Eq:
		return v == g.Value
	case aggregate.Ne:
		return v != g.Value
	case aggregate.In:
		i := sort.SearchStrings(g.Values, v)
		return i < len(g.Values) && g.Values[i] == v
	}
	x, ok := num(v)
	b, ok2 := num(g.Value)
	if !ok || !ok2 {
		return false
	}
	switch g.Op {
	case aggregate.Lt:
		return x < b
	case aggregate.Le:
		return x <= b
	case aggregate.Gt:
		return x > b
	case aggregate.Ge:
		return x >= b
	}
	return false
}

func num(s string) (float64, bool) {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return x, err == nil && !math.IsNaN(x) && !math.IsInf(x, 0)
}

func labelKey(l []string) string {
	n := 0
	for _, s := range l {
		n += len(s) + 4
	}
	b := make([]byte, 0, n)
	for _, s := range l {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return string(b)
}

func equalStrings(a, b []string) bool {
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

func equalFilters(a, b []aggregate.Filter) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// subset: every name of a is in b, and b has more.
func subset(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for _, x := range a {
		if indexOf(b, x) < 0 {
			return false
		}
	}
	return true
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}
