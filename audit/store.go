package audit

import (
	"context"
	"time"
)

// Row is one audit record as the store keeps it: the searchable,
// non-personal columns in clear, the record itself encrypted, and the
// commitment material for the Merkle log.
type Row struct {
	// Seq is assigned by the store on insert (1, 2, …, in insertion order).
	Seq        int64
	ExchangeID string
	Time       time.Time
	Requester  string
	Provider   string
	Service    string
	Purpose    string
	Outcome    string
	Reason     string
	// SubjectIndex is the keyed blind index of the subject (HMAC-SHA-256),
	// nil when the exchange concerns no person.
	SubjectIndex []byte
	// Period names the data key the record is encrypted under.
	Period string
	// Nonce is the 32-byte random nonce of the hiding commitment.
	Nonce []byte
	// Ciphertext is AES-256-GCM(data key, canonical record JSON): 12-byte
	// GCM nonce followed by the sealed bytes.
	Ciphertext []byte
	// Leaf is the leaf data committed to the Merkle log (no personal data).
	Leaf []byte
	// Index is the record's position in the Merkle log, -1 until integrated.
	Index int64
	// Kind is the record kind (crossroads.Record*; "" for an exchange).
	Kind string
	// SubjectKind is the kind of the record's subject ("person",
	// "enterprise"…); "" when the record is about no one.
	SubjectKind string
	// Log names the Merkle log the record is committed to (its origin, as
	// in its receipt), set when the record is sealed; Index is its position
	// there. A record is in one log only.
	Log string
}

// Erased reports whether the row's payload was erased after its retention
// period (Store.Erase): Ciphertext, Nonce and SubjectIndex are then empty.
func (r *Row) Erased() bool { return len(r.Ciphertext) == 0 }

// Mark records that the row with Seq was integrated at log Index.
type Mark struct {
	Seq   int64
	Index int64
}

// DataKey is a per-period data key, wrapped by a key-encryption key.
type DataKey struct {
	Period  string
	KEKID   string
	Wrapped []byte
}

// StoreQuery selects rows, newest (highest Seq) first.
type StoreQuery struct {
	Participant  string // requester or provider
	Service      string
	Purpose      string
	Outcome      string
	SubjectIndex []byte
	From, To     time.Time // To exclusive; zero means unbounded
	BeforeSeq    int64     // only rows with Seq < BeforeSeq; 0 means no bound
	Kinds        []string  // record kinds, any of them ("" is an exchange); empty: all
	SubjectKind  string    // the subject's kind; empty: any
	Limit        int
}

// Store persists audit rows and data keys. Every method is atomic; a
// method that returns nil has made its effect durable.
type Store interface {
	// InsertBatch inserts rows in one transaction, durable on return, and
	// sets each row's Seq. A row whose ExchangeID is already stored is not
	// inserted and keeps Seq 0; the others are.
	InsertBatch(ctx context.Context, rows []*Row) error
	// MarkIntegrated records the log indexes of integrated rows, in one
	// transaction.
	MarkIntegrated(ctx context.Context, marks []Mark) error
	// Rows lists rows with Seq > afterSeq in ascending Seq order, at most
	// limit; only those not yet integrated when unintegrated is set, and
	// then a store may fill only what integration needs: Seq, ExchangeID,
	// Time, Leaf, Log (and Index -1).
	Rows(ctx context.Context, afterSeq int64, limit int, unintegrated bool) ([]Row, error)
	// MaxIndex returns the highest log index recorded, -1 when none.
	MaxIndex(ctx context.Context) (int64, error)
	// Get returns the row of an exchange; crossroads.ErrNotFound when absent.
	Get(ctx context.Context, exchangeID string) (Row, error)
	// Search returns rows matching q, newest first.
	Search(ctx context.Context, q StoreQuery) ([]Row, error)
	// Key returns the data key of a period; crossroads.ErrNotFound when absent.
	Key(ctx context.Context, period string) (DataKey, error)
	// PutKey stores k unless a key for the period exists; it returns the
	// key stored for the period either way.
	PutKey(ctx context.Context, k DataKey) (DataKey, error)
	// Keys lists every data key.
	Keys(ctx context.Context) ([]DataKey, error)
	// ReplaceKey rewraps: it replaces the wrapped form of an existing
	// period's key (the key itself must be unchanged).
	ReplaceKey(ctx context.Context, k DataKey) error
	// Erase erases, in one transaction, the payload of at most limit rows
	// with Time < before whose payload is not yet erased, oldest first, and
	// returns how many it erased (fewer than limit: none are left). An
	// erased row keeps Seq, ExchangeID, Time, Requester, Provider, Service,
	// Purpose, Outcome, Reason, Period, Leaf, Index, Kind and SubjectKind; it comes back with
	// Ciphertext, Nonce and SubjectIndex empty, and no longer matches a
	// search by SubjectIndex. The erased bytes should not survive in the
	// database files beyond what the engine cannot avoid.
	Erase(ctx context.Context, before time.Time, limit int) (int, error)
	// DeleteKey deletes the data key of a period (crypto-shredding). It is
	// not an error if the period has none.
	DeleteKey(ctx context.Context, period string) error
}

// CursorStore keeps named positions (store sequence numbers) of the
// readers of the trail, such as the SIEM export, in the audit store, so
// that every node of a deployment shares them. Both stores implement it.
type CursorStore interface {
	// Cursor returns the position saved under name, 0 when none is.
	Cursor(ctx context.Context, name string) (int64, error)
	// SetCursor saves pos under name, durably.
	SetCursor(ctx context.Context, name string, pos int64) error
}
