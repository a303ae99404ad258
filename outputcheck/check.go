package outputcheck

import (
	"github.com/crossroads-hub/crossroads/aggregate"
)

// CellResult is the verdict on one cell.
type CellResult struct {
	Index  []string `json:"index"`
	Column []string `json:"column"`
	Value  float64  `json:"value"`
	N      int64    `json:"n"`
	// Fails lists every rule the cell breaches whose action is fail or
	// review (empty when the cell passes), in AllRules order.
	Fails []Rule `json:"fails"`
	// Suppress: a breached rule's action is fail; the cell must not be released.
	Suppress bool `json:"suppress"`
}

// Result is the verdict on a table.
type Result struct {
	// Status is fail when a cell must be suppressed or the result is
	// refused, else review when a cell needs a person's review, else pass.
	Status Status       `json:"status"`
	Cells  []CellResult `json:"cells"`
	// Review: some cell that is not suppressed needs manual review (with
	// status fail, the rest of the table is releasable only after review).
	Review bool `json:"review,omitempty"`
	// Differencing lists what the result would disclose combined with
	// earlier releases (CheckRelease); with Refused, nothing of it may be
	// released, suppressed cells or not.
	Differencing []Finding `json:"differencing,omitempty"`
	Refused      bool      `json:"refused,omitempty"`
}

// tolerance for comparing sums of floats in dominance and p-ratio.
const relTol = 1e-9

// Check applies the rules to every cell of t (Rules are validated first).
//
// Per cell, with n the contributing rows (aggregate.Cell.N), rows = n +
// missing, x1 >= x2 >= … the absolute contributions and X their total:
//
//   - threshold: rows > 0 and n < Threshold;
//   - zero: rows = 0 (a combination of labels nobody has);
//   - dominance (magnitude tables): x1 + … + x_DominanceN > DominanceK × X;
//   - p-ratio (magnitude tables): X − x1 − x2 < PRatio × x1;
//   - negative (magnitude tables): some contribution < 0;
//   - missing (tables with a value column): some row's value is missing.
//
// Dominance and p-ratio on a cell whose contributions are not known
// (aggregate.Cell.Top empty though n > 0, e.g. a redacted table) cannot be
// decided: they are reported for review unless their action is ignore.
func Check(r Rules, t aggregate.Table) (Result, error) {
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{Status: Pass, Cells: make([]CellResult, 0, len(t.Cells))}
	actions := make(map[Rule]Action, len(AllRules))
	for _, rule := range AllRules {
		actions[rule] = r.Action(rule)
	}
	anySuppress := false
	for _, c := range t.Cells {
		cr := CellResult{Index: c.Index, Column: c.Column, Value: c.Value, N: c.N, Fails: []Rule{}}
		review := false
		flag := func(rule Rule, breached, undecidable bool) {
			a := actions[rule]
			if a == Ignore || !(breached || undecidable) {
				return
			}
			cr.Fails = append(cr.Fails, rule)
			if a == Fail && breached {
				cr.Suppress = true
			} else {
				review = true
			}
		}
		rows := c.Rows()
		flag(Threshold, rows > 0 && c.N < r.Threshold, false)
		if t.Magnitude() {
			known := len(c.Top) > 0 || c.N == 0
			flag(Dominance, known && dominated(r, c), !known)
			flag(PRatio, known && pRatio(r, c), !known)
		}
		flag(Zero, rows == 0, false)
		if t.Magnitude() {
			flag(Negative, c.Negative > 0, false)
		}
		if t.Value != "" {
			flag(Missing, c.Missing > 0, false)
		}
		if cr.Suppress {
			anySuppress = true
		} else if review {
			res.Review = true
		}
		res.Cells = append(res.Cells, cr)
	}
	switch {
	case anySuppress:
		res.Status = StatusFail
	case res.Review:
		res.Status = StatusReview
	}
	return res, nil
}

// dominated: the DominanceN largest absolute contributions exceed
// DominanceK of the cell's absolute total.
func dominated(r Rules, c aggregate.Cell) bool {
	if c.AbsSum <= 0 {
		return false
	}
	var top float64
	for i := 0; i < r.DominanceN && i < len(c.Top); i++ {
		top += c.Top[i]
	}
	return top-r.DominanceK*c.AbsSum > relTol*c.AbsSum
}

// pRatio: the total less the two largest contributions (what the second
// largest contributor does not know when estimating the largest) is below
// PRatio of the largest.
func pRatio(r Rules, c aggregate.Cell) bool {
	if c.AbsSum <= 0 || len(c.Top) == 0 {
		return false
	}
	x1 := c.Top[0]
	var x2 float64
	if len(c.Top) > 1 {
		x2 = c.Top[1]
	}
	rest := c.AbsSum - x1 - x2
	return rest < r.PRatio*x1-relTol*c.AbsSum
}

// Released returns what of t may leave once checked: t redacted
// (aggregate.Table.Redact) without its suppressed cells, or no cell at all
// when the result is refused. res must be the result of checking t.
func (res Result) Released(t aggregate.Table) aggregate.Table {
	out := t.Redact()
	out.Cells = out.Cells[:0:0]
	if res.Refused || len(res.Cells) != len(t.Cells) {
		return out
	}
	red := t.Redact()
	for i, c := range res.Cells {
		if !c.Suppress {
			out.Cells = append(out.Cells, red.Cells[i])
		}
	}
	return out
}

// CheckRelease is Check followed by the differencing check of the result
// against h, the permit's earlier releases (History.Check): if a finding is
// made and the differencing action is fail, the result is refused (Status
// fail, Refused, nothing to release); with review, the status is at least
// review. q is the query that produced t (its filters matter).
func CheckRelease(r Rules, h History, q aggregate.Query, t aggregate.Table) (Result, error) {
	res, err := Check(r, t)
	if err != nil {
		return Result{}, err
	}
	a := r.Action(Differencing)
	if a == Ignore {
		return res, nil
	}
	findings := h.Check(r, NewRelease("", zeroTime, q, t, res))
	if len(findings) == 0 {
		return res, nil
	}
	res.Differencing = findings
	if a == Fail {
		res.Status, res.Refused = StatusFail, true
	} else {
		res.Review = true
		if res.Status == Pass {
			res.Status = StatusReview
		}
	}
	return res, nil
}
