package audit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/internal/syncbuf"
	"github.com/crossroads-hub/crossroads/store/mysqllog"
	"github.com/crossroads-hub/crossroads/store/mysqllog/mysqltest"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// sharedNode is one hub node's trail on the shared PostgreSQL store and
// MariaDB log.
type sharedNode struct {
	trail *audit.Trail
	store *postgres.AuditStore
	log   *mysqllog.Log
}

func openShared(t testing.TB, dir, pgDSN, logDSN string, logw ...io.Writer) *sharedNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if len(logw) > 0 {
		logger = slog.New(slog.NewTextHandler(logw[0], nil))
	}
	ctx := context.Background()
	st, err := postgres.OpenAudit(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := mysqllog.Open(ctx, logDSN)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := audit.Open(ctx, audit.Config{Dir: dir, Store: st, MaxMergeDelay: 400 * time.Millisecond, Logger: logger,
		Log:   &audit.LogStorage{Driver: lg.Driver(), Reader: lg.Reader(), Barrier: lg.Barrier, MinCheckpointInterval: mysqllog.MinCheckpointInterval},
		Lease: st.Lease("audit-log")})
	if err != nil {
		t.Fatal(err)
	}
	n := &sharedNode{trail: tr, store: st, log: lg}
	t.Cleanup(n.close)
	return n
}

func (n *sharedNode) close() {
	if n.trail != nil {
		n.trail.Close(context.Background())
		n.store.Close()
		n.log.Close()
		n.trail = nil
	}
}

