// Package dp releases counts and sums with differential privacy, using the
// Laplace and Gaussian mechanisms of github.com/google/differential-privacy
// (v3.0.0), and keeps a permit's (ε, δ) privacy budget.
//
// Accounting is basic (sequential) composition: every release spends its ε
// and δ, and the budget is spent when the sums reach the permit's totals;
// a release that would pass them is refused (*ExhaustedError, matching
// ErrExhausted) before any noise is drawn. Within one table the cells are
// disjoint (every row falls in exactly one cell), so a table costs one ε
// if a person contributes at most one row; with MaxContributions = m, the
// noise is calibrated for a person in up to m cells with up to m rows each
// (L0 = m, L∞ = m for counts, m × max(|lower|, |upper|) for sums).
//
// The labels of the cells are those observed in the data: they must be
// public (declared in the permit, e.g. the regions of a country), as a
// label present only for one person is disclosed by its presence.
package dp

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/crossroads-hub/crossroads/aggregate"
)

// Mechanism names a noise mechanism.
type Mechanism string

// The mechanisms. Gaussian needs δ > 0; Laplace uses δ = 0.
const (
	Laplace  Mechanism = "laplace"
	Gaussian Mechanism = "gaussian"
)

// ErrExhausted is matched (errors.Is) by *ExhaustedError.
var ErrExhausted = errors.New("privacy budget exhausted")

// ErrInvalid is wrapped by errors about parameters and tables.
var ErrInvalid = errors.New("invalid differential-privacy request")

// ExhaustedError is a refused spend: the request and what remained.
type ExhaustedError struct {
	Epsilon, Delta                   float64 // requested
	RemainingEpsilon, RemainingDelta float64
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("privacy budget exhausted: asked ε=%g δ=%g, %g and %g remain",
		e.Epsilon, e.Delta, e.RemainingEpsilon, e.RemainingDelta)
}

// Is matches ErrExhausted.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Budget is a permit's privacy budget and what was spent of it: plain data
// (JSON) for the caller to persist; not safe for concurrent use (load,
// spend and store it in one transaction).
type Budget struct {
	Epsilon      float64  `json:"epsilon"`
	Delta        float64  `json:"delta"`
	SpentEpsilon float64  `json:"spent_epsilon"`
	SpentDelta   float64  `json:"spent_delta"`
	Ledger       []Charge `json:"ledger,omitempty"`
}

// Charge is one spend.
type Charge struct {
	Label   string    `json:"label"`
	At      time.Time `json:"at"`
	Epsilon float64   `json:"epsilon"`
	Delta   float64   `json:"delta"`
}

// slack absorbs float rounding when spends add up to the budget exactly.
const slack = 1e-12

// NewBudget returns an unspent budget of ε > 0 and 0 <= δ < 1.
func NewBudget(epsilon, delta float64) (Budget, error) {
	b := Budget{Epsilon: epsilon, Delta: delta}
	return b, b.validate()
}

func (b Budget) validate() error {
	if !(b.Epsilon > 0) || math.IsInf(b.Epsilon, 0) {
		return fmt.Errorf("%w: budget ε must be positive and finite, got %v", ErrInvalid, b.Epsilon)
	}
	if !(b.Delta >= 0 && b.Delta < 1) {
		return fmt.Errorf("%w: budget δ must be in [0, 1), got %v", ErrInvalid, b.Delta)
	}
	if !(b.SpentEpsilon >= 0) || !(b.SpentDelta >= 0) {
		return fmt.Errorf("%w: spent budget must not be negative", ErrInvalid)
	}
	return nil
}

// Remaining returns the ε and δ left (never below zero).
func (b Budget) Remaining() (epsilon, delta float64) {
	return math.Max(0, b.Epsilon-b.SpentEpsilon), math.Max(0, b.Delta-b.SpentDelta)
}

// Spend charges ε and δ to the budget, or refuses with *ExhaustedError and
// leaves it unchanged.
func (b *Budget) Spend(label string, at time.Time, epsilon, delta float64) error {
	if err := b.validate(); err != nil {
		return err
	}
	if !(epsilon > 0) || math.IsInf(epsilon, 0) || !(delta >= 0 && delta < 1) {
		return fmt.Errorf("%w: spend ε=%v δ=%v", ErrInvalid, epsilon, delta)
	}
	re, rd := b.Remaining()
	if epsilon > re+slack || delta > rd+slack {
		return &ExhaustedError{Epsilon: epsilon, Delta: delta, RemainingEpsilon: re, RemainingDelta: rd}
	}
	b.SpentEpsilon += epsilon
	b.SpentDelta += delta
	b.Ledger = append(b.Ledger, Charge{Label: label, At: at, Epsilon: epsilon, Delta: delta})
	return nil
}

