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
	Keys    []string // periods whose data keys were deleted
	KEKs    int      // key-encryption keys destroyed in the provider
}

// Erase erases the records older than before: their encrypted payload,
// commitment nonce and subject blind index are deleted, and, for the
// periods (UTC days) that end by before, the data keys are deleted from the
// store and their key-encryption keys destroyed in the KeyProvider
// (crypto-shredding). A copy of the database made before (a backup) still
// holds the ciphertext and the wrapped data keys, but the KEKs that unwrap
// them exist only in the provider, and are gone: with the hub's providers
// (keys.Keyring over an HSM or the passphrase-sealed FileProvider), such a
// backup no longer opens the erased records — unless a copy of the
// provider's own storage made before the erasure is kept too (see
// docs/operations.md). With the plaintext FileKeys default, a copy of its
// directory defeats erasure. The rows keep their non-personal metadata, leaf
// and log index, and the Merkle log is untouched, so that the tree still
// verifies.
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
	ended := func(per string) bool {
		day, err := time.Parse(time.DateOnly, per)
		return err == nil && !day.AddDate(0, 0, 1).After(before)
	}
	dks, err := t.store.Keys(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: erase: %w", err)
	}
	for _, k := range dks {
		if !ended(k.Period) {
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
	// Then every KEK of an ended period, including those of data keys
	// deleted by an erasure interrupted before this step.
	keks, err := t.keys.KEKs(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: erase: %w", err)
	}
	for _, k := range keks {
		if !ended(k.Period) {
			continue
		}
		if err := t.keys.DestroyKEK(ctx, k.ID); err != nil {
			return rep, fmt.Errorf("audit: erase: destroy KEK of %s: %w", k.Period, err)
		}
		rep.KEKs++
	}
	if rep.Records > 0 || len(rep.Keys) > 0 || rep.KEKs > 0 {
		t.log.Info("audit retention: records erased", "records", rep.Records, "keys", len(rep.Keys), "keks", rep.KEKs,
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
