package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// MinRetention is the shortest retention Erase accepts unless forced
// (seed 002 EHDSR-8: records are kept at least a year).
const MinRetention = 365 * 24 * time.Hour

// ErrErased is returned (wrapped) for the payload of a record erased after
// its retention period: its leaf stays in the log, its content is gone.
var ErrErased = errors.New("audit: record erased after its retention period")

// eraseBatch bounds the rows erased in one store transaction.
const eraseBatch = 1000

// EraseReport is the result of Erase.
type EraseReport struct {
	Records int      // payloads erased
	Keys    []string // periods whose data keys were destroyed
}

// Erase erases the records older than before: their encrypted payload,
// commitment nonce and subject blind index are deleted, and the data keys
// of the periods (UTC days) that end by before are destroyed
// (crypto-shredding: any copy of the ciphertext left in backups becomes
// unreadable). The rows keep their non-personal metadata, leaf and log
// index, and the Merkle log is untouched, so that the tree still verifies.
//
// Erase refuses a before later than now − MinRetention unless force is
// set.
func (t *Trail) Erase(ctx context.Context, before time.Time, force bool) (*EraseReport, error) {
	if before.After(time.Now().Add(-MinRetention)) && !force {
		return nil, fmt.Errorf("audit: erase: records are kept at least %v; erasing records since %s needs force: %w",
			MinRetention, before.UTC().Format(time.RFC3339), crossroads.ErrInvalid)
	}
	rep := &EraseReport{}
	for {
		n, err := t.store.Erase(ctx, before, eraseBatch)
		rep.Records += n
		if err != nil {
			return rep, fmt.Errorf("audit: erase: %w", err)
		}
		if n < eraseBatch {
			break
		}
	}
	keys, err := t.store.Keys(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: erase: %w", err)
	}
	for _, k := range keys {
		day, err := time.Parse(time.DateOnly, k.Period)
		if err != nil || day.AddDate(0, 0, 1).After(before) {
			continue
		}
		t.dkMu.Lock()
		delete(t.dks, k.Period)
		err = t.store.DeleteKey(ctx, k.Period)
		t.dkMu.Unlock()
		if err != nil {
			return rep, fmt.Errorf("audit: erase key %s: %w", k.Period, err)
		}
		rep.Keys = append(rep.Keys, k.Period)
	}
	if rep.Records > 0 || len(rep.Keys) > 0 {
		t.log.Info("audit retention: records erased", "records", rep.Records, "keys", len(rep.Keys),
			"before", before.UTC().Format(time.RFC3339))
	}
	return rep, nil
}

// erasedRecord is what remains readable of an erased row: its clear,
// non-personal columns.
func erasedRecord(row *Row) *crossroads.AuditRecord {
	return &crossroads.AuditRecord{
		ExchangeID: row.ExchangeID, Time: row.Time, Requester: row.Requester, Provider: row.Provider,
		Service: row.Service, Purpose: row.Purpose, Outcome: row.Outcome, Reason: crossroads.Reason(row.Reason),
		Kind: row.Kind, SubjectKind: row.SubjectKind,
	}
}
