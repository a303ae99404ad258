package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/audit"
)

// Lease returns the lease called name among every node of the database: a
// PostgreSQL session-level advisory lock held on a connection of its own.
// The integrator of a shared Merkle log holds "audit-log"; the SIEM export
// holds "siem". PostgreSQL releases the lock when the holder's session
// ends (the process is killed, the connection breaks), and the holder
// checks its connection every LeasePing: a holder whose connection fails
// learns at once that it may have lost the lease and stops.
func (s *AuditStore) Lease(name string) audit.Lease {
	return &lease{s: s, name: name}
}

// leaseKey is the advisory lock key of a lease: advisory locks are per
// database, so the key names the schema too (deployments, or tests,
// sharing a database in different schemas do not contend).
func leaseKey(ctx context.Context, c *pgx.Conn, name string) (int64, error) {
	var where string
	if err := c.QueryRow(ctx, `SELECT current_database() || '/' || current_schema()`).Scan(&where); err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write([]byte("crossroads-lease:" + where + ":" + name))
	return int64(h.Sum64()), nil
}

// LeasePoll is how often a node waiting for a lease tries to take it;
// LeasePing how often the holder checks its session.
const (
	LeasePoll = 250 * time.Millisecond
	LeasePing = 250 * time.Millisecond
)

type lease struct {
	s    *AuditStore
	name string
}

var _ audit.Lease = (*lease)(nil)

// Acquire implements audit.Lease.
func (l *lease) Acquire(ctx context.Context) (context.Context, func(), error) {
	cfg := l.s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "crossroads-lease-" + l.name
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil {
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return nil, nil, fmt.Errorf("lease %s: %w", l.name, err)
			}
			conn = c
		}
		var got bool
		key, err := leaseKey(ctx, conn, l.name)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("lease %s: %w", l.name, ctx.Err())
			}
			conn.Close(context.Background())
			conn = nil
		}
		if got {
			held, cancel := context.WithCancel(context.Background())
			c := conn
			conn = nil // now owned by the watcher
			done := make(chan struct{})
			go l.watch(held, cancel, c, key, done)
			return held, func() { cancel(); <-done }, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("lease %s: %w", l.name, ctx.Err())
		case <-time.After(LeasePoll):
		}
	}
}

// watch pings the holder's session until the lease is released or lost,
// then ends the session (which releases the lock).
func (l *lease) watch(held context.Context, cancel context.CancelFunc, c *pgx.Conn, key int64, done chan struct{}) {
	defer close(done)
	defer func() {
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		c.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
		c.Close(ctx)
		stop()
	}()
	t := time.NewTicker(LeasePing)
	defer t.Stop()
	for {
		select {
		case <-held.Done():
			return
		case <-t.C:
		}
		ctx, stop := context.WithTimeout(held, 2*LeasePing+time.Second)
		var ok bool
		err := c.QueryRow(ctx, `SELECT true`).Scan(&ok)
		stop()
		if err != nil && held.Err() == nil {
			cancel() // lost: stop whatever the lease guards
			return
		}
	}
}
