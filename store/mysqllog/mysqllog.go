// Package mysqllog keeps the audit trail's Merkle log in MariaDB or MySQL
// through Tessera's MySQL driver, so that several hub nodes share one log:
// one of them integrates (audit.Config.Lease), every one of them serves the
// checkpoint, tiles and proofs from the database.
//
// It provides the storage only (an audit.LogStorage is built from it); it
// does not import the audit package.
package mysqllog

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	tmysql "github.com/transparency-dev/tessera/storage/mysql"
)

//go:embed schema.sql
var schema string

// MinCheckpointInterval is the driver's lower bound on the interval
// between checkpoints.
const MinCheckpointInterval = time.Second

// Log is a Merkle log in a MariaDB or MySQL database.
type Log struct {
	db *sql.DB
	st *tmysql.Storage
}

// Open connects to the database of dsn (the go-sql-driver form,
// user:password@tcp(host:3306)/dbname), creating the database and
// Tessera's tables when absent.
func Open(ctx context.Context, dsn string) (*Log, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("log database: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("log database: the DSN names no database (…/dbname)")
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	cfg.ParseTime = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("log database: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetConnMaxIdleTime(time.Minute)
	for _, stmt := range strings.Split(schema, ";") {
		if s := strings.TrimSpace(stripComments(stmt)); s != "" {
			if _, err := db.ExecContext(ctx, s); err != nil {
				db.Close()
				return nil, fmt.Errorf("log database: schema: %w", err)
			}
		}
	}
	st, err := tmysql.New(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("log database: %w", err)
	}
	return &Log{db: db, st: st}, nil
}

func createDatabase(ctx context.Context, cfg *mysql.Config) error {
	c := cfg.Clone()
	name := c.DBName
	c.DBName = ""
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return fmt.Errorf("log database: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`"); err != nil {
		return fmt.Errorf("log database: create %s: %w", name, err)
	}
	return nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Driver is the Tessera driver, for tessera.NewAppender.
func (l *Log) Driver() tessera.Driver { return l.st }

// Reader reads the log without appending.
func (l *Log) Reader() tessera.LogReader { return l.st }

// Barrier returns once no transaction appending to the log is open: it
// reads the tree state with a locking read, which waits for an appending
// transaction (Tessera sequences and integrates a batch in one
// transaction holding that row) to commit or roll back. A node that takes
// over integration calls it before reconciling, so that the last batch of
// a node that was killed mid-append is either wholly in the log or not at
// all when the new integrator looks.
func (l *Log) Barrier(ctx context.Context) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("log barrier: %w", err)
	}
	defer tx.Rollback()
	var size uint64
	if err := tx.QueryRowContext(ctx, "SELECT `size` FROM `TreeState` WHERE `id` = 0 FOR UPDATE").Scan(&size); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("log barrier: %w", err)
	}
	return tx.Commit()
}

// DB is the database handle (backups).
func (l *Log) DB() *sql.DB { return l.db }

// Close closes the connections.
func (l *Log) Close() error { return l.db.Close() }
