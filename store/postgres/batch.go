package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
)

// BatchStore is the batch store (package batch's Store) in PostgreSQL, shared by
// every node: claims take FOR UPDATE SKIP LOCKED, so that nodes claim
// disjoint items.
type BatchStore struct {
	pool *pgxpool.Pool
}

// OpenBatch opens the batch store at dsn, migrating schema batch.
func OpenBatch(ctx context.Context, dsn string) (*BatchStore, error) {
	pool, err := openPool(ctx, dsn, "batch")
	if err != nil {
		return nil, err
	}
	return &BatchStore{pool: pool}, nil
}

// Close closes the connections.
func (s *BatchStore) Close() error {
	s.pool.Close()
	return nil
}

const heldLease = math.MaxInt64

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// Create implements the batch store (package batch).
func (s *BatchStore) Create(ctx context.Context, b crossroads.Batch, items [][]byte) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO batches(id, participant, user_name, serial, certificate, state, created, retention, total)
			VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $8)`, b.ID, b.Participant, b.User, b.Serial, b.Certificate, micros(b.Created), int64(b.Retention/time.Microsecond), len(items)); err != nil {
			return classify(err)
		}
		rows := make([][]any, len(items))
		for i, it := range items {
			rows[i] = []any{b.ID, int32(i + 1), b.Participant, it, int64(heldLease)}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"batch_items"}, []string{"batch", "seq", "participant", "item", "lease_until"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("create batch: %w", err)
	}
	return nil
}

// Activate implements the batch store (package batch).
func (s *BatchStore) Activate(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE batches SET state = 'running' WHERE id = $1 AND state = 'held'`, id)
		if err != nil {
			return fmt.Errorf("activate batch: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("activate batch %s: %w", id, crossroads.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `UPDATE batch_items SET lease_until = 0 WHERE batch = $1`, id); err != nil {
			return fmt.Errorf("activate batch: %w", err)
		}
		return nil
	})
}

// Discard implements the batch store (package batch).
func (s *BatchStore) Discard(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM batches WHERE id = $1 AND state = 'held'`, id); err != nil {
		return fmt.Errorf("discard batch: %w", err)
	}
	return nil
}

const batchColumns = `id, participant, user_name, serial, certificate, state, created, finished, expires, retention, total, done, allowed, denied, failed`

// Batch implements the batch store (package batch).
func (s *BatchStore) Batch(ctx context.Context, id string) (crossroads.Batch, error) {
	var b crossroads.Batch
	var created, finished, expires, retention int64
	err := s.pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1`, id).Scan(
		&b.ID, &b.Participant, &b.User, &b.Serial, &b.Certificate, &b.State, &created, &finished, &expires, &retention,
		&b.Total, &b.Done, &b.Allowed, &b.Denied, &b.Failed)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("batch %s: %w", id, crossroads.ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read batch: %w", err)
	}
	b.Created, b.Finished, b.Expires = fromMicros(created), fromMicros(finished), fromMicros(expires)
	b.Retention = time.Duration(retention) * time.Microsecond
	return b, nil
}

