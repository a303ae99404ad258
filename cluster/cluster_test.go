package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/cluster"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/internal/testbin"
	"github.com/crossroads-hub/crossroads/store/mysqllog/mysqltest"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

func haproxy(t *testing.T) {
	t.Helper()
	if _, err := cluster.HAProxyPath(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skipf("%v: the multi-node test needs it", err)
	}
}

// TestThreeNodes: three 'serve' processes on one PostgreSQL database and
// one shared log in MariaDB, behind HAProxy (TLS passthrough). Load runs
// through the load balancer; one node is killed with SIGKILL and
// restarted mid-run; a certificate revoked through one node is refused by
// every node within a second. Afterwards the log verifies, records =
// leaves, every receipted answer has its record and none is duplicated.
func TestThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test: not in -short")
	}
	haproxy(t)
	pg := pgtest.New(t).DSN
	logDB := mysqltest.New(t)
	bin := testbin.Build(t)
	ctx := context.Background()
	dir := t.TempDir()
	c, err := cluster.Start(ctx, cluster.Options{Binary: bin, Dir: dir, DatabaseURL: pg, LogDatabase: logDB, Nodes: 3, People: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Close()
		if t.Failed() {
			for i := range 3 {
				b, _ := os.ReadFile(filepath.Join(dir, "node-"+string(rune('0'+i))+".log"))
				t.Logf("node %d log (tail):\n%s", i, tail(b, 3000))
			}
		}
	}()
	load := c.StartLoad(ctx, 6)
	wait := func(d time.Duration) { time.Sleep(d) }
	wait(2 * time.Second)
	if load.OK() == 0 {
		t.Fatal("no exchange succeeded through the load balancer")
	}
	for i := range 3 { // the load goes through every node
		if n := c.Records(ctx, i); n <= 0 {
			t.Errorf("node %d committed %v records: the load balancer does not spread the load", i, n)
		}
	}
	// Kill the integrator: another node must take the log over.
	victim := c.Integrator(ctx)
	if victim < 0 {
		t.Fatal("no node integrates the shared log")
	}
	if err := c.KillNode(victim); err != nil {
		t.Fatal(err)
	}
	before := load.OK()
	wait(time.Second)
	if load.OK() == before {
		t.Errorf("no exchange succeeded while node %d was down", victim)
	}
	if next := c.Integrator(ctx); next < 0 || next == victim {
		t.Errorf("after node %d (the integrator) was killed, the integrator is %d", victim, next)
	}
	if err := c.StartNode(ctx, victim); err != nil {
		t.Fatal(err)
	}
	took, err := c.RefusedWithin(ctx, victim, demo.ONEM, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range took {
		if d < 0 {
			t.Errorf("node %d still accepts the certificate revoked through node %d after 1 s", i, victim)
		} else {
			t.Logf("node %d refuses the revoked certificate after %v", i, d.Round(time.Millisecond))
		}
	}
	wait(2 * time.Second)
	answers := load.Stop()
	t.Logf("%d answers (%d 200), %d requests without an answer (the killed node's)", len(answers), load.OK(), load.Errors())
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, answers)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("records %d, integrated %d, log size %d, receipted answers %d", rep.Records, rep.Integrated, rep.LogSize, rep.Receipted)
	for _, p := range rep.Problems {
		t.Error(p)
	}
	if rep.Receipted == 0 || rep.Records < rep.Receipted {
		t.Errorf("records %d, receipted answers %d", rep.Records, rep.Receipted)
	}

	// The bench mode on the same cluster: 1, 2 and 3 nodes in one run.
	rows, err := c.Bench(ctx, []int{1, 2, 3}, 4, 300*time.Millisecond, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Exchanges == 0 {
			t.Errorf("bench with %d nodes: no exchange", r.Nodes)
		}
	}
	t.Log(cluster.BenchMarkdown(rows, 4, ""))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
