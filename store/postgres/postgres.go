// Package postgres is the production store: PostgreSQL through pgx, shared
// by several stateless hub nodes (design §5). Schemas evolve by numbered,
// embedded migrations, applied once whichever node starts first.
//
// The DSN is anything pgxpool.ParseConfig accepts (URL or key=value), e.g.
// "postgres://hub@db.example/crossroads?sslmode=verify-full&pool_max_conns=16".
// Tables live in the first schema of the connection's search_path, so a
// search_path in the DSN gives the hub its own schema. The register and
// audit stores may share one database or use two.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
)

//go:embed migrations
var migrationsFS embed.FS

// migrationLock is the pg_advisory_xact_lock key under which migrations
// (and audit partition creation) run: several hub nodes starting together
// apply each migration exactly once.
const migrationLock int64 = 0x63726f7373726473 // "crossrds"

// openPool connects and migrates schema.
func openPool(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", schema, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", schema, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s store: connect: %w", schema, err)
	}
	if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s store: %w", schema, err)
	}
	return pool, nil
}

type migration struct {
	version int
	name    string
}

// migrations lists migrations/<schema>/NNNN_name.sql in version order.
func migrations(schema string) ([]migration, error) {
	dir := path.Join("migrations", schema)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", schema, err)
	}
	var migs []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version", other, name)
		}
		seen[v] = name
		migs = append(migs, migration{v, name})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

// migrate applies the migrations of schema not yet recorded in
// schema_migrations, each in its own transaction together with its row,
// under a transaction-scoped advisory lock: a node that waited for the lock
// sees the row the winner committed and skips the migration.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	migs, err := migrations(schema)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if err := applyMigration(ctx, pool, schema, m); err != nil {
			return fmt.Errorf("migration %s/%s: %w", schema, m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, pool *pgxpool.Pool, schema string, m migration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			schema     text NOT NULL,
			version    integer NOT NULL,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (schema, version))`); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE schema = $1 AND version = $2)`,
			schema, m.version).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		body, err := fs.ReadFile(migrationsFS, path.Join("migrations", schema, m.name))
		if err != nil {
			return err
		}
		// The simple protocol runs a multi-statement script in one call.
		if _, err := tx.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations(schema, version, name) VALUES ($1, $2, $3)`, schema, m.version, m.name)
		return err
	})
}

// classify wraps PostgreSQL errors in the crossroads sentinels: integrity
// violations (foreign key, check, not null) and bad data (e.g. a NUL byte,
// a time out of range) are crossroads.ErrInvalid, unique violations
// crossroads.ErrConflict.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "23505":
		return fmt.Errorf("%w: %w", crossroads.ErrConflict, err)
	case strings.HasPrefix(pe.Code, "23"), strings.HasPrefix(pe.Code, "22"):
		return fmt.Errorf("%w: %w", crossroads.ErrInvalid, err)
	}
	return err
}

// Times are stored as timestamptz (microseconds) plus the nanoseconds below
// the microsecond, so that Go times round-trip exactly.

// splitTime returns t truncated to the microsecond, in UTC, and the rest.
func splitTime(t time.Time) (time.Time, int16) {
	ns := int16(t.Nanosecond() % 1000)
	return t.Add(-time.Duration(ns)).UTC(), ns
}

// splitOptTime is splitTime with the zero time as NULL.
func splitOptTime(t time.Time) (*time.Time, *int16) {
	if t.IsZero() {
		return nil, nil
	}
	u, ns := splitTime(t)
	return &u, &ns
}

func joinTime(t time.Time, ns int16) time.Time {
	return t.UTC().Add(time.Duration(ns))
}

func joinOptTime(t *time.Time, ns *int16) time.Time {
	if t == nil {
		return time.Time{}
	}
	var n int16
	if ns != nil {
		n = *ns
	}
	return joinTime(*t, n)
}
