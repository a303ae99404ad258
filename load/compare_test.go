package load

import (
	"strings"
	"testing"
	"time"
)

func TestCompareMath(t *testing.T) {
	lat := func(p50, p99, p999 time.Duration) Latency {
		return Latency{Count: 1000, P50: p50, P99: p99, P999: p999}
	}
	res := map[string]*Report{
		TargetHub: {Mode: ModeClosed, Concurrency: 64, Protocol: "HTTP/1.1", Duration: 10 * time.Second, Warmup: 2 * time.Second,
			Throughput: 600, Latency: lat(2*time.Millisecond, 7*time.Millisecond, 12*time.Millisecond),
			Errors: map[string]int64{ErrTimeout: 2}, Status: map[int]int64{200: 900, 403: 50, 503: 3}, Unsent: 1},
		TargetBare:   {Throughput: 1000, Latency: lat(time.Millisecond, 3*time.Millisecond, 4*time.Millisecond)},
		TargetDirect: {Throughput: 1500, Latency: lat(800*time.Microsecond, 2*time.Millisecond, 3*time.Millisecond)},
		"hub-h2":     {Throughput: 450, Latency: lat(time.Millisecond, 1500*time.Microsecond, 4*time.Millisecond)},
	}
	c := &Comparison{Results: res, Machine: Machine{Cores: 2, GOMAXPROCS: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"},
		Command: "crossroads bench --duration 10s"}

	if p, ok := c.PercentOf(TargetHub); !ok || p != 60 {
		t.Errorf("hub %% of bare = %v %v", p, ok)
	}
	if d, ok := c.AddedP99(TargetHub); !ok || d != 5*time.Millisecond {
		t.Errorf("hub added p99 = %v %v", d, ok)
	}
	if d, _ := c.AddedP99("hub-h2"); d != -500*time.Microsecond {
		t.Errorf("hub-h2 added p99 = %v", d)
	}
	if _, ok := c.PercentOf("absent"); ok {
		t.Error("absent run has a percentage")
	}

	md := c.Markdown()
	lines := strings.Split(md, "\n")
	want := []string{
		"| target | req/s | p50 | p99 | p99.9 | errors | % of bare proxy throughput | added p99 vs direct |",
		"|---|---:|---:|---:|---:|---:|---:|---:|",
		"| hub | 600 | 2.00ms | 7.00ms | 12.00ms | 6 | 60 % | +5.00ms |",
		"| bare-proxy | 1000 | 1.00ms | 3.00ms | 4.00ms | 0 | 100 % | +1.00ms |",
		"| direct | 1500 | 800µs | 2.00ms | 3.00ms | 0 | 150 % | +0µs |",
		"| hub-h2 | 450 | 1.00ms | 1.50ms | 4.00ms | 0 | 45 % | −500µs |",
	}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("line %d:\n got %q\nwant %q\n%s", i, lines[min(i, len(lines)-1)], w, md)
		}
	}
	for _, s := range []string{"2 cores, GOMAXPROCS=2, go1.26.8 linux/amd64", "`crossroads bench --duration 10s`", "closed mode, 64 workers"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}

	// Without baselines the relative columns are blank, not wrong.
	only := Compare(map[string]*Report{TargetHub: res[TargetHub]})
	if !strings.Contains(only, "| hub | 600 | 2.00ms | 7.00ms | 12.00ms | 6 | – | – |") {
		t.Errorf("without baselines:\n%s", only)
	}
}
