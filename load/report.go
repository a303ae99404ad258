package load

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Error kinds counted in Report.Errors.
const (
	ErrConnect = "connect" // dialling failed (refused, unreachable)
	ErrTLS     = "tls"     // handshake or certificate failure, alerts from the peer
	ErrTimeout = "timeout" // the per-request timeout or a network timeout expired
	ErrOther   = "other"   // anything else (connection reset, EOF, protocol errors)
)

// NoReason is the key of Report.Reasons for 4xx/5xx answers without a
// problem "reason" member.
const NoReason = "(none)"

// Latency summarises a latency histogram. JSON gives milliseconds.
type Latency struct {
	Count uint64
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

type latencyJSON struct {
	Count  uint64  `json:"count"`
	MinMs  float64 `json:"minMs"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func fromMs(f float64) time.Duration {
	return time.Duration(f * 1e6)
}

// MarshalJSON writes the latencies in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{l.Count, ms(l.Min), ms(l.Mean), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("load: latency: %w", err)
	}
	*l = Latency{j.Count, fromMs(j.MinMs), fromMs(j.MeanMs), fromMs(j.P50Ms), fromMs(j.P90Ms), fromMs(j.P99Ms), fromMs(j.P999Ms), fromMs(j.MaxMs)}
	return nil
}

// Machine describes where a run happened.
type Machine struct {
	Hostname   string `json:"hostname,omitempty"`
	CPU        string `json:"cpu,omitempty"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// CurrentMachine describes this machine and process.
func CurrentMachine() Machine {
	host, _ := os.Hostname()
	return Machine{
		Hostname:   host,
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// cpuModel reads the processor name on Linux; "" elsewhere.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (m Machine) String() string {
	s := fmt.Sprintf("%d cores, GOMAXPROCS=%d, %s %s/%s", m.Cores, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if m.CPU != "" {
		s = m.CPU + ", " + s
	}
	return s
}

// Report is the result of one Run. Only requests whose (intended) send
// time falls in the measurement window, after the warm-up, are counted.
type Report struct {
	Target      string        `json:"target"`
	Mode        Mode          `json:"mode"`
	Protocol    string        `json:"protocol"` // "HTTP/1.1" or "HTTP/2"
	Concurrency int           `json:"concurrency,omitempty"`
	Rate        float64       `json:"rate,omitempty"`
	Connections int           `json:"connections"` // HTTP/1.1 pool size, or HTTP/2 connections
	Warmup      time.Duration `json:"warmupNs"`
	Duration    time.Duration `json:"durationNs"`
	// Elapsed is the measured window: from the end of the warm-up until the
	// last measured request finished (at least Duration unless interrupted).
	Elapsed time.Duration `json:"elapsedNs"`
	Machine Machine       `json:"machine"`

	// Requests counts measured requests sent: Responses + transport errors.
	Requests  int64 `json:"requests"`
	Responses int64 `json:"responses"`
	// Throughput is Responses per second of Elapsed.
	Throughput float64 `json:"throughput"`
	// Latency is from the intended send time (open mode) or the actual send
	// time (closed mode) to the last byte of the response body; responses
	// only, transport errors are not in it.
	Latency Latency `json:"latency"`

	Status     map[int]int64    `json:"status"`            // responses by status code
	Reasons    map[string]int64 `json:"reasons,omitempty"` // 4xx/5xx by problem "reason"
	Unexpected int64            `json:"unexpected"`        // responses whose status was not Request.Expect
	Errors     map[string]int64 `json:"errors,omitempty"`  // transport errors by kind (Err…)

	// Open mode only: sends that left later than LateAfter after their
	// intended time, the delay of sends behind schedule, and requests whose
	// intended time fell in the window but that could not be sent at all
	// before it closed (in-flight cap reached).
	Offered int64    `json:"offered,omitempty"` // intended sends in the window
	Late    int64    `json:"late,omitempty"`
	SendLag *Latency `json:"sendLag,omitempty"`
	Unsent  int64    `json:"unsent,omitempty"`

	// Histogram holds the response latencies (ns) for merging; not in JSON.
	Histogram *Histogram `json:"-"`
}

// ErrorCount is the number of transport errors.
func (r *Report) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// ServerErrors is the number of 5xx responses.
func (r *Report) ServerErrors() int64 {
	var n int64
	for s, c := range r.Status {
		if s >= 500 {
			n += c
		}
	}
	return n
}

// Failures counts what the comparison table reports as errors: transport
// errors, 5xx responses and unsent requests.
func (r *Report) Failures() int64 { return r.ErrorCount() + r.ServerErrors() + r.Unsent }

// JSON marshals the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("load: report: %w", err)
	}
	return b, nil
}

// fmtDur prints a latency with three significant digits in a fixed unit.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d >= time.Millisecond:
		return strconv.FormatFloat(ms(d), 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "µs"
	}
}

func sortedCounts[K int | string](m map[K]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%v: %d", k, m[k])
	}
	return strings.Join(parts, "  ")
}

// Table renders the report as aligned text.
func (r *Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	mode := string(r.Mode)
	switch r.Mode {
	case ModeClosed:
		mode += fmt.Sprintf(", %d workers", r.Concurrency)
	case ModeOpen:
		mode += fmt.Sprintf(", %.0f req/s offered", r.Rate)
	}
	conns := "unbounded"
	if r.Connections > 0 {
		conns = strconv.Itoa(r.Connections)
	}
	fmt.Fprintf(w, "target\t%s\n", r.Target)
	fmt.Fprintf(w, "mode\t%s, %s, connections %s\n", mode, r.Protocol, conns)
	fmt.Fprintf(w, "window\t%s measured after %s warm-up (planned %s)\n", r.Elapsed.Round(time.Millisecond), r.Warmup, r.Duration)
	fmt.Fprintf(w, "machine\t%s\n", r.Machine)
	fmt.Fprintf(w, "requests\t%d sent, %d responses\n", r.Requests, r.Responses)
	fmt.Fprintf(w, "throughput\t%.1f req/s\n", r.Throughput)
	l := r.Latency
	fmt.Fprintf(w, "latency\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n",
		fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), fmtDur(l.Mean))
	fmt.Fprintf(w, "status\t%s\n", sortedCounts(r.Status))
	fmt.Fprintf(w, "reasons\t%s\n", sortedCounts(r.Reasons))
	fmt.Fprintf(w, "unexpected\t%d\n", r.Unexpected)
	fmt.Fprintf(w, "errors\t%s\n", sortedCounts(r.Errors))
	if r.Mode == ModeOpen {
		lag := "-"
		if r.SendLag != nil {
			lag = fmt.Sprintf("p99 %s  max %s", fmtDur(r.SendLag.P99), fmtDur(r.SendLag.Max))
		}
		fmt.Fprintf(w, "late sends\t%d (send lag %s)\n", r.Late, lag)
		fmt.Fprintf(w, "unsent\t%d of %d offered\n", r.Unsent, r.Offered)
	}
	_ = w.Flush() // writes to a strings.Builder cannot fail
	return b.String()
}
