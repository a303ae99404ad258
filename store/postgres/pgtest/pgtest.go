// Package pgtest gives tests a throw-away PostgreSQL database, following
// the project's test database policy:
//
//   - The server is the one at 127.0.0.1:5432 (trust authentication, user
//     postgres), or the one named by the DSN in $CROSSROADS_TEST_POSTGRES,
//     which must name a database to connect to for administration (e.g.
//     "postgres://postgres@db:5432/postgres?sslmode=disable").
//   - Each call of New creates a fresh database, crossroads_test_<random>,
//     through that maintenance database, and drops it when the test ends.
//   - If no server is reachable, the test is skipped with a message saying
//     so — unless $CROSSROADS_REQUIRE_POSTGRES is set to a true value ("1",
//     as CI does), in which case it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by New.
const (
	EnvDSN     = "CROSSROADS_TEST_POSTGRES"
	EnvRequire = "CROSSROADS_REQUIRE_POSTGRES"
)

// DefaultDSN is the maintenance database used when $CROSSROADS_TEST_POSTGRES is empty.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// connectTimeout bounds the reachability check.
const connectTimeout = 5 * time.Second

// TB is the part of testing.TB that the helper uses (an interface of its
// own so that the skip/fail decision can be tested).
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// DB is a fresh database on the test server.
type DB struct {
	// Name is the database name, crossroads_test_<random>.
	Name string
	// DSN connects to it.
	DSN string

	mu      sync.Mutex
	schemas int
}

// New creates a fresh database for tb, dropped when tb ends, following
// the environment (see the package documentation).
func New(tb TB) *DB {
	tb.Helper()
	return NewAt(tb, AdminDSN(), Required())
}

// AdminDSN is $CROSSROADS_TEST_POSTGRES, or DefaultDSN when it is empty.
func AdminDSN() string {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Required reports whether $CROSSROADS_REQUIRE_POSTGRES asks for a server.
func Required() bool {
	v, err := strconv.ParseBool(os.Getenv(EnvRequire))
	return err == nil && v
}

// NewAt is New with the maintenance DSN and the requirement given.
func NewAt(tb TB, adminDSN string, required bool) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		if required {
			tb.Fatalf("PostgreSQL test server %s unreachable and %s is set: %v", redact(adminDSN), EnvRequire, err)
		} else {
			tb.Skipf("PostgreSQL test server %s unreachable (%v); set %s to another server, or %s=1 to fail instead of skipping",
				redact(adminDSN), err, EnvDSN, EnvRequire)
		}
		return nil
	}
	defer admin.Close(context.Background())
	var b [8]byte
	rand.Read(b[:])
	name := "crossroads_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("create test database: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		// FORCE ends connections a test left open.
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	dsn, err := WithParams(adminDSN, name, nil)
	if err != nil {
		tb.Fatalf("test database DSN: %v", err)
		return nil
	}
	return &DB{Name: name, DSN: dsn}
}

// Schema creates a new, empty schema in the database and returns a DSN
// whose search_path selects it: a cheap fresh store for one (sub)test.
func (d *DB) Schema(tb TB) string {
	tb.Helper()
	d.mu.Lock()
	d.schemas++
	schema := fmt.Sprintf("s%d", d.schemas)
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.DSN)
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
		return ""
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
		return ""
	}
	dsn, err := WithParams(d.DSN, d.Name, map[string]string{"search_path": schema})
	if err != nil {
		tb.Fatalf("test schema DSN: %v", err)
		return ""
	}
	return dsn
}

// WithParams returns dsn (URL or key=value form) connecting to database
// dbname, with the given run-time parameters added.
func WithParams(dsn, dbname string, params map[string]string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path, u.RawPath = "/"+dbname, ""
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// key=value: a later setting overrides an earlier one.
	var sb strings.Builder
	sb.WriteString(dsn)
	set := func(k, v string) {
		fmt.Fprintf(&sb, " %s='%s'", k, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v))
	}
	set("dbname", dbname)
	for k, v := range params {
		set(k, v)
	}
	return sb.String(), nil
}

// redact hides a password in dsn.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return dsn
	}
	if strings.Contains(dsn, "password") {
		return "(DSN with password)"
	}
	return dsn
}
