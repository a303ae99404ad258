// Package sqlite is the embedded store: SQLite through modernc.org/sqlite
// (pure Go), one database file per concern in the data directory, schemas
// evolved by numbered, embedded migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations
var migrationsFS embed.FS

// conn is a pair of pools over one database file: a single writer (SQLite
// allows one at a time; queuing in Go is cheaper than SQLITE_BUSY) and
// several readers (WAL lets them run beside the writer).
type conn struct {
	w *sql.DB
	r *sql.DB

	// The writer never checkpoints the WAL itself (a commit that has to
	// copy the WAL into the database stalls every exchange waiting on it);
	// a connection of its own does, in the background, without blocking
	// the writer.
	cp       *sql.DB
	wal      string // the WAL file's path
	stopCP   chan struct{}
	cpDone   chan struct{}
	stopOnce sync.Once
}

// The background checkpointer copies the WAL into the database every
// checkpointEvery, or sooner once the WAL holds checkpointAt bytes. A
// checkpoint ends with an fsync of the database file, and a commit whose
// WAL fsync meets it waits for both: checkpointing once a second put that
// wait (4–10 ms on this project's virtio disk) into 1 % of commits, the
// exchanges' p99; every 10 s it moves beyond the p99 (at 1,000 exchanges/s
// the hub's p99 went from 10.3 to 8.9 ms, three runs each,
// docs/performance.md). walLimit keeps the WAL file from being truncated
// on every reset (truncating 200 MB took 15 ms, inside a commit) while it
// stays below checkpointAt plus a second's writes.
const (
	checkpointEvery = 10 * time.Second
	checkpointAt    = 256 << 20
	checkpointPoll  = time.Second
	walLimit        = 512 << 20
)

// openDB opens (creating if needed) the database at file and applies the
// migrations under migrations/<schema>/ that it has not yet applied.
//
// It first checks that the directory exists and that the file and the
// directory are writable (SQLite needs to create -wal and -shm files beside
// the database), so that a missing, read-only or unwritable data directory
// is reported as such rather than as SQLite's "unable to open database file".
func openDB(ctx context.Context, file, schema string) (*conn, error) {
	if err := checkWritable(file); err != nil {
		return nil, fmt.Errorf("open %s database: %w", schema, err)
	}
	// In SQLite URIs, '?' and '#' end the path and '%' starts an escape.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(file)
	const pragmas = "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	// The writer takes the write lock when a transaction begins (no
	// upgrade deadlocks); readers use deferred transactions, as a read-only
	// connection cannot take the write lock.
	w, err := sql.Open("sqlite", uri+pragmas+"&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit("+strconv.Itoa(walLimit)+")&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	if err := migrate(ctx, w, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	r, err := sql.Open("sqlite", uri+pragmas+"&_txlock=deferred&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", file, err)
	}
	r.SetMaxOpenConns(8)
	cp, err := sql.Open("sqlite", uri+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s for checkpoints: %w", file, err)
	}
	cp.SetMaxOpenConns(1)
	c := &conn{w: w, r: r, cp: cp, wal: file + "-wal", stopCP: make(chan struct{}), cpDone: make(chan struct{})}
	go c.checkpoints()
	return c, nil
}

// checkpointDue tells whether a checkpoint is due, since the last one
// and with a WAL of walSize bytes.
func checkpointDue(since time.Duration, walSize int64) bool {
	return since >= checkpointEvery || walSize >= checkpointAt
}

// checkpoints runs passive WAL checkpoints until close.
func (c *conn) checkpoints() {
	defer close(c.cpDone)
	t := time.NewTicker(checkpointPoll)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-c.stopCP:
			return
		case <-t.C:
			var size int64
			if st, err := os.Stat(c.wal); err == nil {
				size = st.Size()
			}
			if !checkpointDue(time.Since(last), size) {
				continue
			}
			last = time.Now()
			if _, err := c.cp.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				slog.Debug("sqlite: background checkpoint", "err", err)
			}
		}
	}
}

// checkWritable reports, with the operating system's reason, why the
// database file cannot be created or written.
func checkWritable(file string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("data directory %s: not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".crossroads-probe-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database file is not writable: %w", err)
	}
	return f.Close()
}

func (c *conn) close() error {
	c.stopOnce.Do(func() { close(c.stopCP) })
	<-c.cpDone
	return errors.Join(c.cp.Close(), c.r.Close(), c.w.Close())
}

// migrate applies migrations/<schema>/NNNN_name.sql in order, each in its
// own transaction together with its row in schema_migrations.
func migrate(ctx context.Context, db *sql.DB, schema string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	dir := path.Join("migrations", schema)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return fmt.Errorf("read migrations %s: %w", schema, err)
	}
	type mig struct {
		version int
		name    string
	}
	var migs []mig
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		migs = append(migs, mig{v, name})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	for _, m := range migs {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(migrationsFS, path.Join(dir, m.name))
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}
