package batch

import (
	"context"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Store keeps batches and their items durably (SQLite: batch.db in the data
// directory; PostgreSQL: schema batch, shared by every node). Conformance:
// store/storetest.TestBatchStore.
type Store interface {
	// Create stores a held batch (b.State is ignored) and its items in one
	// transaction: items[i] is item i+1. A held batch's items are never
	// claimed.
	Create(ctx context.Context, b crossroads.Batch, items [][]byte) error
	// Activate makes a held batch running: its items become claimable.
	// crossroads.ErrNotFound if there is no held batch id.
	Activate(ctx context.Context, id string) error
	// Discard removes a held batch (its submission could not be recorded).
	Discard(ctx context.Context, id string) error
	// Batch returns a batch with its progress; crossroads.ErrNotFound.
	Batch(ctx context.Context, id string) (crossroads.Batch, error)
	// Runnable lists up to limit participants that have items claimable at
	// now (pending, lease expired).
	Runnable(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Claim leases up to n claimable items of participant's running batches,
	// oldest batch first, in item order, until now+lease: no other claim
	// gets them before (on PostgreSQL: FOR UPDATE SKIP LOCKED, so that nodes
	// claim disjoint items). Each claim counts an attempt.
	Claim(ctx context.Context, participant string, n int, now time.Time, lease time.Duration) ([]Claim, error)
	// Complete stores the item's result and counts it in its batch, in one
	// transaction, if the claim still holds (no other claim took the item
	// since); false, writing nothing, if not. The batch's last result
	// marks it done at r.Completed, expiring after its retention.
	Complete(ctx context.Context, c Claim, r crossroads.BatchResult) (bool, error)
	// Retry gives up a claim that still holds: the item is claimable again
	// at notBefore.
	Retry(ctx context.Context, c Claim, notBefore time.Time) error
	// Results returns up to limit results of the batch with seq > after, in
	// seq order (Released included).
	Results(ctx context.Context, id string, after, limit int) ([]crossroads.BatchResult, error)
	// Expired lists up to limit done batches whose expiry is at or before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Erase deletes a batch's items and results and marks it expired (the
	// batch row stays, without its certificate, so that readers get 410).
	Erase(ctx context.Context, id string) error
	// PurgeHeld deletes the held batches created before t (submissions
	// whose record failed, or a crash before their record), returning how
	// many.
	PurgeHeld(ctx context.Context, before time.Time) (int, error)
	Close() error
}

// Claim is a leased item.
type Claim = crossroads.BatchClaim
