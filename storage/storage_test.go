package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/storage"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// TestOpenRefusesToCreate: without Create, a data directory with no store
// (or, with Audit, no trail) is refused and nothing is written to it.
func TestOpenRefusesToCreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, o := range []storage.Options{{Dir: dir}, {Dir: dir, Audit: true}} {
		if _, err := storage.Open(ctx, o); !errors.Is(err, storage.ErrNotInitialised) {
			t.Fatalf("Open(%+v) = %v, want ErrNotInitialised", o, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused Open created %v", ents)
	}
	if _, err := storage.Open(ctx, storage.Options{}); err == nil {
		t.Fatal("Open without a directory succeeded")
	}
}

func TestOpenCreatesThenReopens(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := storage.Open(ctx, storage.Options{Dir: dir, Audit: true, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Postgres || st.Registers == nil || st.Audit == nil || st.AuditDir() != filepath.Join(dir, "audit") {
		t.Fatalf("stores %+v", st)
	}
	st.Close()
	for _, f := range []string{"registers.db", "audit/audit.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	// Registers exist now; the trail (note key or log) does not yet.
	st, err = storage.Open(ctx, storage.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := storage.Open(ctx, storage.Options{Dir: dir, Audit: true}); !errors.Is(err, storage.ErrNotInitialised) {
		t.Fatalf("no trail yet, but Open(Audit) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit", "audit-note.key"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !storage.HasTrail(dir) {
		t.Fatal("HasTrail does not see the note key")
	}
	st, err = storage.Open(ctx, storage.Options{Dir: dir, Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestOpenPostgres(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := storage.Open(ctx, storage.Options{Dir: dir, DatabaseURL: db.DSN, Audit: true, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Postgres {
		t.Fatal("not on PostgreSQL")
	}
	if _, err := os.Stat(filepath.Join(dir, "registers.db")); err == nil {
		t.Fatal("a PostgreSQL hub got a registers.db")
	}
	if _, err := st.Registers.Certificates(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Open(ctx, storage.Options{Dir: dir, DatabaseURL: "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"}); err == nil {
		t.Fatal("an unreachable database was opened")
	}
}
