package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// embeddedHub makes a stopped embedded hub's data directory in the default
// layout: registers, audit store, an empty POSIX log, a verifier key and
// the FileProvider in DIR/keys.
func embeddedHub(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	reg, err := sqlite.OpenRegisters(ctx, filepath.Join(dir, registersFile))
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()
	os.MkdirAll(filepath.Join(dir, "audit"), 0o700)
	st, err := sqlite.OpenAudit(ctx, filepath.Join(dir, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	os.MkdirAll(filepath.Join(dir, posixLog, ".state"), 0o700)
	os.WriteFile(filepath.Join(dir, posixLog, ".state", "treeState"), []byte(`{"size":0,"root":null}`), 0o600)
	os.WriteFile(filepath.Join(dir, "audit", "audit-note.pub"), []byte("crossroads.example/audit+0+x\n"), 0o644)
	p, err := keys.OpenFileProvider(filepath.Join(dir, keysDir), []byte("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewKey(ctx, keys.KEKPrefix+"2026-12-01"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	return dir
}

// TestBackupLeavesTheProvider: a backup of the default layout copies
// nothing of DIR/keys and records the provider; a restore without the live
// provider is refused before writing, and one into a data directory whose
// only entry is the live provider (kept in place) succeeds.
func TestBackupLeavesTheProvider(t *testing.T) {
	ctx := context.Background()
	src := embeddedHub(t)
	out := filepath.Join(t.TempDir(), "b")
	m, err := Backup(ctx, Source{DataDir: src}, out)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs(filepath.Join(src, keysDir)); m.Keys == nil || m.Keys.Provider != "file" || m.Keys.Dir != want {
		t.Fatalf("manifest keys %+v, want the file provider %s", m.Keys, want)
	}
	var pub bool
	for _, f := range m.Files {
		if filepath.Base(filepath.Dir(f.Path)) == keysDir {
			t.Errorf("the backup holds %s", f.Path)
		}
		pub = pub || f.Path == filesDir+"/audit/audit-note.pub"
	}
	if !pub {
		t.Errorf("the verifier key is not in the backup: %v", m.Files)
	}
	if _, err := os.Stat(filepath.Join(out, filesDir, keysDir)); !os.IsNotExist(err) {
		t.Errorf("the backup has a %s directory", keysDir)
	}

	// Without the provider: refused, nothing written.
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := Restore(ctx, out, Source{DataDir: dst}); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("restore without the provider: %v, want ErrNoProvider", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a refused restore wrote the target")
	}
	// An empty --key-dir is no provider either.
	if _, err := Restore(ctx, out, Source{DataDir: dst, KeyDir: t.TempDir()}); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("restore with an empty key directory: %v, want ErrNoProvider", err)
	}
	// With the live provider elsewhere (--key-dir).
	if _, err := Restore(ctx, out, Source{DataDir: dst, KeyDir: filepath.Join(src, keysDir)}); err != nil {
		t.Fatalf("restore with --key-dir: %v", err)
	}
	// With the live provider in place as the data directory's only entry.
	dst2 := t.TempDir()
	if err := os.CopyFS(filepath.Join(dst2, keysDir), os.DirFS(filepath.Join(src, keysDir))); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, out, Source{DataDir: dst2}); err != nil {
		t.Fatalf("restore next to the provider: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst2, registersFile)); err != nil {
		t.Errorf("not restored: %v", err)
	}
	// Another entry beside the provider: not empty.
	if _, err := Restore(ctx, out, Source{DataDir: dst2}); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("restore into a populated directory: %v, want ErrNotEmpty", err)
	}
	// An HSM is recorded, and its keys are the HSM's business.
	out2 := filepath.Join(t.TempDir(), "b")
	if m, err := Backup(ctx, Source{DataDir: src, KeyProvider: "pkcs11"}, out2); err != nil || m.Keys.Provider != "pkcs11" {
		t.Fatalf("backup with an HSM: %+v, %v", m, err)
	}
	if _, err := Backup(ctx, Source{DataDir: src, KeyProvider: "vault"}, filepath.Join(t.TempDir(), "b")); err == nil {
		t.Error("an unknown provider accepted")
	}
}
