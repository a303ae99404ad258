package audit

import (
	"context"
	"errors"
	"fmt"
)

// IndexUpdate sets the subject blind index of a row.
type IndexUpdate struct {
	Row          *Row // Seq and Time identify it
	SubjectIndex []byte
}

// Reindexer is implemented by stores that can rewrite the subject blind
// index of their rows (for a rotation of the index key).
type Reindexer interface {
	// SetSubjectIndexes updates the blind index of each row, in one
	// transaction; a row erased meanwhile is left erased.
	SetSubjectIndexes(ctx context.Context, updates []IndexUpdate) error
}

// Reindex recomputes the subject blind index of every record not erased
// under key (decrypting each record for its subject) and makes key the
// trail's index key; it returns how many records it reindexed. Run it with
// the hub stopped (nothing else committing), and make key the keyring's
// index key around it (hub.RotateKey): interrupted, run it again, with any
// key: the indexes are recomputed from the records, not from the old ones.
func (t *Trail) Reindex(ctx context.Context, key []byte) (int, error) {
	re, ok := t.store.(Reindexer)
	if !ok {
		return 0, errors.New("audit: reindex: the store cannot rewrite blind indexes")
	}
	if len(key) != 32 {
		return 0, errors.New("audit: reindex: the index key must be 32 bytes")
	}
	n := 0
	var after int64
	for {
		rows, err := t.store.Rows(ctx, after, 1000, false)
		if err != nil {
			return n, fmt.Errorf("audit: reindex: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		var ups []IndexUpdate
		for i := range rows {
			r := &rows[i]
			if r.Erased() {
				continue
			}
			rec, _, err := t.decrypt(ctx, r)
			if err != nil {
				return n, fmt.Errorf("audit: reindex %s: %w", r.ExchangeID, err)
			}
			if rec.Subject == "" {
				continue
			}
			ups = append(ups, IndexUpdate{Row: r, SubjectIndex: blindIndex(key, subjectKind(rec), rec.Subject)})
		}
		if len(ups) > 0 {
			if err := re.SetSubjectIndexes(ctx, ups); err != nil {
				return n, fmt.Errorf("audit: reindex: %w", err)
			}
			n += len(ups)
		}
		after = rows[len(rows)-1].Seq
	}
	t.indexKey = key
	return n, nil
}
