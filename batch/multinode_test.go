package batch_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// countingPipeline counts the calls per item path and per node.
type countingPipeline struct {
	fakePipeline
	node  string
	mu    *sync.Mutex
	calls map[string][]string // path → nodes that ran it
}

func (p *countingPipeline) Do(ctx context.Context, req exchange.Request) (exchange.Result, error) {
	p.mu.Lock()
	p.calls[req.Path] = append(p.calls[req.Path], p.node)
	p.mu.Unlock()
	time.Sleep(time.Millisecond) // long enough for the nodes to interleave
	return p.fakePipeline.Do(ctx, req)
}

// TestTwoNodesOnPostgres: two hub nodes on one PostgreSQL run one batch
// between them; every item runs exactly once, both nodes take part.
func TestTwoNodesOnPostgres(t *testing.T) {
	dsn := pgtest.New(t).DSN
	ctx := context.Background()
	var mu sync.Mutex
	calls := map[string][]string{}
	audit := &fakeAudit{}
	var services []*batch.Service
	for _, node := range []string{"node-1", "node-2"} {
		st, err := postgres.OpenBatch(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		pipe := &countingPipeline{fakePipeline: fakePipeline{inFlight: map[string]int{}, maxInFlight: map[string]int{}}, node: node, mu: &mu, calls: calls}
		s := batch.New(batch.Config{Store: st, Pipeline: pipe, Directory: testDirectory, Audit: audit, Options: batch.Options{Poll: 5 * time.Millisecond}})
		services = append(services, s)
		t.Cleanup(func() { s.Close() })
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { s.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	e := &env{svc: services[0], audit: audit, certs: map[string]*x509.Certificate{}}
	const n = 200
	p := submit(t, e, "ocmw", items(n, readItem))
	got := await(t, e, "ocmw", p.ID)
	if got.Done != n || got.Allowed != n {
		t.Fatalf("progress %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	byNode := map[string]int{}
	for i := range n {
		path := fmt.Sprintf("/x/p%d", i)
		if len(calls[path]) != 1 {
			t.Fatalf("item %d ran %d times: %v", i+1, len(calls[path]), calls[path])
		}
		byNode[calls[path][0]]++
	}
	t.Logf("items per node: %v", byNode)
	if len(byNode) != 2 {
		t.Errorf("one node did all the work: %v", byNode)
	}
}
