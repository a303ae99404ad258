package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	push "github.com/crossroads-hub/crossroads/push/outbox"
)

// PushFile is the outbox database in the data directory.
const PushFile = "push.db"

// Push is the outbox of mutation push (push.Store) in its own database
// file, push.db. It is safe for concurrent use; its single writer
// serialises claims, so no two workers ever hold the same queue.
type Push struct {
	c         *conn
	closeOnce sync.Once
	closeErr  error
}

var _ push.Store = (*Push)(nil)

// OpenPush opens, creating and migrating if needed, dir/push.db.
func OpenPush(ctx context.Context, dir string) (*Push, error) {
	c, err := openDB(ctx, filepath.Join(dir, PushFile), "push")
	if err != nil {
		return nil, err
	}
	return &Push{c: c}, nil
}

// Close closes the database. Closing again is a no-op.
func (s *Push) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.close() })
	return s.closeErr
}

const pubColumns = `p.id, p.publisher, p.service, p.operation, p.idem_key, p.digest, p.subject_kind, p.subject, p.effective, p.payload, p.routed, p.created_at`

const entryColumns = `o.seq, o.subscription, o.subscriber, o.queue, o.delivery, o.state, o.attempts, o.next_at, o.since,
	o.body, o.seal, o.receipt, o.exchange_id, o.last_error, o.delivered_at, ` + pubColumns

type scanner interface{ Scan(...any) error }

func scanPublication(sc scanner, extra ...any) (push.Publication, error) {
	var p push.Publication
	var eff, created string
	if err := sc.Scan(append(extra, &p.ID, &p.Publisher, &p.Service, &p.Operation, &p.Key, &p.Digest, &p.SubjectKind, &p.Subject,
		&eff, &p.Payload, &p.Routed, &created)...); err != nil {
		return p, err
	}
	var err error
	if p.Effective, err = decTime(eff); err != nil {
		return p, err
	}
	p.Time, err = decTime(created)
	return p, err
}

func scanEntry(sc scanner) (push.Entry, error) {
	var e push.Entry
	var next, since string
	var delivered sql.NullString
	pub, err := scanPublication(sc, &e.Seq, &e.Subscription, &e.Subscriber, &e.Queue, &e.Delivery, &e.State, &e.Attempts, &next, &since,
		&e.Sealed.Body, &e.Sealed.Seal, &e.Sealed.Receipt, &e.Sealed.ExchangeID, &e.LastError, &delivered)
	if err != nil {
		return e, err
	}
	e.Publication = pub
	if e.NextAt, err = decTime(next); err != nil {
		return e, err
	}
	if e.Since, err = decTime(since); err != nil {
		return e, err
	}
	e.DeliveredAt, err = decOptTime(delivered)
	return e, err
}

// Publication implements push.Store.
func (s *Push) Publication(ctx context.Context, service, publisher, key string) (push.Publication, error) {
	row := s.c.r.QueryRowContext(ctx, `SELECT `+pubColumns+` FROM publications p WHERE service = ? AND publisher = ? AND idem_key = ?`, service, publisher, key)
	p, err := scanPublication(row)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("publication: %w", crossroads.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("publication: %w", err)
	}
	return p, nil
}

