package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
)

// TestBatchStore is the conformance suite of batch.Store: every backend
// runs it. open returns an empty store for each subtest.
//
// Beyond the interface documentation, the suite fixes: a held batch's items
// are never claimed; concurrent claims (nodes) never share an item; a
// claim whose lease ran out is claimed again with a new token and the old
// token can neither complete nor retry; the last result marks the batch
// done with Expires = Finished + Retention; Erase leaves a batch row in
// state expired without results.
func TestBatchStore(t *testing.T, open func(t *testing.T) batch.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newBatch := func(id, participant string, n int) (crossroads.Batch, [][]byte) {
		b := crossroads.Batch{ID: id, Participant: participant, User: "u", Serial: "0a", Certificate: []byte{1, 2, 3},
			Created: t0, Retention: 24 * time.Hour, Total: n}
		items := make([][]byte, n)
		for i := range items {
			items[i] = fmt.Appendf(nil, `{"operation":"svc/read","parameters":{"subject":"%d"},"purpose":"p","user":"u"}`, i+1)
		}
		return b, items
	}
	result := func(seq int, outcome string, at time.Time) crossroads.BatchResult {
		return crossroads.BatchResult{Seq: seq, Outcome: outcome, Status: 200, Reason: crossroads.ReasonAllowed, ExchangeID: fmt.Sprint("ex-", seq),
			Seal: "seal", Receipt: "receipt", ContentType: "application/json", Released: fmt.Appendf(nil, `{"n":%d}`, seq), Completed: at}
	}

	t.Run("lifecycle", func(t *testing.T) {
		s := open(t)
		b, items := newBatch("b-1", "ocmw", 5)
		if err := s.Create(ctx, b, items); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Batch(ctx, "b-1"); err != nil || got.State != crossroads.BatchHeld || got.Total != 5 || !got.Created.Equal(t0) ||
			got.Retention != 24*time.Hour || !bytes.Equal(got.Certificate, []byte{1, 2, 3}) || got.Serial != "0a" || got.User != "u" {
			t.Fatalf("held batch: %+v, %v", got, err)
		}
		if ps, err := s.Runnable(ctx, t0.Add(time.Hour), 10); err != nil || len(ps) != 0 {
			t.Fatalf("held batch runnable: %v %v", ps, err)
		}
		if cs, err := s.Claim(ctx, "ocmw", 10, t0.Add(time.Hour), time.Minute); err != nil || len(cs) != 0 {
			t.Fatalf("held batch claimed: %v %v", cs, err)
		}
		if err := s.Activate(ctx, "b-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(ctx, "b-1"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("activate twice: %v", err)
		}
		if ps, err := s.Runnable(ctx, t0, 10); err != nil || len(ps) != 1 || ps[0] != "ocmw" {
			t.Fatalf("runnable: %v %v", ps, err)
		}
		if cs, err := s.Claim(ctx, "onem", 10, t0, time.Minute); err != nil || len(cs) != 0 {
			t.Fatalf("another participant claimed: %v %v", cs, err)
		}
		a, err := s.Claim(ctx, "ocmw", 3, t0, time.Minute)
		if err != nil || len(a) != 3 {
			t.Fatalf("claim 3: %v %v", a, err)
		}
		for i, c := range a {
			if c.Batch != "b-1" || c.Seq != i+1 || c.Attempts != 1 || c.Token == "" || c.Participant != "ocmw" || !bytes.Equal(c.Item, items[i]) {
				t.Fatalf("claim %d: %+v", i, c)
			}
		}
		rest, err := s.Claim(ctx, "ocmw", 10, t0, time.Minute)
		if err != nil || len(rest) != 2 || rest[0].Seq != 4 || rest[1].Seq != 5 {
			t.Fatalf("claim the rest: %v %v", rest, err)
		}
		if cs, _ := s.Claim(ctx, "ocmw", 10, t0.Add(30*time.Second), time.Minute); len(cs) != 0 {
			t.Fatalf("leased items claimed again: %v", cs)
		}
		// Complete one; twice is refused.
		if ok, err := s.Complete(ctx, a[0], result(1, crossroads.OutcomeAllowed, t0)); !ok || err != nil {
			t.Fatalf("complete: %v %v", ok, err)
		}
		if ok, err := s.Complete(ctx, a[0], result(1, crossroads.OutcomeAllowed, t0)); ok || err != nil {
			t.Fatalf("complete twice: %v %v", ok, err)
		}
		// Retry: claimable at notBefore, not before.
		if err := s.Retry(ctx, a[1], t0.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if cs, _ := s.Claim(ctx, "ocmw", 10, t0.Add(5*time.Second), time.Minute); len(cs) != 0 {
			t.Fatalf("retried item claimed before its time: %v", cs)
		}
		again, err := s.Claim(ctx, "ocmw", 10, t0.Add(10*time.Second), 10*time.Minute)
		if err != nil || len(again) != 1 || again[0].Seq != 2 || again[0].Attempts != 2 {
			t.Fatalf("retried item: %v %v", again, err)
		}
		if ok, _ := s.Complete(ctx, a[1], result(2, crossroads.OutcomeDenied, t0)); ok {
			t.Fatal("completed with the token of a claim given back")
		}
		// Lease expiry: item 3 is claimed again; the first claim is lost.
		late, err := s.Claim(ctx, "ocmw", 10, t0.Add(2*time.Minute), time.Minute)
		if err != nil || len(late) != 3 {
			t.Fatalf("expired leases: %v %v", late, err)
		}
		if ok, _ := s.Complete(ctx, a[2], result(3, crossroads.OutcomeAllowed, t0)); ok {
			t.Fatal("completed by a claim whose lease was taken over")
		}
		if err := s.Retry(ctx, a[2], t0); err != nil {
			t.Fatal(err)
		}
		done := t0.Add(3 * time.Minute)
		outcomes := map[int]string{2: crossroads.OutcomeDenied, 3: crossroads.OutcomeAllowed, 4: crossroads.OutcomeFailed, 5: crossroads.OutcomeDenied}
		for _, c := range late {
			if ok, err := s.Complete(ctx, c, result(c.Seq, outcomes[c.Seq], done)); !ok || err != nil {
				t.Fatalf("complete %d: %v %v", c.Seq, ok, err)
			}
		}
		got, err := s.Batch(ctx, "b-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != crossroads.BatchRunning || got.Done != 4 || got.Allowed != 2 || got.Denied != 1 || got.Failed != 1 {
			t.Fatalf("progress: %+v", got)
		}
		if ok, err := s.Complete(ctx, again[0], result(2, crossroads.OutcomeDenied, done)); !ok || err != nil {
			t.Fatalf("complete 2: %v %v", ok, err)
		}
		got, _ = s.Batch(ctx, "b-1")
		if got.State != crossroads.BatchDone || got.Done != 5 || got.Denied != 2 || !got.Finished.Equal(done) || !got.Expires.Equal(done.Add(24*time.Hour)) {
			t.Fatalf("done: %+v", got)
		}
		if ps, _ := s.Runnable(ctx, done.Add(time.Hour), 10); len(ps) != 0 {
			t.Fatalf("done batch runnable: %v", ps)
		}
		res, err := s.Results(ctx, "b-1", 0, 100)
		if err != nil || len(res) != 5 {
			t.Fatalf("results: %d %v", len(res), err)
		}
		for i, r := range res {
			want := result(i+1, "", time.Time{})
			if r.Seq != i+1 || !bytes.Equal(r.Released, want.Released) || r.ExchangeID != want.ExchangeID || r.Seal != "seal" || r.Receipt != "receipt" || r.Completed.IsZero() {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		if page, _ := s.Results(ctx, "b-1", 3, 1); len(page) != 1 || page[0].Seq != 4 {
			t.Fatalf("results after 3: %+v", page)
		}
		// Expiry.
		if ids, err := s.Expired(ctx, done.Add(23*time.Hour), 10); err != nil || len(ids) != 0 {
			t.Fatalf("expired early: %v %v", ids, err)
		}
		ids, err := s.Expired(ctx, done.Add(24*time.Hour), 10)
		if err != nil || len(ids) != 1 || ids[0] != "b-1" {
			t.Fatalf("expired: %v %v", ids, err)
		}
		if err := s.Erase(ctx, "b-1"); err != nil {
			t.Fatal(err)
		}
		got, err = s.Batch(ctx, "b-1")
		if err != nil || got.State != crossroads.BatchExpired || len(got.Certificate) != 0 {
			t.Fatalf("erased: %+v %v", got, err)
		}
		if res, _ := s.Results(ctx, "b-1", 0, 100); len(res) != 0 {
			t.Fatalf("results after erasure: %d", len(res))
		}
		if ids, _ := s.Expired(ctx, done.Add(48*time.Hour), 10); len(ids) != 0 {
			t.Fatalf("erased batch listed as expired: %v", ids)
		}
	})

	t.Run("not found, discard, purge", func(t *testing.T) {
		s := open(t)
		if _, err := s.Batch(ctx, "nope"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("unknown batch: %v", err)
		}
		if err := s.Activate(ctx, "nope"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("activate unknown: %v", err)
		}
		b, items := newBatch("b-2", "ocmw", 2)
		if err := s.Create(ctx, b, items); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, b, items); err == nil {
			t.Fatal("same batch id created twice")
		}
		if err := s.Discard(ctx, "b-2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Batch(ctx, "b-2"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("discarded batch: %v", err)
		}
		b3, items3 := newBatch("b-3", "ocmw", 2)
		b4, items4 := newBatch("b-4", "ocmw", 2)
		b4.Created = t0.Add(2 * time.Hour)
		if err := s.Create(ctx, b3, items3); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, b4, items4); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeHeld(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if _, err := s.Batch(ctx, "b-4"); err != nil {
			t.Fatalf("young held batch purged: %v", err)
		}
		// A running batch is neither discarded nor purged.
		if err := s.Activate(ctx, "b-4"); err != nil {
			t.Fatal(err)
		}
		s.Discard(ctx, "b-4")
		if n, _ := s.PurgeHeld(ctx, t0.Add(10*time.Hour)); n != 0 {
			t.Fatalf("running batch purged")
		}
		if got, err := s.Batch(ctx, "b-4"); err != nil || got.State != crossroads.BatchRunning {
			t.Fatalf("running batch: %+v %v", got, err)
		}
	})

	t.Run("concurrent claims are disjoint", func(t *testing.T) {
		s := open(t)
		const n = 200
		b, items := newBatch("b-5", "ocmw", n)
		if err := s.Create(ctx, b, items); err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(ctx, "b-5"); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					cs, err := s.Claim(ctx, "ocmw", 7, t0, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					for _, c := range cs {
						seen[c.Seq]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("%d items claimed of %d", len(seen), n)
		}
		for seq, k := range seen {
			if k != 1 {
				t.Fatalf("item %d claimed %d times", seq, k)
			}
		}
	})
}
