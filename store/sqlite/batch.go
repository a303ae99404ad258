package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// BatchFile is the batch database's file name in the data directory.
const BatchFile = "batch.db"

// BatchStore is the batch store (package batch's Store) in dir/batch.db.
type BatchStore struct {
	c *conn
}

// OpenBatch opens (creating) the batch database in the data directory.
//
// The embedded store belongs to one hub process (one node): every lease
// found on opening is a dead process's, so it is released at once — the
// items a killed hub was running are run again right after the restart,
// not a lease period later. (On PostgreSQL, shared by nodes, leases run
// out instead.)
func OpenBatch(ctx context.Context, dir string) (*BatchStore, error) {
	c, err := openDB(ctx, filepath.Join(dir, BatchFile), "batch")
	if err != nil {
		return nil, err
	}
	if _, err := c.w.ExecContext(ctx, `UPDATE batch_items SET lease_until = 0, token = '' WHERE state = 'pending' AND lease_until > 0 AND lease_until < ?`, int64(heldLease)); err != nil {
		c.close()
		return nil, fmt.Errorf("open batch store: release leases: %w", err)
	}
	return &BatchStore{c: c}, nil
}

// Close closes the database.
func (s *BatchStore) Close() error { return s.c.close() }

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
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batches(id, participant, user_name, serial, certificate, state, created, retention, total)
			VALUES (?, ?, ?, ?, ?, 'held', ?, ?, ?)`, b.ID, b.Participant, b.User, b.Serial, b.Certificate, micros(b.Created), int64(b.Retention/time.Microsecond), len(items)); err != nil {
			return fmt.Errorf("create batch: %w", classifySQLite(err))
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO batch_items(batch, seq, participant, item, lease_until) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("create batch: %w", err)
		}
		defer st.Close()
		for i, it := range items {
			if _, err := st.ExecContext(ctx, b.ID, i+1, b.Participant, it, int64(heldLease)); err != nil {
				return fmt.Errorf("create batch item %d: %w", i+1, err)
			}
		}
		return nil
	})
}

func classifySQLite(err error) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("%w: %w", crossroads.ErrConflict, err)
	}
	return err
}

func (s *BatchStore) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Activate implements the batch store (package batch).
func (s *BatchStore) Activate(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE batches SET state = 'running' WHERE id = ? AND state = 'held'`, id)
		if err != nil {
			return fmt.Errorf("activate batch: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("activate batch %s: %w", id, crossroads.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE batch_items SET lease_until = 0 WHERE batch = ?`, id); err != nil {
			return fmt.Errorf("activate batch: %w", err)
		}
		return nil
	})
}

// Discard implements the batch store (package batch).
func (s *BatchStore) Discard(ctx context.Context, id string) error {
	_, err := s.c.w.ExecContext(ctx, `DELETE FROM batches WHERE id = ? AND state = 'held'`, id)
	if err != nil {
		return fmt.Errorf("discard batch: %w", err)
	}
	return nil
}

const batchColumns = `id, participant, user_name, serial, certificate, state, created, finished, expires, retention, total, done, allowed, denied, failed`