// Publish implements push.Store.
func (s *Push) Publish(ctx context.Context, pub push.Publication, entries []push.Entry) error {
	eff, err := encTime(pub.Effective)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	created, err := encTime(pub.Time)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO publications(id, publisher, service, operation, idem_key, digest, subject_kind, subject,
		effective, payload, routed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		pub.ID, pub.Publisher, pub.Service, pub.Operation, pub.Key, pub.Digest, pub.SubjectKind, pub.Subject, eff, []byte(pub.Payload), pub.Routed, created); err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("publish: %w: %w", crossroads.ErrConflict, err)
		}
		return fmt.Errorf("publish: %w", constraintErr(err))
	}
	if len(entries) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO outbox(publication, subscription, subscriber, queue, delivery, state, next_at, since)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer st.Close()
		for _, e := range entries {
			next, err := encTime(e.NextAt)
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			since, err := encTime(e.Since)
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			state := e.State
			if state == "" {
				state = push.StatePending
			}
			if _, err := st.ExecContext(ctx, pub.ID, e.Subscription, e.Subscriber, e.Queue, e.Delivery, state, next, since); err != nil {
				return fmt.Errorf("publish: entry: %w", constraintErr(err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("publish: commit: %w", err)
	}
	return nil
}

// Claim implements push.Store. The writer connection serialises claims.
func (s *Push) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]push.Entry, error) {
	at, err := encTime(now)
	if err != nil {
		return nil, err
	}
	until, err := encTime(now.Add(lease))
	if err != nil {
		return nil, err
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+` FROM outbox o JOIN publications p ON p.id = o.publication
		WHERE o.state = 'pending' AND o.next_at <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)
		AND NOT EXISTS (SELECT 1 FROM outbox h WHERE h.queue = o.queue AND h.state = 'pending' AND h.seq < o.seq)
		ORDER BY o.next_at, o.seq LIMIT ?`, at, at, limit)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	var out []push.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim: %w", err)
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	for _, e := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE seq = ?`, owner, until, e.Seq); err != nil {
			return nil, fmt.Errorf("claim: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim: commit: %w", err)
	}
	return out, nil
}

// errNotHeld: the entry is not (or no longer) leased by the owner.
var errNotHeld = fmt.Errorf("%w: entry not leased by this owner", crossroads.ErrConflict)

func (s *Push) update(ctx context.Context, what, q string, args ...any) error {
	res, err := s.c.w.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, errNotHeld)
	}
	return nil
}

// Seal implements push.Store.
func (s *Push) Seal(ctx context.Context, seq int64, owner string, sl push.Sealed, state string) error {
	release := state != push.StatePending
	return s.update(ctx, "seal", `UPDATE outbox SET body = ?, seal = ?, receipt = ?, exchange_id = ?, state = ?,
		lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
		WHERE seq = ? AND lease_owner = ? AND state = 'pending'`, sl.Body, sl.Seal, sl.Receipt, sl.ExchangeID, state, release, release, seq, owner)
}

// Finish implements push.Store.
func (s *Push) Finish(ctx context.Context, seq int64, owner, state string, at time.Time, lastError string) error {
	t, err := encTime(at)
	if err != nil {
		return err
	}
	return s.update(ctx, "finish", `UPDATE outbox SET state = ?, delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,
		last_error = ?, lease_owner = NULL, lease_until = NULL WHERE seq = ? AND lease_owner = ? AND state = 'pending'`,
		state, state, t, lastError, seq, owner)
}

// Retry implements push.Store.
func (s *Push) Retry(ctx context.Context, seq int64, owner string, attempts int, next time.Time, lastError string) error {
	t, err := encTime(next)
	if err != nil {
		return err
	}
	return s.update(ctx, "retry", `UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
		WHERE seq = ? AND lease_owner = ? AND state = 'pending'`, attempts, t, lastError, seq, owner)
}

// Redeliver implements push.Store.
func (s *Push) Redeliver(ctx context.Context, subscription string, seqs []int64, now time.Time) (int64, error) {
	t, err := encTime(now)
	if err != nil {
		return 0, err
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	defer tx.Rollback()
	const set = `UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, since = ?, last_error = '', lease_owner = NULL, lease_until = NULL
		WHERE subscription = ? AND delivery = 'push' AND state IN ('dead', 'delivered')`
	var total int64
	if len(seqs) == 0 {
		res, err := tx.ExecContext(ctx, set+` AND state = 'dead'`, t, t, subscription)
		if err != nil {
			return 0, fmt.Errorf("redeliver: %w", err)
		}
		total, _ = res.RowsAffected()
	}
	for _, seq := range seqs {
		res, err := tx.ExecContext(ctx, set+` AND seq = ?`, t, t, subscription, seq)
		if err != nil {
			return 0, fmt.Errorf("redeliver: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("redeliver: commit: %w", err)
	}
	return total, nil
}

// Feed implements push.Store.
func (s *Push) Feed(ctx context.Context, subscription string, after int64, limit int) ([]push.Entry, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT `+entryColumns+` FROM outbox o JOIN publications p ON p.id = o.publication
		WHERE o.subscription = ? AND o.seq > ? AND o.state <> 'dropped' ORDER BY o.seq LIMIT ?`, subscription, after, limit)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	defer rows.Close()
	var out []push.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("feed: %w", err)
		}
		if e.State == push.StatePending {
			break // not sealed yet: nothing after it either, so that a cursor never skips it
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Ack implements push.Store.
func (s *Push) Ack(ctx context.Context, subscription string, seq int64, at time.Time) error {
	t, err := encTime(at)
	if err != nil {
		return err
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO cursors(subscription, acked) VALUES (?, ?)
		ON CONFLICT(subscription) DO UPDATE SET acked = max(acked, excluded.acked)`, subscription, seq); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'delivered', delivered_at = ?
		WHERE subscription = ? AND seq <= ? AND state = 'available'`, t, subscription, seq); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ack: commit: %w", err)
	}
	return nil
}

// Cursor implements push.Store.
func (s *Push) Cursor(ctx context.Context, subscription string) (int64, error) {
	var n int64
	err := s.c.r.QueryRowContext(ctx, `SELECT acked FROM cursors WHERE subscription = ?`, subscription).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cursor: %w", err)
	}
	return n, nil
}

// Entries implements push.Store.
func (s *Push) Entries(ctx context.Context, q push.EntryQuery) ([]push.Entry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT `+entryColumns+` FROM outbox o JOIN publications p ON p.id = o.publication
		WHERE (? = '' OR o.subscription = ?) AND (? = '' OR o.state = ?) AND o.seq > ? ORDER BY o.seq LIMIT ?`,
		q.Subscription, q.Subscription, q.State, q.State, q.After, limit)
	if err != nil {
		return nil, fmt.Errorf("entries: %w", err)
	}
	defer rows.Close()
	var out []push.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("entries: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Counts implements push.Store.
func (s *Push) Counts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT state, count(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}
