package audit_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
)

// Concurrent callers share group commits: the caller that finds no commit
// in progress writes, the others join the next one.
func TestGroupCommitShares(t *testing.T) {
	e := open(t, t.TempDir())
	const n = 640
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				if _, err := e.trail.Commit(context.Background(), testRecord(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := e.trail.Stats()
	if st.Records != n {
		t.Fatalf("%d records made durable, want %d", st.Records, n)
	}
	if st.Batches >= n/2 {
		t.Errorf("%d commits for %d records from 64 callers: the group commit does not group", st.Batches, n)
	}
	var commits int64
	for _, c := range st.Commit.Counts {
		commits += c
	}
	if commits != st.Batches {
		t.Errorf("commit latency counts %d commits, stats %d", commits, st.Batches)
	}
}

// A record is either durable with a receipt or refused with ErrClosed,
// however Close and Commit interleave; Close returns once every accepted
// record is written.
func TestCloseWhileCommitting(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	const n = 400
	var wg sync.WaitGroup
	ok := make([]bool, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				r, err := e.trail.Commit(context.Background(), testRecord(i))
				switch {
				case err == nil && r.Token != "":
					ok[i] = true
				case errors.Is(err, audit.ErrClosed):
				default:
					t.Errorf("commit %d: receipt %q, err %v", i, r.Token, err)
				}
			}
		})
	}
	for e.trail.Stats().Records < n/4 {
		runtime.Gosched()
	}
	if err := e.trail.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	durable := e.trail.Stats().Records
	wg.Wait()
	accepted := 0
	for i, k := range ok {
		if !k {
			continue
		}
		accepted++
		if _, err := e.store.Get(context.Background(), testRecord(i).ExchangeID); err != nil {
			t.Errorf("record %d has a receipt but is not in the store: %v", i, err)
		}
	}
	if int64(accepted) != durable {
		t.Errorf("%d receipts, %d records durable when Close returned", accepted, durable)
	}
}
