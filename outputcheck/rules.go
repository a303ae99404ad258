// Package outputcheck applies statistical disclosure control to result
// tables before they leave a secure processing environment, with the rules
// statistical agencies and ACRO (the SACRO project's checker) use: minimum
// cell count (threshold), dominance (N-K rule), p-ratio (p% rule), zeros,
// negative values and missing values; and it refuses results that, combined
// with what was released earlier for the same permit, isolate a small group
// (differencing, see History).
//
// The verdict is pass, fail (the cells to suppress are listed) or review (a
// person must decide; see Rules.Actions). docs/outputcheck.md gives the
// formulas and their defaults.
package outputcheck

import (
	"bytes"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads/aggregate"
)

// Rule names a disclosure-control rule; the names appear in results.
type Rule string

// The rules.
const (
	Threshold    Rule = "threshold"    // 0 < n < Rules.Threshold
	Dominance    Rule = "dominance"    // largest DominanceN contributions > DominanceK of the total
	PRatio       Rule = "p-ratio"      // total − two largest < PRatio × largest
	Zero         Rule = "zero"         // n = 0: a combination nobody has (class disclosure)
	Negative     Rule = "negative"     // a contribution below zero (dominance and p-ratio unreliable)
	Missing      Rule = "missing"      // a row of the cell has no value
	Differencing Rule = "differencing" // combined with an earlier release, isolates fewer than Threshold rows
)

// AllRules lists the rules in the order results name them.
var AllRules = []Rule{Threshold, Dominance, PRatio, Zero, Negative, Missing, Differencing}

// Action is what a rule's breach does to the verdict.
type Action string

// The actions.
const (
	Fail   Action = "fail"   // the cell is suppressed; the verdict is fail
	Review Action = "review" // the cell is released only after manual review; the verdict is at least review
	Ignore Action = "ignore" // the rule is off
)

// Status is a result's verdict.
type Status string

// The verdicts, from best to worst.
const (
	Pass         Status = "pass"
	StatusReview Status = "review"
	StatusFail   Status = "fail"
)

// Rules are the disclosure-control parameters of a permit. Start from
// DefaultRules (ParseRules does): a zero Rules is invalid.
type Rules struct {
	// Threshold is the minimum number of contributing rows in a cell.
	Threshold int64 `json:"threshold" yaml:"threshold"`
	// DominanceN and DominanceK: a cell fails when its DominanceN largest
	// contributions make up more than DominanceK (a fraction) of its total.
	DominanceN int     `json:"dominance_n" yaml:"dominance_n"`
	DominanceK float64 `json:"dominance_k" yaml:"dominance_k"`
	// PRatio (a fraction): a cell fails when its total less its two largest
	// contributions is below PRatio times the largest.
	PRatio float64 `json:"p_ratio" yaml:"p_ratio"`
	// Actions overrides the default action of a rule (DefaultActions).
	Actions map[Rule]Action `json:"actions,omitempty" yaml:"actions,omitempty"`
}

// Defaults, as ACRO's.
const (
	DefaultThreshold  = 10
	DefaultDominanceN = 2
	DefaultDominanceK = 0.9
	DefaultPRatio     = 0.1
)

// DefaultActions: threshold, dominance, p-ratio, zero and differencing
// fail; negative and missing values send the result to review (as ACRO:
// suppression is not applied on their account, a person judges).
var DefaultActions = map[Rule]Action{
	Threshold: Fail, Dominance: Fail, PRatio: Fail, Zero: Fail, Differencing: Fail,
	Negative: Review, Missing: Review,
}

// DefaultRules returns threshold 10, N-K 2/90 %, p-ratio 10 % and DefaultActions.
func DefaultRules() Rules {
	return Rules{Threshold: DefaultThreshold, DominanceN: DefaultDominanceN, DominanceK: DefaultDominanceK, PRatio: DefaultPRatio}
}

// ErrInvalidRules is wrapped by the errors of ParseRules and Validate.
var ErrInvalidRules = errors.New("invalid disclosure-control rules")

// Action returns the action in force for rule.
func (r Rules) Action(rule Rule) Action {
	if a, ok := r.Actions[rule]; ok {
		return a
	}
	return DefaultActions[rule]
}

// Validate checks the parameters: threshold >= 1, 1 <= dominance_n <=
// aggregate.TopContributions, 0 < dominance_k <= 1, 0 <= p_ratio < 1, and
// actions only for known rules and with a known action.
func (r Rules) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRules, fmt.Sprintf(format, a...))
	}
	if r.Threshold < 1 {
		return bad("threshold: want at least 1, got %d (to disable it, set its action to ignore)", r.Threshold)
	}
	if r.DominanceN < 1 || r.DominanceN > aggregate.TopContributions {
		return bad("dominance_n: want 1 to %d, got %d", aggregate.TopContributions, r.DominanceN)
	}
	if !(r.DominanceK > 0 && r.DominanceK <= 1) {
		return bad("dominance_k: want a fraction in (0, 1], got %v", r.DominanceK)
	}
	if !(r.PRatio >= 0 && r.PRatio < 1) {
		return bad("p_ratio: want a fraction in [0, 1), got %v", r.PRatio)
	}
	for rule, a := range r.Actions {
		if _, ok := DefaultActions[rule]; !ok {
			return bad("actions: unknown rule %q", rule)
		}
		switch a {
		case Fail, Review, Ignore:
		default:
			return bad("actions: %s: want fail, review or ignore, got %q", rule, a)
		}
	}
	return nil
}

// ParseRules reads rules as YAML (or JSON, which is YAML) on top of
// DefaultRules: settings left out keep their defaults; unknown settings are
// refused. Example:
//
//	threshold: 5
//	dominance_n: 3
//	dominance_k: 0.8
//	p_ratio: 0.05
//	actions: {zero: ignore, missing: fail}
func ParseRules(b []byte) (Rules, error) {
	r := DefaultRules()
	if len(bytes.TrimSpace(b)) > 0 {
		d := yaml.NewDecoder(bytes.NewReader(b))
		d.KnownFields(true)
		if err := d.Decode(&r); err != nil {
			return Rules{}, fmt.Errorf("%w: %v", ErrInvalidRules, err)
		}
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	return r, nil
}