// Batch implements the batch store (package batch).
func (s *BatchStore) Batch(ctx context.Context, id string) (crossroads.Batch, error) {
	var b crossroads.Batch
	var created, finished, expires, retention int64
	err := s.c.r.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = ?`, id).Scan(
		&b.ID, &b.Participant, &b.User, &b.Serial, &b.Certificate, &b.State, &created, &finished, &expires, &retention,
		&b.Total, &b.Done, &b.Allowed, &b.Denied, &b.Failed)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("batch %s: %w", id, crossroads.ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read batch: %w", err)
	}
	b.Created, b.Finished, b.Expires = fromMicros(created), fromMicros(finished), fromMicros(expires)
	b.Retention = time.Duration(retention) * time.Microsecond
	return b, nil
}

// Runnable implements the batch store (package batch).
func (s *BatchStore) Runnable(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rs, err := s.c.r.QueryContext(ctx, `SELECT DISTINCT participant FROM batch_items WHERE state = 'pending' AND lease_until <= ? LIMIT ?`, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("runnable batches: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var p string
		if err := rs.Scan(&p); err != nil {
			return nil, fmt.Errorf("runnable batches: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Claim implements the batch store (package batch). SQLite has one writer: the claim's
// transaction holds the write lock, so two claims never take one item.
func (s *BatchStore) Claim(ctx context.Context, participant string, n int, now time.Time, lease time.Duration) ([]crossroads.BatchClaim, error) {
	tok := newToken()
	var out []crossroads.BatchClaim
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, `UPDATE batch_items SET lease_until = ?, token = ?, attempts = attempts + 1
			WHERE (batch, seq) IN (SELECT batch, seq FROM batch_items WHERE participant = ? AND state = 'pending' AND lease_until <= ?
				ORDER BY batch, seq LIMIT ?)
			RETURNING batch, seq, attempts, item`, micros(now.Add(lease)), tok, participant, micros(now), n)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			c := crossroads.BatchClaim{Participant: participant, Token: tok}
			if err := rs.Scan(&c.Batch, &c.Seq, &c.Attempts, &c.Item); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rs.Err()
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
	err = s.tx(ctx, func(tx *sql.Tx) error {
		x, err := tx.ExecContext(ctx, `UPDATE batch_items SET state = 'done', token = '', result = ?, released = ?
			WHERE batch = ? AND seq = ? AND state = 'pending' AND token = ?`, res, r.Released, c.Batch, c.Seq, c.Token)
		if err != nil {
			return err
		}
		if n, _ := x.RowsAffected(); n == 0 {
			return nil
		}
		stored = true
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET done = done + 1, allowed = allowed + ?, denied = denied + ?, failed = failed + ? WHERE id = ?`,
			a, d, f, c.Batch); err != nil {
			return err
		}
		at := micros(r.Completed)
		_, err = tx.ExecContext(ctx, `UPDATE batches SET state = 'done', finished = ?, expires = ? + retention WHERE id = ? AND state = 'running' AND done >= total`,
			at, at, c.Batch)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store batch result: %w", err)
	}
	return stored, nil
}

// Retry implements the batch store (package batch).
func (s *BatchStore) Retry(ctx context.Context, c crossroads.BatchClaim, notBefore time.Time) error {
	_, err := s.c.w.ExecContext(ctx, `UPDATE batch_items SET lease_until = ?, token = '' WHERE batch = ? AND seq = ? AND state = 'pending' AND token = ?`,
		micros(notBefore), c.Batch, c.Seq, c.Token)
	if err != nil {
		return fmt.Errorf("retry batch item: %w", err)
	}
	return nil
}

// Results implements the batch store (package batch).
func (s *BatchStore) Results(ctx context.Context, id string, after, limit int) ([]crossroads.BatchResult, error) {
	rs, err := s.c.r.QueryContext(ctx, `SELECT result, released FROM batch_items WHERE batch = ? AND seq > ? AND state = 'done' ORDER BY seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("batch results: %w", err)
	}
	defer rs.Close()
	var out []crossroads.BatchResult
	for rs.Next() {
		var res, rel []byte
		if err := rs.Scan(&res, &rel); err != nil {
			return nil, fmt.Errorf("batch results: %w", err)
		}
		var r crossroads.BatchResult
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, fmt.Errorf("batch results: %w", err)
		}
		r.Released = rel
		out = append(out, r)
	}
	return out, rs.Err()
}

// Expired implements the batch store (package batch).
func (s *BatchStore) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rs, err := s.c.r.QueryContext(ctx, `SELECT id FROM batches WHERE state = 'done' AND expires <= ? ORDER BY expires LIMIT ?`, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("expired batches: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("expired batches: %w", err)
		}
		out = append(out, id)
	}
	return out, rs.Err()
}

// Erase implements the batch store (package batch).
func (s *BatchStore) Erase(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM batch_items WHERE batch = ?`, id); err != nil {
			return fmt.Errorf("erase batch: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET state = 'expired', certificate = x'' WHERE id = ?`, id); err != nil {
			return fmt.Errorf("erase batch: %w", err)
		}
		return nil
	})
}

// PurgeHeld implements the batch store (package batch).
func (s *BatchStore) PurgeHeld(ctx context.Context, before time.Time) (int, error) {
	res, err := s.c.w.ExecContext(ctx, `DELETE FROM batches WHERE state = 'held' AND created < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("purge held batches: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