// Params of a noisy release.
type Params struct {
	Mechanism Mechanism `json:"mechanism" yaml:"mechanism"`
	Epsilon   float64   `json:"epsilon" yaml:"epsilon"`
	Delta     float64   `json:"delta,omitempty" yaml:"delta,omitempty"`
	// MaxContributions is the most rows one person has in the dataset
	// (default 1).
	MaxContributions int64 `json:"max_contributions,omitempty" yaml:"max_contributions,omitempty"`
}

// Cell is a noisy cell: labels and value, no count of rows.
type Cell struct {
	Index  []string `json:"index"`
	Column []string `json:"column"`
	Value  float64  `json:"value"`
}

// Release is a noisy table.
type Release struct {
	Dataset   string              `json:"dataset"`
	Statistic aggregate.Statistic `json:"statistic"`
	Value     string              `json:"value,omitempty"`
	Index     []string            `json:"index"`
	Columns   []string            `json:"columns,omitempty"`
	Mechanism Mechanism           `json:"mechanism"`
	Epsilon   float64             `json:"epsilon"`
	Delta     float64             `json:"delta"`
	Cells     []Cell              `json:"cells"`
}

func (p Params) check() (noise.Noise, int64, error) {
	m := p.MaxContributions
	if m == 0 {
		m = 1
	}
	if m < 0 {
		return nil, 0, fmt.Errorf("%w: max_contributions %d", ErrInvalid, m)
	}
	if !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0) {
		return nil, 0, fmt.Errorf("%w: ε must be positive and finite", ErrInvalid)
	}
	switch p.Mechanism {
	case Laplace:
		if p.Delta != 0 {
			return nil, 0, fmt.Errorf("%w: the Laplace mechanism takes δ = 0", ErrInvalid)
		}
		return noise.Laplace(), m, nil
	case Gaussian:
		if !(p.Delta > 0 && p.Delta < 1) {
			return nil, 0, fmt.Errorf("%w: the Gaussian mechanism needs 0 < δ < 1", ErrInvalid)
		}
		return noise.Gaussian(), m, nil
	}
	return nil, 0, fmt.Errorf("%w: mechanism %q: want laplace or gaussian", ErrInvalid, p.Mechanism)
}

// Count releases t's counts (aggregate.Cell.N) with
// noise, after charging p's ε and δ to b (refused with *ExhaustedError if
// they would pass it; then nothing is drawn). t must be a count table.
func Count(b *Budget, label string, at time.Time, t aggregate.Table, p Params) (Release, error) {
	if t.Statistic != aggregate.Count {
		return Release{}, fmt.Errorf("%w: Count needs a count table, got %s", ErrInvalid, t.Statistic)
	}
	return release(b, label, at, t, p)
}

// Sum releases t's sums with noise, after charging p's ε and δ to b. t must
// be a sum table computed with Bounds (they bound one row's contribution).
func Sum(b *Budget, label string, at time.Time, t aggregate.Table, p Params) (Release, error) {
	if t.Statistic != aggregate.Sum {
		return Release{}, fmt.Errorf("%w: Sum needs a sum table, got %s", ErrInvalid, t.Statistic)
	}
	if t.Bounds == nil {
		return Release{}, fmt.Errorf("%w: a noisy sum needs bounds on the value column", ErrInvalid)
	}
	return release(b, label, at, t, p)
}

func release(b *Budget, label string, at time.Time, t aggregate.Table, p Params) (Release, error) {
	if t.Unit != "" {
		return Release{}, fmt.Errorf("%w: per-unit tables are not supported (a unit's contribution is unbounded); use max_contributions", ErrInvalid)
	}
	nz, m, err := p.check()
	if err != nil {
		return Release{}, err
	}
	if err := b.Spend(label, at, p.Epsilon, p.Delta); err != nil {
		return Release{}, err
	}
	out := Release{Dataset: t.Dataset, Statistic: t.Statistic, Value: t.Value, Index: t.Index, Columns: t.Columns,
		Mechanism: p.Mechanism, Epsilon: p.Epsilon, Delta: p.Delta, Cells: make([]Cell, 0, len(t.Cells))}
	for _, c := range t.Cells {
		var v float64
		if t.Statistic == aggregate.Count {
			n, err := nz.AddNoiseInt64(c.N, m, m, p.Epsilon, p.Delta)
			if err != nil {
				return Release{}, fmt.Errorf("dp: noise: %w", err)
			}
			v = float64(max(n, 0)) // post-processing: a count is not negative
		} else {
			linf := float64(m) * math.Max(math.Abs(t.Bounds.Lower), math.Abs(t.Bounds.Upper))
			if linf == 0 {
				linf = math.SmallestNonzeroFloat64
			}
			v, err = nz.AddNoiseFloat64(c.Sum, m, linf, p.Epsilon, p.Delta)
			if err != nil {
				return Release{}, fmt.Errorf("dp: noise: %w", err)
			}
		}
		out.Cells = append(out.Cells, Cell{Index: c.Index, Column: c.Column, Value: v})
	}
	return out, nil
}
