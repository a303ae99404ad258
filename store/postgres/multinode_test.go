package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

func openAudit(t *testing.T, dsn string) *postgres.AuditStore {
	t.Helper()
	s, err := postgres.OpenAudit(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func row(id string) *audit.Row {
	return &audit.Row{ExchangeID: id, Time: time.Now().UTC().Truncate(time.Microsecond), Requester: "a", Outcome: "allowed",
		Period: "p", Nonce: []byte{1}, Ciphertext: []byte{2}, Leaf: []byte{3}, Index: -1}
}

// TestAuditSeqCommitOrder: node A has drawn a sequence number but not yet
// committed; node B's batch must not commit before it, or a cursor reader
// could pass A's smaller number and never see A's record.
func TestAuditSeqCommitOrder(t *testing.T) {
	dsn := pgtest.New(t).Schema(t)
	a, b := openAudit(t, dsn), openAudit(t, dsn)
	drawn, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	postgres.SetAfterSeq(a, func() { once.Do(func() { close(drawn); <-hold }) })
	ra, rb := row("ex-a"), row("ex-b")
	aDone := make(chan error, 1)
	go func() { aDone <- a.InsertBatch(context.Background(), []*audit.Row{ra}) }()
	<-drawn
	bDone := make(chan error, 1)
	go func() { bDone <- b.InsertBatch(context.Background(), []*audit.Row{rb}) }()
	select {
	case err := <-bDone:
		close(hold)
		<-aDone
		t.Fatalf("node B committed (%v) while node A held a smaller, uncommitted sequence number", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(hold)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	if ra.Seq <= 0 || rb.Seq <= ra.Seq {
		t.Errorf("seq A %d, seq B %d: want A < B", ra.Seq, rb.Seq)
	}
}

// TestLease: one holder at a time; a released lease passes to a waiter; a
// holder whose session is ended learns it (its context is done) and the
// lease passes on.
func TestLease(t *testing.T) {
	dsn := pgtest.New(t).Schema(t)
	a, b := openAudit(t, dsn), openAudit(t, dsn)
	ctx := context.Background()
	heldA, releaseA, err := a.Lease("audit-log").Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another name is independent.
	hs, rs, err := b.Lease("siem").Acquire(ctx)
	if err != nil || hs.Err() != nil {
		t.Fatalf("other lease: %v", err)
	}
	rs()
	wctx, cancel := context.WithTimeout(ctx, 3*postgres.LeasePoll)
	_, _, err = b.Lease("audit-log").Acquire(wctx)
	cancel()
	if err == nil {
		t.Fatal("B acquired the lease A holds")
	}
	got := make(chan context.Context, 1)
	var releaseB func()
	go func() {
		h, r, err := b.Lease("audit-log").Acquire(ctx)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		releaseB = r
		got <- h
	}()
	releaseA()
	if heldA.Err() == nil {
		t.Error("A's context not done after release")
	}
	var heldB context.Context
	select {
	case heldB = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("B did not get the released lease")
	}
	if heldB == nil {
		t.FailNow()
	}
	// End B's session from outside, as a crash or a network failure would.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'crossroads-lease-audit-log' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-heldB.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("B did not learn that its session ended")
	}
	releaseB()
	_, releaseA, err = a.Lease("audit-log").Acquire(ctx)
	if err != nil {
		t.Fatal(fmt.Errorf("A could not take the lease back: %w", err))
	}
	releaseA()
}
