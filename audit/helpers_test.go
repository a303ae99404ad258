package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

func testRecord(i int) *crossroads.AuditRecord {
	return &crossroads.AuditRecord{
		ExchangeID:       fmt.Sprintf("ex-%06d", i),
		Time:             time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Requester:        "inst-a",
		User:             "user-1",
		Service:          "svc-income",
		Provider:         "src-b",
		Subject:          fmt.Sprintf("850730033%02d", i%100),
		Purpose:          "benefit-check",
		AuthorisationID:  "auth-1",
		AuthorisationRef: "DEL-24/123",
		Outcome:          crossroads.OutcomeAllowed,
		Reason:           crossroads.ReasonAllowed,
		LatencyMicros:    1234,
	}
}

type env struct {
	dir   string
	store *sqlite.AuditStore
	trail *audit.Trail
}

// open opens the store and the trail on dir; the returned close function
// closes both (idempotent).
func open(t testing.TB, dir string, mods ...func(*audit.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenAudit(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{Dir: dir, Store: st, MaxMergeDelay: 400 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := audit.Open(ctx, cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	e := &env{dir: dir, store: st, trail: tr}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.trail != nil {
		e.trail.Close(context.Background())
		e.trail = nil
	}
	if e.store != nil {
		e.store.Close()
		e.store = nil
	}
}

func commitN(t testing.TB, tr *audit.Trail, from, n int) []crossroads.Receipt {
	t.Helper()
	out := make([]crossroads.Receipt, n)
	for i := range n {
		r, err := tr.Commit(context.Background(), testRecord(from+i))
		if err != nil {
			t.Fatalf("commit %d: %v", from+i, err)
		}
		out[i] = r
	}
	return out
}

// waitSize waits until the published checkpoint covers n leaves and
// returns it (a wait, not a timing assertion: the bound only stops a hung
// test).
func waitSize(t testing.TB, tr *audit.Trail, n int64) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := tr.Checkpoint(context.Background())
		if err == nil {
			c, err := verify.OpenCheckpoint(cp, mustVerifier(t, tr.VerifierKey()))
			if err != nil {
				t.Fatal(err)
			}
			if c.N >= n {
				// The indexes reach the store just after the checkpoint.
				if rep, err := tr.Check(context.Background()); err == nil && int64(rep.Integrated) >= n {
					return cp
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint does not reach size %d", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func commitParallel(t testing.TB, tr *audit.Trail, from, n int) []crossroads.Receipt {
	t.Helper()
	out := make([]crossroads.Receipt, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				out[i], errs[i] = tr.Commit(context.Background(), testRecord(from+i))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("commit %d: %v", from+i, err)
		}
	}
	return out
}
