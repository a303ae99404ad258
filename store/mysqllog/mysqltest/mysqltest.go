// Package mysqltest gives tests a fresh MariaDB/MySQL database for a
// shared Merkle log.
//
// The server is $CROSSROADS_TEST_MYSQL (a go-sql-driver DSN without a
// database name), by default root@tcp(127.0.0.1:3306)/. Tests skip when it
// is unreachable, unless $CROSSROADS_REQUIRE_MYSQL or
// $CROSSROADS_REQUIRE_POSTGRES (CI: the shared log is part of the
// PostgreSQL deployment) is set, in which case they fail.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultDSN is the server tried when $CROSSROADS_TEST_MYSQL is empty.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/"

// TB is the part of testing.TB used here.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(string, ...any)
	Skipf(string, ...any)
	Logf(string, ...any)
}

// Required reports whether the environment asks for a server.
func Required() bool {
	for _, e := range []string{"CROSSROADS_REQUIRE_MYSQL", "CROSSROADS_REQUIRE_POSTGRES"} {
		if v, err := strconv.ParseBool(os.Getenv(e)); err == nil && v {
			return true
		}
	}
	return false
}

// New returns the DSN of a fresh database, dropped when tb ends.
func New(tb TB) string {
	tb.Helper()
	admin := os.Getenv("CROSSROADS_TEST_MYSQL")
	if admin == "" {
		admin = DefaultDSN
	}
	cfg, err := mysql.ParseDSN(admin)
	if err != nil {
		tb.Fatalf("CROSSROADS_TEST_MYSQL: %v", err)
		return ""
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if Required() {
			tb.Fatalf("MariaDB/MySQL test server unreachable: %v", err)
		} else {
			tb.Skipf("MariaDB/MySQL test server unreachable (%v); set CROSSROADS_TEST_MYSQL, or CROSSROADS_REQUIRE_MYSQL=1 to fail instead", err)
		}
		return ""
	}
	var b [8]byte
	rand.Read(b[:])
	name := "crossroads_test_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		tb.Fatalf("create test database: %v", err)
		return ""
	}
	tb.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
		db.Close()
	})
	c := cfg.Clone()
	c.DBName = name
	return c.FormatDSN()
}