// waitIntegrated waits until every node's Check sees n records, all
// integrated, in a log of n leaves, with no problem.
func waitIntegrated(t *testing.T, n int, nodes ...*sharedNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, nd := range nodes {
		for {
			rep, err := nd.trail.Check(context.Background())
			if err == nil && rep.Records == n && rep.Integrated == n && rep.LogSize == int64(n) {
				if len(rep.Problems) > 0 {
					t.Fatalf("check: %v", rep.Problems)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not integrated: %+v, %v", rep, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func integrators(nodes ...*sharedNode) int {
	k := 0
	for _, n := range nodes {
		if n.trail != nil && n.trail.Integrating() {
			k++
		}
	}
	return k
}

// TestSharedLog: two nodes on one PostgreSQL store and one MariaDB log.
// Exactly one integrates; both commit, both serve the log and proofs of
// every record; when the integrator stops, the other takes over and no
// record is lost or in the log twice.
func TestSharedLog(t *testing.T) {
	pgDSN := pgtest.New(t).DSN
	logDSN := mysqltest.New(t)
	dir := t.TempDir() // one key directory for both nodes
	a := openShared(t, dir, pgDSN, logDSN)
	b := openShared(t, dir, pgDSN, logDSN)

	var wg sync.WaitGroup
	for i, n := range []*sharedNode{a, b} {
		wg.Go(func() { commitParallel(t, n.trail, i*1000, 60) })
	}
	wg.Wait()
	waitIntegrated(t, 120, a, b)
	if k := integrators(a, b); k != 1 {
		t.Fatalf("%d nodes integrate, want exactly 1", k)
	}
	// Every node proves every record, in the one log.
	for _, n := range []*sharedNode{a, b} {
		for _, id := range []string{testRecord(0).ExchangeID, testRecord(1000).ExchangeID} {
			if _, err := n.trail.Proof(context.Background(), id); err != nil {
				t.Fatalf("proof of %s: %v", id, err)
			}
			row, err := n.store.Get(context.Background(), id)
			if err != nil || row.Log != a.trail.Origin() || row.Index < 0 {
				t.Fatalf("record %s names (%q, %d), %v; want the log %q", id, row.Log, row.Index, err, a.trail.Origin())
			}
		}
	}

	// The integrator stops; the other node takes over.
	leader, other := a, b
	if b.trail.Integrating() {
		leader, other = b, a
	}
	leader.close()
	commitParallel(t, other.trail, 5000, 40)
	waitIntegrated(t, 160, other)
	if !other.trail.Integrating() {
		t.Fatal("the remaining node does not integrate")
	}
	// The stopped node comes back as a follower.
	back := openShared(t, dir, pgDSN, logDSN)
	commitParallel(t, back.trail, 7000, 20)
	waitIntegrated(t, 180, other, back)
	if k := integrators(other, back); k != 1 {
		t.Fatalf("%d nodes integrate, want exactly 1", k)
	}
	// The merge delay promised in receipts is one the shared log keeps.
	r, err := back.trail.Commit(context.Background(), testRecord(9000))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := audit.VerifyReceipt(r.Token, back.trail.VerifierKey())
	if err != nil || claims.MaxMergeDelay < 3 {
		t.Errorf("receipt promises a merge delay of %d s (%v); the shared log needs at least 3 s", claims.MaxMergeDelay, err)
	}
	p, err := back.trail.Search(context.Background(), audit.Query{Limit: 1})
	if err != nil || len(p.Records) != 1 || p.Records[0].Log != back.trail.Origin() {
		t.Fatalf("search: %+v, %v; want records naming the log", p, err)
	}
}

// TestSharedLogLeaseLost: when the integrator's lease session ends (its
// connection to PostgreSQL breaks), it stops integrating; integration goes
// on (on whichever node takes the lease) with no record lost or added
// twice.
func TestSharedLogLeaseLost(t *testing.T) {
	pgDSN := pgtest.New(t).DSN
	logDSN := mysqltest.New(t)
	dir := t.TempDir()
	var la, lb syncbuf.Buffer
	a := openShared(t, dir, pgDSN, logDSN, &la)
	b := openShared(t, dir, pgDSN, logDSN, &lb)
	commitParallel(t, a.trail, 0, 40)
	waitIntegrated(t, 40, a, b)
	leaderLog := &la
	if b.trail.Integrating() {
		leaderLog = &lb
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// End the session that holds the advisory lock (the integrator's lease).
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d lease sessions (%v), want 1", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Contains([]byte(leaderLog.String()), []byte("lease lost")) {
		if time.Now().After(deadline) {
			t.Fatal("the integrator did not notice that its lease was lost")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Go(func() { commitParallel(t, a.trail, 100, 30) })
	wg.Go(func() { commitParallel(t, b.trail, 200, 30) })
	wg.Wait()
	waitIntegrated(t, 100, a, b)
	if k := integrators(a, b); k != 1 {
		t.Fatalf("%d nodes integrate, want exactly 1", k)
	}
}

// BenchmarkSharedLogIntegration: time from a batch of 1,000 durable
// records (committed through two nodes) to a published checkpoint of the
// shared MariaDB log covering them (compare BenchmarkIntegration, the
// POSIX log; Tessera's MySQL driver checkpoints at most once a second).
func BenchmarkSharedLogIntegration(b *testing.B) {
	pgDSN := pgtest.New(b).DSN
	logDSN := mysqltest.New(b)
	dir := b.TempDir()
	x := openShared(b, dir, pgDSN, logDSN)
	y := openShared(b, dir, pgDSN, logDSN)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		var wg sync.WaitGroup
		wg.Go(func() { commitParallel(b, x.trail, i*1000, 500) })
		wg.Go(func() { commitParallel(b, y.trail, i*1000+500, 500) })
		wg.Wait()
		b.StartTimer()
		waitSize(b, x.trail, int64((i+1)*1000))
	}
}

// TestSharedLogLastNodeIntegratesOnClose: a node that closes without the
// lease takes it if no one else does (it is the last node to stop) and
// integrates what is durable, as Close promises.
func TestSharedLogLastNodeIntegratesOnClose(t *testing.T) {
	pgDSN := pgtest.New(t).DSN
	logDSN := mysqltest.New(t)
	ctx := context.Background()
	blocker, err := postgres.OpenAudit(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	_, release, err := blocker.Lease("audit-log").Acquire(ctx) // another node integrates
	if err != nil {
		t.Fatal(err)
	}
	a := openShared(t, t.TempDir(), pgDSN, logDSN)
	commitParallel(t, a.trail, 0, 30)
	release() // that node stops; a closes at once
	a.close()
	rows, err := blocker.Rows(ctx, 0, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Fatalf("%d records left unintegrated by the last node to stop", len(rows))
	}
}
