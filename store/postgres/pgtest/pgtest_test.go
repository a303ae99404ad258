package pgtest_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// fakeTB records what the helper does; Skipf and Fatalf stop it as the
// real ones do (by unwinding), here with a panic that run recovers.
type fakeTB struct {
	skipped, failed string
	cleanups        []func()
}

type stop struct{}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Logf(string, ...any)            {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...); panic(stop{}) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...); panic(stop{}) }

func (f *fakeTB) run(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
		}
	}()
	fn()
}

func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// unreachableDSN names a port on which nothing listens.
func unreachableDSN(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", addr.Port)
}

func TestUnreachableSkips(t *testing.T) {
	f := &fakeTB{}
	f.run(func() { pgtest.NewAt(f, unreachableDSN(t), false) })
	if f.skipped == "" || f.failed != "" {
		t.Fatalf("not required: skipped %q, failed %q; want a skip", f.skipped, f.failed)
	}
	if !strings.Contains(f.skipped, "unreachable") || !strings.Contains(f.skipped, pgtest.EnvRequire) {
		t.Errorf("skip message %q should say the server is unreachable and name %s", f.skipped, pgtest.EnvRequire)
	}
}

func TestUnreachableFailsWhenRequired(t *testing.T) {
	f := &fakeTB{}
	f.run(func() { pgtest.NewAt(f, unreachableDSN(t), true) })
	if f.failed == "" || f.skipped != "" {
		t.Fatalf("required: skipped %q, failed %q; want a failure", f.skipped, f.failed)
	}
	if !strings.Contains(f.failed, pgtest.EnvRequire) {
		t.Errorf("failure %q should name %s", f.failed, pgtest.EnvRequire)
	}
}

func TestRequired(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true, "yes": false} {
		t.Setenv(pgtest.EnvRequire, v)
		if got := pgtest.Required(); got != want {
			t.Errorf("%s=%q: Required() = %v, want %v", pgtest.EnvRequire, v, got, want)
		}
	}
}

// TestFreshDatabase: a reachable server gives a new, empty database that
// is dropped at cleanup (skipped or failed per policy without a server).
func TestFreshDatabase(t *testing.T) {
	pgtest.New(t) // applies the policy to this test
	ctx := context.Background()
	f := &fakeTB{}
	var db *pgtest.DB
	f.run(func() { db = pgtest.New(f) })
	if db == nil {
		t.Fatalf("New: skipped %q, failed %q", f.skipped, f.failed)
	}
	if !strings.HasPrefix(db.Name, "crossroads_test_") {
		t.Errorf("database name %q", db.Name)
	}
	other := &fakeTB{}
	var db2 *pgtest.DB
	other.run(func() { db2 = pgtest.New(other) })
	defer other.cleanup()
	if db2 == nil || db2.Name == db.Name {
		t.Errorf("a second New did not give another database")
	}
	conn, err := pgx.Connect(ctx, db.Schema(f))
	if err != nil {
		t.Fatal(err)
	}
	var name, schema string
	var tables int
	if err := conn.QueryRow(ctx, `SELECT current_database(), current_schema(),
		(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())`).Scan(&name, &schema, &tables); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if name != db.Name || schema != "s1" || tables != 0 {
		t.Errorf("connected to %s, schema %s with %d tables; want %s, s1, 0", name, schema, tables, db.Name)
	}
	f.cleanup()
	admin, err := pgx.Connect(ctx, pgtest.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db.Name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s not dropped at cleanup", db.Name)
	}
}

func TestWithParams(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/db1?search_path=s1&sslmode=disable"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname='db1' search_path='s1'"},
	} {
		got, err := pgtest.WithParams(c.in, "db1", map[string]string{"search_path": "s1"})
		if err != nil || got != c.want {
			t.Errorf("WithParams(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", got, err)
			continue
		}
		if cfg.Database != "db1" || cfg.RuntimeParams["search_path"] != "s1" {
			t.Errorf("%q parses to database %q, search_path %q", got, cfg.Database, cfg.RuntimeParams["search_path"])
		}
	}
}
