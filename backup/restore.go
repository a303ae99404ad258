package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/keys"
)

// ErrNotEmpty is returned by Restore when the target already holds a hub.
var ErrNotEmpty = errors.New("backup: the restore target is not empty")

// ErrNoProvider is returned by Restore when the key provider the backup
// needs is not there: a backup holds no provider key.
var ErrNoProvider = errors.New("backup: no key provider")

// Restore restores the backup in dir into dst: the data directory must be
// absent or empty, and so must the databases named (the backup's kinds of
// store and log must match dst's). It checks every file's SHA-256 before
// writing anything, and unmarks the records the store snapshot shows
// integrated beyond the restored log's size, so that the hub integrates
// them again on start (see the package documentation).
//
// A backup holds no provider key: with a FileProvider, dst.KeyDir (default
// dst.DataDir/keys, which may be the only entry of the data directory)
// must be the live provider directory, the hub's or a replica of it;
// restore checks that it holds a root key and the hub must then be started
// with the same --key-dir. With an HSM, the hub must open the same token.
func Restore(ctx context.Context, dir string, dst Source) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Version != 1 {
		return nil, fmt.Errorf("restore: %s: not a version 1 backup manifest", manifestFile)
	}
	if want := map[bool]string{true: "postgres", false: "sqlite"}[dst.DatabaseURL != ""]; m.Store != want {
		return nil, fmt.Errorf("restore: the backup's store is %s, the target's %s", m.Store, want)
	}
	if want := map[bool]string{true: "mysql", false: "posix"}[dst.LogDatabase != ""]; m.Log != want {
		return nil, fmt.Errorf("restore: the backup's log is %s, the target's %s", m.Log, want)
	}
	if err := checkFiles(dir, m.Files); err != nil {
		return nil, err
	}
	if m.Keys != nil && m.Keys.Provider == "file" && !keys.IsProviderDir(dst.keyDir()) {
		return nil, fmt.Errorf("%w at %s: a backup does not hold the provider's keys (erasure must survive backups); "+
			"give --key-dir the live key directory (the backed-up hub used %s)", ErrNoProvider, dst.keyDir(), m.Keys.Dir)
	}
	if entries, err := os.ReadDir(dst.DataDir); err == nil && !onlyProvider(entries, dst) {
		return nil, fmt.Errorf("%w: %s has files", ErrNotEmpty, dst.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if m.Store == "postgres" {
		if err := emptyPostgres(ctx, dst.DatabaseURL); err != nil {
			return nil, err
		}
	}
	if m.Log == "mysql" {
		if err := emptyMySQL(ctx, dst.LogDatabase); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dst.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := copyTree(filepath.Join(dir, filesDir), dst.DataDir, nil); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dst.DataDir, "audit"), 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var logSize uint64
	if m.Log == "posix" {
		if err := copyTree(filepath.Join(dir, "log"), filepath.Join(dst.DataDir, posixLog), nil); err != nil {
			return nil, err
		}
		if logSize, err = posixTreeSize(filepath.Join(dst.DataDir, posixLog)); err != nil {
			return nil, err
		}
	} else {
		if err := loadMySQL(ctx, dst.LogDatabase, filepath.Join(dir, logDump)); err != nil {
			return nil, err
		}
		if logSize, err = mysqlTreeSize(ctx, dst.LogDatabase); err != nil {
			return nil, err
		}
	}
	if logSize != m.LogSize {
		return nil, fmt.Errorf("restore: the restored log has %d leaves, the manifest says %d", logSize, m.LogSize)
	}
	if m.Store == "sqlite" {
		for _, db := range sqliteDBs(dir) {
			if err := copyFile(filepath.Join(dir, filepath.Base(db)), filepath.Join(dst.DataDir, db)); err != nil {
				return nil, err
			}
		}
		if err := unmarkSQLite(ctx, filepath.Join(dst.DataDir, auditDB), logSize); err != nil {
			return nil, err
		}
	} else {
		if err := run(ctx, nil, "pg_restore", "--no-owner", "--exit-on-error", "--dbname="+dst.DatabaseURL, filepath.Join(dir, pgDump)); err != nil {
			return nil, err
		}
		if err := unmarkPostgres(ctx, dst.DatabaseURL, logSize); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// onlyProvider reports whether a data directory's entries are at most the
// default key provider directory (the live provider, kept in place).
func onlyProvider(entries []os.DirEntry, dst Source) bool {
	switch {
	case len(entries) == 0:
		return true
	case len(entries) == 1 && entries[0].Name() == keysDir && entries[0].IsDir():
		return filepath.Clean(dst.keyDir()) == filepath.Join(dst.DataDir, keysDir)
	}
	return false
}

func checkFiles(dir string, files []File) error {
	for _, f := range files {
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		h := sha256.New()
		n, err := io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
			return fmt.Errorf("restore: %s does not match the manifest (damaged backup)", f.Path)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return writeSync(dst, b, 0o600)
}

// unmarkSQLite clears the log indexes at or beyond the restored log size.
func unmarkSQLite(ctx context.Context, file string, size uint64) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE audit_records SET log_index = NULL WHERE log_index >= ?`, int64(size)); err != nil {
		return fmt.Errorf("restore: unmark: %w", err)
	}
	return nil
}

func unmarkPostgres(ctx context.Context, dsn string, size uint64) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `UPDATE audit_exchanges SET log_index = NULL WHERE log_index >= $1`, int64(size)); err != nil {
		return fmt.Errorf("restore: unmark: %w", err)
	}
	return nil
}

// emptyPostgres refuses a database that already has tables.
func emptyPostgres(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&n); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: the PostgreSQL database has %d tables", ErrNotEmpty, n)
	}
	return nil
}

// emptyMySQL creates the log database if needed and refuses one with tables.
func emptyMySQL(ctx context.Context, dsn string) error {
	args, env, db, err := mysqlArgs(dsn)
	if err != nil {
		return err
	}
	q := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`; SELECT count(*) FROM information_schema.tables WHERE table_schema = '%s'", db, db)
	out, err := runOut(ctx, env, clientTool(), append(args, "--batch", "--skip-column-names", "-e", q)...)
	if err != nil {
		return err
	}
	if s := string(trimSpace(out)); s != "0" {
		return fmt.Errorf("%w: the log database %s has %s tables", ErrNotEmpty, db, s)
	}
	return nil
}

func loadMySQL(ctx context.Context, dsn, file string) error {
	args, env, db, err := mysqlArgs(dsn)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	_, err = runOutIn(cctx, env, f, clientTool(), append(args, db)...)
	return err
}

// mysqlTreeSize reads the restored log's tree size.
func mysqlTreeSize(ctx context.Context, dsn string) (uint64, error) {
	args, env, db, err := mysqlArgs(dsn)
	if err != nil {
		return 0, err
	}
	out, err := runOut(ctx, env, clientTool(), append(args, "--batch", "--skip-column-names", "-e", "SELECT COALESCE(MAX(`size`), 0) FROM `TreeState`", db)...)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	n, err := strconv.ParseUint(string(trimSpace(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("restore: log tree size %q: %w", out, err)
	}
	return n, nil
}
