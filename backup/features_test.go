package backup

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// TestBackupFeatureDatabases: the features' embedded databases (the push
// outbox, batches, …) are snapshotted like the registers — not copied as
// live files — and restored; a feature that never ran has none and the
// backup does not ask for it.
func TestBackupFeatureDatabases(t *testing.T) {
	ctx := context.Background()
	src := embeddedHub(t)
	p, err := sqlite.OpenPush(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	db, err := sql.Open("sqlite", filepath.Join(src, "push.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE marker(x INTEGER); INSERT INTO marker VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if !skipped("push.db-wal") || !skipped("batch.db") {
		t.Error("feature databases are copied as live files")
	}

	out := filepath.Join(t.TempDir(), "b")
	if _, err := Backup(ctx, Source{DataDir: src}, out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "push.db")); err != nil {
		t.Fatalf("push.db not snapshotted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "batch.db")); !os.IsNotExist(err) {
		t.Errorf("a batch.db that never existed is in the backup (%v)", err)
	}
	dst := t.TempDir()
	if err := os.CopyFS(filepath.Join(dst, keysDir), os.DirFS(filepath.Join(src, keysDir))); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, out, Source{DataDir: dst}); err != nil {
		t.Fatal(err)
	}
	db, err = sql.Open("sqlite", filepath.Join(dst, "push.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var x int
	if err := db.QueryRow(`SELECT x FROM marker`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("restored push.db: %d, %v", x, err)
	}
}
