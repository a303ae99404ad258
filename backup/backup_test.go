package backup

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDumpTreeSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"INSERT INTO `TreeState` VALUES (0,276,0xAB);":  276,
		"INSERT INTO `TreeState` VALUES\n(0,12,0xAB);":  12,
		"-- no tree state: an empty log\n":              0,
		"INSERT INTO `TreeState` VALUES\r\n(0,0,0x00);": 0,
	} {
		got, err := dumpTreeSize([]byte(in))
		if err != nil || got != want {
			t.Errorf("dumpTreeSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"INSERT INTO `TreeState` VALUES (1,2,3)", "INSERT INTO `TreeState` VALUES (0,x,3)", "INSERT INTO `TreeState` VALUES (0,5"} {
		if _, err := dumpTreeSize([]byte(bad)); err == nil {
			t.Errorf("dumpTreeSize(%q) succeeded", bad)
		}
	}
}

func FuzzDumpTreeSize(f *testing.F) {
	f.Add([]byte("INSERT INTO `TreeState` VALUES (0,276,0xAB);"))
	f.Add([]byte("INSERT INTO `TreeState` VALUES\n(0,12,"))
	f.Fuzz(func(t *testing.T, b []byte) { dumpTreeSize(b) })
}

func TestMySQLArgs(t *testing.T) {
	args, env, db, err := mysqlArgs("crossroads:s3cret@tcp(db.example:3307)/log")
	if err != nil || db != "log" || len(env) != 1 || env[0] != "MYSQL_PWD=s3cret" {
		t.Fatalf("mysqlArgs = %v, %v, %q, %v", args, env, db, err)
	}
	for _, a := range args {
		if a == "s3cret" || filepath.Base(a) == "s3cret" {
			t.Error("the password is on the command line")
		}
	}
	want := []string{"--protocol=tcp", "--host=db.example", "--port=3307", "--user=crossroads"}
	if len(args) != len(want) {
		t.Fatalf("args %v, want %v", args, want)
	}
	for i := range want {
		if args[i] != want[i] {
			t.Errorf("args %v, want %v", args, want)
		}
	}
	if _, _, _, err := mysqlArgs("root@tcp(127.0.0.1:3306)/"); err == nil {
		t.Error("a DSN without a database accepted")
	}
}

// TestRestoreRefusesDamage: a backup file altered after the backup is
// refused before anything is written.
func TestRestoreRefusesDamage(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "audit", "log", ".state"), 0o700)
	os.WriteFile(filepath.Join(src, "audit", "log", ".state", "treeState"), []byte(`{"size":0,"root":null}`), 0o600)
	os.WriteFile(filepath.Join(src, "audit", "audit-note.key"), []byte("key"), 0o600)
	for _, db := range []string{"registers.db", "audit/audit.db"} {
		if err := vacuumInto(t.Context(), filepath.Join(src, db), filepath.Join(t.TempDir(), "x.db")); err == nil {
			t.Fatalf("snapshot of a missing database %s succeeded", db)
		}
	}
	// A hand-made backup: files and a log only, with the manifest's hashes.
	out := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(filepath.Join(out, filesDir, "audit"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, filesDir, "audit", "audit-note.key"), []byte("key"), 0o600)
	files, err := hashTree(out)
	if err != nil {
		t.Fatal(err)
	}
	m := []byte(`{"version":1,"store":"sqlite","log":"posix","files":[{"path":"` + files[0].Path + `","size":3,"sha256":"` + files[0].SHA256 + `"}]}`)
	os.WriteFile(filepath.Join(out, manifestFile), m, 0o600)
	os.WriteFile(filepath.Join(out, filesDir, "audit", "audit-note.key"), []byte("KEY"), 0o600)
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(t.Context(), out, Source{DataDir: dst}); err == nil {
		t.Fatal("a damaged backup was restored")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a refused restore wrote the target")
	}
	// The wrong kind of target is refused too.
	if _, err := Restore(t.Context(), out, Source{DataDir: dst, DatabaseURL: "postgres://x"}); err == nil {
		t.Error("a SQLite backup restored into PostgreSQL")
	}
}
