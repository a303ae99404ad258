// Package outbox holds the data of mutation push (package push) and the
// interface of its store — publications, outbox entries, pull cursors —
// with no dependencies, so that stores implement it without importing the
// push handlers.
package outbox

import (
	"context"
	"encoding/json"
	"time"
)

// Entry states.
const (
	StatePending   = "pending"   // to seal (and, for push, to send)
	StateAvailable = "available" // pull: sealed, in the feed, not yet acknowledged
	StateDelivered = "delivered" // push: acknowledged by the endpoint (2xx); pull: acknowledged by the cursor
	StateDead      = "dead"      // push: not delivered within the horizon (dead letter)
	StateDropped   = "dropped"   // no longer covered at delivery (subscription or authorisation gone): never sent
)

// Publication is one mutation as published and routed.
type Publication struct {
	ID          string          `json:"id"`
	Publisher   string          `json:"publisher"`
	Service     string          `json:"service"`
	Operation   string          `json:"operation"`
	Key         string          `json:"idempotencyKey"`
	Digest      string          `json:"digest"` // of the canonical mutation: a retry must match it
	SubjectKind string          `json:"subjectKind"`
	Subject     string          `json:"subject"`
	Effective   time.Time       `json:"effectiveDate"`
	Payload     json.RawMessage `json:"payload"`
	Routed      int             `json:"routed"`
	Time        time.Time       `json:"time"`
}

// Sealed is an entry as the hub releases it: the minimised payload, its
// seal, the audit receipt and the exchange id of its record.
type Sealed struct {
	Body       []byte
	Seal       string
	Receipt    string
	ExchangeID string
}

// Entry is one delivery of a publication to one subscription (a row of
// the outbox). Seq orders the outbox (and a subscription's feed).
type Entry struct {
	Seq          int64
	Publication  Publication // joined
	Subscription string
	Subscriber   string
	Queue        string // subscriber and subject: the unit of ordering
	Delivery     string // push or pull
	State        string
	Attempts     int
	NextAt       time.Time // when the next attempt is due
	Since        time.Time // start of the dead-letter horizon (publication, or the last redelivery)
	Sealed       Sealed
	LastError    string
	DeliveredAt  time.Time
}

// EntryQuery filters Entries. Empty fields match everything.
type EntryQuery struct {
	Subscription string
	State        string
	After        int64
	Limit        int // <= 0: 100
}

// Store is the outbox: publications, their entries and the pull cursors.
// Every method is atomic.
type Store interface {
	// Publication returns the publication of (service, publisher, key);
	// crossroads.ErrNotFound if none.
	Publication(ctx context.Context, service, publisher, key string) (Publication, error)
	// Publish writes pub and its entries (Seq assigned) in one transaction;
	// crossroads.ErrConflict if (service, publisher, key) exists.
	Publish(ctx context.Context, pub Publication, entries []Entry) error
	// Claim leases to owner, until now+lease, up to limit entries that are
	// pending, due at now, not leased by another, and first of their queue
	// among its pending entries.
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Entry, error)
	// Seal stores a claimed entry's sealed form and moves it to state
	// (pending for push, available for pull; available releases the lease).
	Seal(ctx context.Context, seq int64, owner string, s Sealed, state string) error
	// Finish ends a claimed entry in state (delivered, dead, dropped) and
	// releases it; lastError is kept.
	Finish(ctx context.Context, seq int64, owner, state string, at time.Time, lastError string) error
	// Retry releases a claimed entry for another attempt at next.
	Retry(ctx context.Context, seq int64, owner string, attempts int, next time.Time, lastError string) error
	// Redeliver makes entries of subscription pending again, due at now
	// with a new horizon: those of seqs, or (seqs empty) every dead one.
	// It returns how many.
	Redeliver(ctx context.Context, subscription string, seqs []int64, now time.Time) (int64, error)
	// Feed returns up to limit entries of subscription after seq after,
	// in order, stopping before the first one that is not yet sealed.
	Feed(ctx context.Context, subscription string, after int64, limit int) ([]Entry, error)
	// Ack moves the subscription's cursor to seq (never back) and marks
	// the available entries up to it delivered at at.
	Ack(ctx context.Context, subscription string, seq int64, at time.Time) error
	// Cursor is the subscription's acknowledged sequence number (0: none).
	Cursor(ctx context.Context, subscription string) (int64, error)
	// Entries lists entries in order, filtered by q.
	Entries(ctx context.Context, q EntryQuery) ([]Entry, error)
	// Counts returns the number of entries in each state.
	Counts(ctx context.Context) (map[string]int64, error)
}