func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Runnable implements the batch store (package batch).
func (s *BatchStore) Runnable(ctx context.Context, now time.Time, limit int) ([]string, error) {
	out, err := collectStrings(s.pool.Query(ctx, `SELECT DISTINCT participant FROM batch_items WHERE state = 'pending' AND lease_until <= $1 LIMIT $2`, micros(now), limit))
	if err != nil {
		return nil, fmt.Errorf("runnable batches: %w", err)
	}
	return out, nil
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Claim implements the batch store (package batch): the items are locked with FOR UPDATE SKIP
// LOCKED, so that concurrent claims (other nodes) skip them rather than
// wait, and leased in the same statement.
func (s *BatchStore) Claim(ctx context.Context, participant string, n int, now time.Time, lease time.Duration) ([]crossroads.BatchClaim, error) {
	tok := newToken()
	rows, err := s.pool.Query(ctx, `UPDATE batch_items i SET lease_until = $1, token = $2, attempts = i.attempts + 1
		FROM (SELECT batch, seq FROM batch_items WHERE participant = $3 AND state = 'pending' AND lease_until <= $4
			ORDER BY batch, seq LIMIT $5 FOR UPDATE SKIP LOCKED) c
		WHERE i.batch = c.batch AND i.seq = c.seq
		RETURNING i.batch, i.seq, i.attempts, i.item`, micros(now.Add(lease)), tok, participant, micros(now), n)
	if err != nil {
		return nil, fmt.Errorf("claim batch items: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.BatchClaim, error) {
		c := crossroads.BatchClaim{Participant: participant, Token: tok}
		err := r.Scan(&c.Batch, &c.Seq, &c.Attempts, &c.Item)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim batch items: %w", err)
	}
	return out, nil
}

// Complete implements the batch store (package batch).
func (s *BatchStore) Complete(ctx context.Context, c crossroads.BatchClaim, r crossroads.BatchResult) (bool, error) {
	res, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	var a, d, f int
	switch r.Outcome {
	case crossroads.OutcomeAllowed:
		a = 1
	case crossroads.OutcomeDenied:
		d = 1
	default:
		f = 1
	}
	stored := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE batch_items SET state = 'done', token = '', result = $1, released = $2
			WHERE batch = $3 AND seq = $4 AND state = 'pending' AND token = $5`, res, r.Released, c.Batch, c.Seq, c.Token)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		stored = true
		at := micros(r.Completed)
		_, err = tx.Exec(ctx, `UPDATE batches SET done = done + 1, allowed = allowed + $1, denied = denied + $2, failed = failed + $3,
			state = CASE WHEN state = 'running' AND done + 1 >= total THEN 'done' ELSE state END,
			finished = CASE WHEN state = 'running' AND done + 1 >= total THEN $4 ELSE finished END,
			expires = CASE WHEN state = 'running' AND done + 1 >= total THEN $4 + retention ELSE expires END
			WHERE id = $5`, a, d, f, at, c.Batch)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store batch result: %w", err)
	}
	return stored, nil
}

// Retry implements the batch store (package batch).
func (s *BatchStore) Retry(ctx context.Context, c crossroads.BatchClaim, notBefore time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE batch_items SET lease_until = $1, token = '' WHERE batch = $2 AND seq = $3 AND state = 'pending' AND token = $4`,
		micros(notBefore), c.Batch, c.Seq, c.Token); err != nil {
		return fmt.Errorf("retry batch item: %w", err)
	}
	return nil
}

// Results implements the batch store (package batch).
func (s *BatchStore) Results(ctx context.Context, id string, after, limit int) ([]crossroads.BatchResult, error) {
	rows, err := s.pool.Query(ctx, `SELECT result, released FROM batch_items WHERE batch = $1 AND seq > $2 AND state = 'done' ORDER BY seq LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("batch results: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (crossroads.BatchResult, error) {
		var res, rel []byte
		var r crossroads.BatchResult
		if err := row.Scan(&res, &rel); err != nil {
			return r, err
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return r, err
		}
		r.Released = rel
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("batch results: %w", err)
	}
	return out, nil
}

// Expired implements the batch store (package batch).
func (s *BatchStore) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	out, err := collectStrings(s.pool.Query(ctx, `SELECT id FROM batches WHERE state = 'done' AND expires <= $1 ORDER BY expires LIMIT $2`, micros(now), limit))
	if err != nil {
		return nil, fmt.Errorf("expired batches: %w", err)
	}
	return out, nil
}

// Erase implements the batch store (package batch).
func (s *BatchStore) Erase(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM batch_items WHERE batch = $1`, id); err != nil {
			return fmt.Errorf("erase batch: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE batches SET state = 'expired', certificate = ''::bytea WHERE id = $1`, id); err != nil {
			return fmt.Errorf("erase batch: %w", err)
		}
		return nil
	})
}

// PurgeHeld implements the batch store (package batch).
func (s *BatchStore) PurgeHeld(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM batches WHERE state = 'held' AND created < $1`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("purge held batches: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
