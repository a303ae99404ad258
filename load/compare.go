package load

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Well-known names of the targets of a comparison.
const (
	TargetHub    = "hub"
	TargetBare   = "bare-proxy"
	TargetDirect = "direct"
)

// Comparison renders several runs side by side.
type Comparison struct {
	Results map[string]*Report
	// Baseline is the run whose throughput is 100 % (default TargetBare).
	Baseline string
	// Direct is the run whose p99 the others are compared to (default
	// TargetDirect).
	Direct  string
	Machine Machine // default CurrentMachine()
	Command string  // default the process's command line
}

// Compare renders results as a markdown table for docs/performance.md,
// taking TargetBare as the throughput baseline and TargetDirect as the
// latency baseline.
func Compare(results map[string]*Report) string {
	return (&Comparison{Results: results}).Markdown()
}

// order lists hub, bare proxy, direct first, then the rest by name.
func (c *Comparison) order() []string {
	known := []string{TargetHub, TargetBare, TargetDirect}
	var out []string
	for _, k := range known {
		if c.Results[k] != nil {
			out = append(out, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Results)) {
		if c.Results[k] != nil && !slices.Contains(known, k) {
			out = append(out, k)
		}
	}
	return out
}

// PercentOf is the throughput of name as a percentage of the baseline's;
// ok is false if either is missing or the baseline has none.
func (c *Comparison) PercentOf(name string) (pct float64, ok bool) {
	r, b := c.Results[name], c.Results[orDefault(c.Baseline, TargetBare)]
	if r == nil || b == nil || b.Throughput <= 0 {
		return 0, false
	}
	return 100 * r.Throughput / b.Throughput, true
}

// AddedP99 is the p99 of name minus the direct run's p99.
func (c *Comparison) AddedP99(name string) (d time.Duration, ok bool) {
	r, b := c.Results[name], c.Results[orDefault(c.Direct, TargetDirect)]
	if r == nil || b == nil || b.Latency.Count == 0 || r.Latency.Count == 0 {
		return 0, false
	}
	return r.Latency.P99 - b.Latency.P99, true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Markdown renders the table with the machine and command line under it.
func (c *Comparison) Markdown() string {
	var b strings.Builder
	b.WriteString("| target | req/s | p50 | p99 | p99.9 | errors | % of bare proxy throughput | added p99 vs direct |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range c.order() {
		r := c.Results[name]
		pct, added := "–", "–"
		if p, ok := c.PercentOf(name); ok {
			pct = fmt.Sprintf("%.0f %%", p)
		}
		if d, ok := c.AddedP99(name); ok {
			sign := "+"
			if d < 0 {
				sign, d = "−", -d
			}
			added = sign + fmtDur(d)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %d | %s | %s |\n", name, r.Throughput,
			fmtDur(r.Latency.P50), fmtDur(r.Latency.P99), fmtDur(r.Latency.P999), r.Failures(), pct, added)
	}
	m := c.Machine
	if m == (Machine{}) {
		m = CurrentMachine()
	}
	cmd := c.Command
	if cmd == "" {
		cmd = strings.Join(os.Args, " ")
	}
	b.WriteString("\nErrors are transport errors, 5xx answers and unsent requests.")
	if r0 := c.first(); r0 != nil {
		conc := fmt.Sprintf("%d workers", r0.Concurrency)
		if r0.Mode == ModeOpen {
			conc = fmt.Sprintf("%.0f req/s offered", r0.Rate)
		}
		fmt.Fprintf(&b, " Load: %s mode, %s, %s, %s after %s warm-up.", r0.Mode, conc, r0.Protocol, r0.Duration, r0.Warmup)
	}
	fmt.Fprintf(&b, "\n\nMachine: %s.\n\nCommand: `%s`\n", m, cmd)
	return b.String()
}

func (c *Comparison) first() *Report {
	if o := c.order(); len(o) > 0 {
		return c.Results[o[0]]
	}
	return nil
}
