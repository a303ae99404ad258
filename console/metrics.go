package console

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The live metrics are drawn from the hub's own Prometheus registry: the
// console samples it every sampleEvery and keeps the last samples, from
// which it computes rates and latency percentiles over the window. The
// exchange path is not touched: it only increments its counters, as
// without the console.
const (
	sampleEvery = 5 * time.Second
	samplesKept = 120 // ten minutes
)

// sample is one reading of the counters.
type sample struct {
	at        time.Time
	exchanges map[string]float64 // "outcome reason" → count
	buckets   []bucket           // exchange duration, all outcomes
	provErr   map[string]float64 // "service kind" → count
}

type bucket struct{ upper, count float64 }

// sampler keeps the samples.
type sampler struct {
	mu      sync.Mutex
	samples []sample
}

// Run samples the registry until ctx is done (the hub's feature job).
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	c.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.sample()
		}
	}
}

func (c *Console) sample() {
	if c.cfg.Gatherer == nil {
		return
	}
	mfs, err := c.cfg.Gatherer.Gather()
	if err != nil {
		c.log.Warn("console: metrics", "err", err)
	}
	s := sample{at: c.cfg.Now(), exchanges: map[string]float64{}, provErr: map[string]float64{}}
	agg := map[float64]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "crossroads_exchanges_total":
			for _, m := range mf.Metric {
				s.exchanges[label(m, "outcome")+" "+label(m, "reason")] += m.GetCounter().GetValue()
			}
		case "crossroads_provider_errors_total":
			for _, m := range mf.Metric {
				s.provErr[label(m, "service")+" "+label(m, "kind")] += m.GetCounter().GetValue()
			}
		case "crossroads_exchange_duration_seconds":
			for _, m := range mf.Metric {
				for _, b := range m.GetHistogram().GetBucket() {
					agg[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
				agg[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for u, n := range agg {
		s.buckets = append(s.buckets, bucket{u, n})
	}
	sort.Slice(s.buckets, func(i, j int) bool { return s.buckets[i].upper < s.buckets[j].upper })
	c.samp.mu.Lock()
	c.samp.samples = append(c.samp.samples, s)
	if len(c.samp.samples) > samplesKept {
		c.samp.samples = c.samp.samples[len(c.samp.samples)-samplesKept:]
	}
	c.samp.mu.Unlock()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Rate is a rate over the window, by label.
type Rate struct {
	Label    string
	PerSec   float64
	Total    float64
	Outcome  string
	Reason   string
	Service  string
	Kind     string
	Fraction float64 // of the largest, for the bar
}

// Live is the metrics panel.
type Live struct {
	Window        time.Duration
	Exchanges     []Rate
	ProviderErrs  []Rate
	P50, P95, P99 float64 // milliseconds over the window (NaN: no exchange)
	HasLatency    bool
	Samples       int
}

// live computes the panel from the first and last samples.
func (c *Console) live() Live {
	c.samp.mu.Lock()
	ss := append([]sample(nil), c.samp.samples...)
	c.samp.mu.Unlock()
	out := Live{Samples: len(ss)}
	if len(ss) == 0 {
		return out
	}
	first, last := ss[0], ss[len(ss)-1]
	dt := last.at.Sub(first.at).Seconds()
	out.Window = last.at.Sub(first.at).Round(time.Second)
	rates := func(a, b map[string]float64, split func(r *Rate, k string)) []Rate {
		var rs []Rate
		max := 0.0
		for k, v := range b {
			r := Rate{Label: k, Total: v}
			if dt > 0 {
				r.PerSec = (v - a[k]) / dt
			}
			split(&r, k)
			rs = append(rs, r)
			max = math.Max(max, r.Total)
		}
		sort.Slice(rs, func(i, j int) bool {
			return rs[i].Total > rs[j].Total || (rs[i].Total == rs[j].Total && rs[i].Label < rs[j].Label)
		})
		for i := range rs {
			if max > 0 {
				rs[i].Fraction = rs[i].Total / max
			}
		}
		return rs
	}
	out.Exchanges = rates(first.exchanges, last.exchanges, func(r *Rate, k string) { r.Outcome, r.Reason, _ = strings.Cut(k, " ") })
	out.ProviderErrs = rates(first.provErr, last.provErr, func(r *Rate, k string) { r.Service, r.Kind, _ = strings.Cut(k, " ") })
	// Percentiles of the window's exchanges (all time with one sample).
	base := map[float64]float64{}
	if len(ss) > 1 {
		for _, b := range first.buckets {
			base[b.upper] = b.count
		}
	}
	var win []bucket
	for _, b := range last.buckets {
		win = append(win, bucket{b.upper, b.count - base[b.upper]})
	}
	if n := total(win); n > 0 {
		out.HasLatency = true
		out.P50, out.P95, out.P99 = quantile(win, 0.5)*1000, quantile(win, 0.95)*1000, quantile(win, 0.99)*1000
	}
	return out
}

func total(bs []bucket) float64 {
	if len(bs) == 0 {
		return 0
	}
	return bs[len(bs)-1].count // the +Inf bucket (the sample count) is the last
}

// quantile interpolates linearly inside the bucket holding q, as
// Prometheus's histogram_quantile does.
func quantile(bs []bucket, q float64) float64 {
	n := total(bs)
	rank := q * n
	prevUpper, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.upper, 1) || b.count == prevCount {
				return prevUpper
			}
			return prevUpper + (b.upper-prevUpper)*(rank-prevCount)/(b.count-prevCount)
		}
		prevUpper, prevCount = b.upper, b.count
	}
	return prevUpper
}

// metricsSVG draws exchanges per second by outcome over the window: an
// SVG made on the server (no script, no external asset).
func (c *Console) metricsSVG(w http.ResponseWriter, r *http.Request, _ *session) {
	c.samp.mu.Lock()
	ss := append([]sample(nil), c.samp.samples...)
	c.samp.mu.Unlock()
	const width, height, pad = 600.0, 200.0, 30.0
	outcomes := []string{"allowed", "denied", "failed"}
	colours := map[string]string{"allowed": "#1b6e3a", "denied": "#a4262c", "failed": "#6b4c00"}
	series := map[string][]float64{}
	maxRate := 0.0
	for i := 1; i < len(ss); i++ {
		dt := ss[i].at.Sub(ss[i-1].at).Seconds()
		for _, o := range outcomes {
			v := 0.0
			if dt > 0 {
				v = (sumOutcome(ss[i].exchanges, o) - sumOutcome(ss[i-1].exchanges, o)) / dt
			}
			series[o] = append(series[o], v)
			maxRate = math.Max(maxRate, v)
		}
	}
	if maxRate == 0 {
		maxRate = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="t"><title id="t">Exchanges per second by outcome, last %d samples</title>`, width, height, len(ss))
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#ffffff"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`, width, height, pad, height-pad, width-pad, height-pad)
	fmt.Fprintf(&b, `<text x="2" y="%.0f" font-size="11" fill="#222">%.1f/s</text><text x="2" y="%.0f" font-size="11" fill="#222">0</text>`, pad, maxRate, height-pad)
	for i, o := range outcomes {
		pts := series[o]
		if len(pts) > 0 {
			var p strings.Builder
			for j, v := range pts {
				x := pad + (width-2*pad)*float64(j)/math.Max(1, float64(len(pts)-1))
				y := height - pad - (height-2*pad)*v/maxRate
				fmt.Fprintf(&p, "%.1f,%.1f ", x, y)
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colours[o], strings.TrimSpace(p.String()))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" fill="%s">%s</text>`, pad+float64(i)*90, height-8, colours[o], o)
	}
	b.WriteString(`</svg>`)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write([]byte(b.String()))
}

func sumOutcome(m map[string]float64, outcome string) float64 {
	t := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, outcome+" ") {
			t += v
		}
	}
	return t
}
