package cluster

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// BenchRow is the throughput of one cluster size.
type BenchRow struct {
	Nodes     int
	Exchanges int64 // 200 answers in the measured window
	Seconds   float64
	Errors    int64 // requests without an answer
}

// PerSecond is the throughput.
func (r BenchRow) PerSecond() float64 { return float64(r.Exchanges) / r.Seconds }

// Bench measures, in one run, the exchange throughput through the load
// balancer for each cluster size in sizes: the first n nodes run, the
// others are stopped; clients closed-loop workers send the load.
func (c *Cluster) Bench(ctx context.Context, sizes []int, clients int, warmup, window time.Duration, progress io.Writer) ([]BenchRow, error) {
	if progress == nil {
		progress = io.Discard
	}
	var rows []BenchRow
	for _, n := range sizes {
		if err := c.Use(ctx, n); err != nil {
			return rows, err
		}
		l := c.StartLoad(ctx, clients)
		time.Sleep(warmup)
		ok0, err0, t0 := l.OK(), l.Errors(), time.Now()
		select {
		case <-time.After(window):
		case <-ctx.Done():
			l.Stop()
			return rows, ctx.Err()
		}
		r := BenchRow{Nodes: n, Exchanges: l.OK() - ok0, Errors: l.Errors() - err0, Seconds: time.Since(t0).Seconds()}
		l.Stop()
		rows = append(rows, r)
		fmt.Fprintf(progress, "bench: %d node(s): %.0f exchanges/s\n", n, r.PerSecond())
	}
	return rows, nil
}

// BenchMarkdown renders the rows as a markdown table.
func BenchMarkdown(rows []BenchRow, clients int, command string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Nodes behind HAProxy (TCP, TLS passthrough) on one PostgreSQL and one MariaDB log; %d closed-loop clients;\n", clients)
	fmt.Fprintf(&b, "everything (nodes, databases, load balancer, load, sources) on one machine of %d cores (GOMAXPROCS).\n", runtime.GOMAXPROCS(0))
	if command != "" {
		fmt.Fprintf(&b, "Command: `%s`.\n", command)
	}
	b.WriteString("\n| nodes | exchanges/s (200) | exchanges | window | requests without answer |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %.0f | %d | %.1f s | %d |\n", r.Nodes, r.PerSecond(), r.Exchanges, r.Seconds, r.Errors)
	}
	return b.String()
}
