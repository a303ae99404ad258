package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
	push "github.com/crossroads-hub/crossroads/push/outbox"
)

// Push is the outbox of mutation push (push.Store) in PostgreSQL, shared
// by every hub node. Claims take the heads of the queues with SELECT …
// FOR UPDATE SKIP LOCKED under a lease, so two nodes never deliver for the
// same (subscriber, person) at once; a publication locks its subscribers
// (transaction advisory locks, in order) so that within a subscriber the
// outbox's sequence numbers follow commit order — a feed's cursor never
// passes an entry that is not yet visible.
type Push struct {
	pool *pgxpool.Pool
}

var _ push.Store = (*Push)(nil)

// OpenPush connects to the database at dsn and applies the push migrations.
func OpenPush(ctx context.Context, dsn string) (*Push, error) {
	pool, err := openPool(ctx, dsn, "push")
	if err != nil {
		return nil, err
	}
	return &Push{pool: pool}, nil
}

// Close closes the connections.
func (s *Push) Close() error {
	s.pool.Close()
	return nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

const pgPubColumns = `p.id, p.publisher, p.service, p.operation, p.idem_key, p.digest, p.subject_kind, p.subject, p.effective, p.payload, p.routed, p.created_at`

const pgEntryColumns = `o.seq, o.subscription, o.subscriber, o.queue, o.delivery, o.state, o.attempts, o.next_at, o.since,
	o.body, o.seal, o.receipt, o.exchange_id, o.last_error, o.delivered_at, ` + pgPubColumns

func scanPub(row pgx.Row, extra ...any) (push.Publication, error) {
	var p push.Publication
	var eff, created int64
	if err := row.Scan(append(extra, &p.ID, &p.Publisher, &p.Service, &p.Operation, &p.Key, &p.Digest, &p.SubjectKind, &p.Subject,
		&eff, &p.Payload, &p.Routed, &created)...); err != nil {
		return p, err
	}
	p.Effective, p.Time = fromNanos(eff), fromNanos(created)
	return p, nil
}

func scanPgEntry(row pgx.Row) (push.Entry, error) {
	var e push.Entry
	var next, since int64
	var delivered *int64
	pub, err := scanPub(row, &e.Seq, &e.Subscription, &e.Subscriber, &e.Queue, &e.Delivery, &e.State, &e.Attempts, &next, &since,
		&e.Sealed.Body, &e.Sealed.Seal, &e.Sealed.Receipt, &e.Sealed.ExchangeID, &e.LastError, &delivered)
	if err != nil {
		return e, err
	}
	e.Publication = pub
	e.NextAt, e.Since = fromNanos(next), fromNanos(since)
	if delivered != nil {
		e.DeliveredAt = fromNanos(*delivered)
	}
	return e, nil
}

func collectEntries(rows pgx.Rows) ([]push.Entry, error) {
	defer rows.Close()
	var out []push.Entry
	for rows.Next() {
		e, err := scanPgEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Publication implements push.Store.
func (s *Push) Publication(ctx context.Context, service, publisher, key string) (push.Publication, error) {
	p, err := scanPub(s.pool.QueryRow(ctx, `SELECT `+pgPubColumns+` FROM push_publications p WHERE service = $1 AND publisher = $2 AND idem_key = $3`,
		service, publisher, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("publication: %w", crossroads.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("publication: %w", err)
	}
	return p, nil
}

// Publish implements push.Store.
func (s *Push) Publish(ctx context.Context, pub push.Publication, entries []push.Entry) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var subscribers []string
		for _, e := range entries {
			subscribers = append(subscribers, e.Subscriber)
		}
		slices.Sort(subscribers)
		for _, sub := range slices.Compact(subscribers) {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('crossroads-push:' || current_schema() || ':' || $1, 0))`, sub); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO push_publications(id, publisher, service, operation, idem_key, digest, subject_kind, subject,
			effective, payload, routed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			pub.ID, pub.Publisher, pub.Service, pub.Operation, pub.Key, pub.Digest, pub.SubjectKind, pub.Subject,
			nanos(pub.Effective), []byte(pub.Payload), pub.Routed, nanos(pub.Time)); err != nil {
			return classify(err)
		}
		if len(entries) == 0 {
			return nil
		}
		rows := make([][]any, len(entries))
		for i, e := range entries {
			state := e.State
			if state == "" {
				state = push.StatePending
			}
			rows[i] = []any{pub.ID, e.Subscription, e.Subscriber, e.Queue, e.Delivery, state, nanos(e.NextAt), nanos(e.Since)}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"push_outbox"},
			[]string{"publication", "subscription", "subscriber", "queue", "delivery", "state", "next_at", "since"}, pgx.CopyFromRows(rows))
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Claim implements push.Store.
func (s *Push) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]push.Entry, error) {
	var out []push.Entry
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT o.seq FROM push_outbox o
				WHERE o.state = 'pending' AND o.next_at <= $1 AND (o.lease_until IS NULL OR o.lease_until <= $1)
				AND NOT EXISTS (SELECT 1 FROM push_outbox h WHERE h.queue = o.queue AND h.state = 'pending' AND h.seq < o.seq)
				ORDER BY o.next_at, o.seq LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE push_outbox o SET lease_owner = $3, lease_until = $4 FROM c WHERE o.seq = c.seq RETURNING o.seq`,
			nanos(now), limit, owner, nanos(now.Add(lease)))
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(seqs) == 0 {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+pgEntryColumns+` FROM push_outbox o JOIN push_publications p ON p.id = o.publication
			WHERE o.seq = ANY($1) ORDER BY o.next_at, o.seq`, seqs)
		if err != nil {
			return err
		}
		out, err = collectEntries(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	return out, nil
}

var errNotLeased = fmt.Errorf("%w: entry not leased by this owner", crossroads.ErrConflict)

func (s *Push) update(ctx context.Context, what, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, errNotLeased)
	}
	return nil
}

// Seal implements push.Store.
func (s *Push) Seal(ctx context.Context, seq int64, owner string, sl push.Sealed, state string) error {
	release := state != push.StatePending
	return s.update(ctx, "seal", `UPDATE push_outbox SET body = $1, seal = $2, receipt = $3, exchange_id = $4, state = $5,
		lease_owner = CASE WHEN $6 THEN NULL ELSE lease_owner END, lease_until = CASE WHEN $6 THEN NULL ELSE lease_until END
		WHERE seq = $7 AND lease_owner = $8 AND state = 'pending'`, sl.Body, sl.Seal, sl.Receipt, sl.ExchangeID, state, release, seq, owner)
}

// Finish implements push.Store.
func (s *Push) Finish(ctx context.Context, seq int64, owner, state string, at time.Time, lastError string) error {
	return s.update(ctx, "finish", `UPDATE push_outbox SET state = $1, delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END,
		last_error = $3, lease_owner = NULL, lease_until = NULL WHERE seq = $4 AND lease_owner = $5 AND state = 'pending'`,
		state, nanos(at), lastError, seq, owner)
}

// Retry implements push.Store.
func (s *Push) Retry(ctx context.Context, seq int64, owner string, attempts int, next time.Time, lastError string) error {
	return s.update(ctx, "retry", `UPDATE push_outbox SET attempts = $1, next_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL
		WHERE seq = $4 AND lease_owner = $5 AND state = 'pending'`, attempts, nanos(next), lastError, seq, owner)
}

// Redeliver implements push.Store.
func (s *Push) Redeliver(ctx context.Context, subscription string, seqs []int64, now time.Time) (int64, error) {
	q := `UPDATE push_outbox SET state = 'pending', attempts = 0, next_at = $1, since = $1, last_error = '', lease_owner = NULL, lease_until = NULL
		WHERE subscription = $2 AND delivery = 'push'`
	args := []any{nanos(now), subscription}
	if len(seqs) == 0 {
		q += ` AND state = 'dead'`
	} else {
		q += ` AND state IN ('dead', 'delivered') AND seq = ANY($3)`
		args = append(args, seqs)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Feed implements push.Store.
func (s *Push) Feed(ctx context.Context, subscription string, after int64, limit int) ([]push.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pgEntryColumns+` FROM push_outbox o JOIN push_publications p ON p.id = o.publication
		WHERE o.subscription = $1 AND o.seq > $2 AND o.state <> 'dropped' ORDER BY o.seq LIMIT $3`, subscription, after, limit)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	all, err := collectEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	for i, e := range all {
		if e.State == push.StatePending {
			return all[:i], nil
		}
	}
	return all, nil
}

// Ack implements push.Store.
func (s *Push) Ack(ctx context.Context, subscription string, seq int64, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO push_cursors(subscription, acked) VALUES ($1, $2)
			ON CONFLICT(subscription) DO UPDATE SET acked = greatest(push_cursors.acked, excluded.acked)`, subscription, seq); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE push_outbox SET state = 'delivered', delivered_at = $1
			WHERE subscription = $2 AND seq <= $3 AND state = 'available'`, nanos(at), subscription, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Cursor implements push.Store.
func (s *Push) Cursor(ctx context.Context, subscription string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT acked FROM push_cursors WHERE subscription = $1`, subscription).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx, `SELECT `+pgEntryColumns+` FROM push_outbox o JOIN push_publications p ON p.id = o.publication
		WHERE ($1 = '' OR o.subscription = $1) AND ($2 = '' OR o.state = $2) AND o.seq > $3 ORDER BY o.seq LIMIT $4`,
		q.Subscription, q.State, q.After, limit)
	if err != nil {
		return nil, fmt.Errorf("entries: %w", err)
	}
	out, err := collectEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("entries: %w", err)
	}
	return out, nil
}

// Counts implements push.Store.
func (s *Push) Counts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM push_outbox GROUP BY state`)
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
