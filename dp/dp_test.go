package dp

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/aggregate"
)

var at = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func table(t *testing.T, csv string, q aggregate.Query) aggregate.Table {
	t.Helper()
	q.Dataset = "d.csv"
	tab, err := aggregate.Run(context.Background(), strings.NewReader(csv), q, aggregate.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestBudgetRefusedWhenSpent(t *testing.T) {
	// ε = 1: 0.4 + 0.4 spent, 0.2 left; a third 0.4 is refused, 0.2 fits
	// exactly (0.4 + 0.4 + 0.2 = 1 up to rounding), then anything is refused.
	b, err := NewBudget(1, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := b.Spend("q", at, 0.4, 0); err != nil {
			t.Fatal(err)
		}
	}
	before := b
	before.Ledger = append([]Charge{}, b.Ledger...)
	err = b.Spend("q3", at, 0.4, 0)
	var ex *ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, ErrExhausted) {
		t.Fatalf("err %v, want *ExhaustedError", err)
	}
	if math.Abs(ex.RemainingEpsilon-0.2) > 1e-9 || ex.Epsilon != 0.4 {
		t.Errorf("%+v", ex)
	}
	if !reflect.DeepEqual(b, before) {
		t.Error("a refused spend changed the budget")
	}
	if err := b.Spend("q4", at, 0.2, 0); err != nil {
		t.Fatalf("exact remainder refused: %v", err)
	}
	if err := b.Spend("q5", at, 1e-6, 0); !errors.Is(err, ErrExhausted) {
		t.Errorf("after spending all: %v", err)
	}
	// δ is a budget too.
	b, _ = NewBudget(10, 1e-6)
	if err := b.Spend("g", at, 1, 1e-6); err != nil {
		t.Fatal(err)
	}
	if err := b.Spend("g2", at, 1, 1e-7); !errors.Is(err, ErrExhausted) {
		t.Errorf("δ spent: %v", err)
	}
	if len(b.Ledger) != 1 || b.Ledger[0].Label != "g" {
		t.Errorf("ledger %+v", b.Ledger)
	}
}

func TestReleaseRefusedWhenSpent(t *testing.T) {
	tab := table(t, "g\n"+strings.Repeat("x\n", 100), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Count})
	b, _ := NewBudget(1, 0)
	p := Params{Mechanism: Laplace, Epsilon: 0.5}
	for i := 0; i < 2; i++ {
		if _, err := Count(&b, "c", at, tab, p); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Count(&b, "c", at, tab, p)
	if !errors.Is(err, ErrExhausted) || r.Cells != nil {
		t.Errorf("third release: %v %+v", err, r)
	}
}

func TestBudgetJSON(t *testing.T) {
	b, _ := NewBudget(2, 1e-5)
	_ = b.Spend("first", at, 0.5, 1e-6)
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back Budget
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, back) {
		t.Errorf("round trip %+v vs %+v", b, back)
	}
	// Restored, it still refuses past the total.
	if err := back.Spend("x", at, 1.6, 0); !errors.Is(err, ErrExhausted) {
		t.Errorf("restored budget: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range [][2]float64{{0, 0}, {-1, 0}, {math.Inf(1), 0}, {1, 1}, {1, -0.1}, {math.NaN(), 0}} {
		if _, err := NewBudget(c[0], c[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewBudget(%v, %v): %v", c[0], c[1], err)
		}
	}
	b, _ := NewBudget(1, 0.1)
	if err := b.Spend("x", at, 0, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("spend 0: %v", err)
	}
	count := table(t, "g\nx\n", aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Count})
	sum := table(t, "g,v\nx,1\n", aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v"})
	try := func(f func(*Budget, string, time.Time, aggregate.Table, Params) (Release, error), tab aggregate.Table, p Params) error {
		_, err := f(&b, "x", at, tab, p)
		return err
	}
	for name, err := range map[string]error{
		"laplace with δ":         try(Count, count, Params{Mechanism: Laplace, Epsilon: 0.1, Delta: 0.01}),
		"gaussian without δ":     try(Count, count, Params{Mechanism: Gaussian, Epsilon: 0.1}),
		"unknown mechanism":      try(Count, count, Params{Mechanism: "exp", Epsilon: 0.1}),
		"no ε":                   try(Count, count, Params{Mechanism: Laplace}),
		"sum as count":           try(Count, sum, Params{Mechanism: Laplace, Epsilon: 0.1}),
		"count as sum":           try(Sum, count, Params{Mechanism: Laplace, Epsilon: 0.1}),
		"sum without bounds":     try(Sum, sum, Params{Mechanism: Laplace, Epsilon: 0.1}),
		"negative contributions": try(Count, count, Params{Mechanism: Laplace, Epsilon: 0.1, MaxContributions: -1}),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	perUnit := table(t, "g,u\nx,1\n", aggregate.Query{Index: []string{"g"}, Unit: "u", Statistic: aggregate.Count})
	if err := try(Count, perUnit, Params{Mechanism: Laplace, Epsilon: 0.1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("per-unit table: %v", err)
	}
	if b.SpentEpsilon != 0 {
		t.Errorf("invalid requests spent %v", b.SpentEpsilon)
	}
}

// meanVar draws n releases of one cell and returns the mean and variance of
// the noisy value.
func meanVar(t *testing.T, n int, f func(b *Budget) (Release, error)) (float64, float64) {
	t.Helper()
	b, _ := NewBudget(float64(n)*10, 0.5)
	var s, s2 float64
	for i := 0; i < n; i++ {
		r, err := f(&b)
		if err != nil {
			t.Fatal(err)
		}
		v := r.Cells[0].Value
		s += v
		s2 += v * v
	}
	m := s / float64(n)
	return m, s2/float64(n) - m*m
}

func TestNoiseIsSane(t *testing.T) {
	// 1000 rows in one cell. Laplace with ε = 1, sensitivity 1: scale 1/ε,
	// variance 2/ε² = 2. Over 4000 draws the mean's standard error is
	// √(2/4000) ≈ 0.022; allow 0.2 (9 standard errors). The sample variance
	// should be within 25 % of 2 (the library's discrete Laplace has about
	// the continuous one's variance at this scale).
	tab := table(t, "g\n"+strings.Repeat("x\n", 1000), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Count})
	m, v := meanVar(t, 4000, func(b *Budget) (Release, error) {
		return Count(b, "c", at, tab, Params{Mechanism: Laplace, Epsilon: 1})
	})
	if math.Abs(m-1000) > 0.2 || math.Abs(v-2) > 0.5 {
		t.Errorf("laplace count: mean %v (want 1000), variance %v (want 2)", m, v)
	}
	// ε = 0.1: variance 2/0.01 = 200; the noise is larger, as it should be.
	_, v = meanVar(t, 4000, func(b *Budget) (Release, error) {
		return Count(b, "c", at, tab, Params{Mechanism: Laplace, Epsilon: 0.1})
	})
	if math.Abs(v-200) > 50 {
		t.Errorf("laplace count ε=0.1: variance %v, want 200", v)
	}
	// A count from a person with up to 3 rows: L0 = L∞ = 3, L1 = 9, variance
	// 2 × 9² = 162 at ε = 1.
	_, v = meanVar(t, 4000, func(b *Budget) (Release, error) {
		return Count(b, "c", at, tab, Params{Mechanism: Laplace, Epsilon: 1, MaxContributions: 3})
	})
	if math.Abs(v-162) > 40 {
		t.Errorf("laplace count, 3 rows a person: variance %v, want 162", v)
	}
	// Gaussian sum: values in [0, 10], true sum 1000 × 5 = 5000. The mean
	// within 6 standard errors, and a spread that is neither nil nor huge.
	sum := table(t, "g,v\n"+strings.Repeat("x,5\n", 1000), aggregate.Query{Index: []string{"g"}, Statistic: aggregate.Sum, Value: "v", Bounds: &aggregate.Bounds{Lower: 0, Upper: 10}})
	m, v = meanVar(t, 2000, func(b *Budget) (Release, error) {
		return Sum(b, "s", at, sum, Params{Mechanism: Gaussian, Epsilon: 1, Delta: 1e-5})
	})
	sd := math.Sqrt(v)
	if math.Abs(m-5000) > 6*sd/math.Sqrt(2000) || sd < 1 || sd > 200 {
		t.Errorf("gaussian sum: mean %v (want 5000), sd %v", m, sd)
	}
}

func TestReleaseHasNoCounts(t *testing.T) {
	tab := table(t, "g,h\nx,a\nx,b\ny,a\n", aggregate.Query{Index: []string{"g"}, Columns: []string{"h"}, Statistic: aggregate.Count})
	b, _ := NewBudget(1, 0)
	r, err := Count(&b, "c", at, tab, Params{Mechanism: Laplace, Epsilon: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 4 || r.Epsilon != 1 || r.Mechanism != Laplace {
		t.Errorf("%+v", r)
	}
	raw, _ := json.Marshal(r)
	if strings.Contains(string(raw), `"n"`) || strings.Contains(string(raw), "top") {
		t.Errorf("release carries counts or contributions: %s", raw)
	}
	for _, c := range r.Cells {
		if c.Value < 0 {
			t.Errorf("negative count %v", c.Value)
		}
	}
}
