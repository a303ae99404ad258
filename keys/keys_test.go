package keys_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/keys/keystest"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var pass = []byte("correct horse battery staple")

func fileProvider(t *testing.T, dir string) *keys.FileProvider {
	t.Helper()
	p, err := keys.OpenFileProvider(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestFileProvider(t *testing.T) {
	keystest.Provider(t, fileProvider(t, t.TempDir()))
}

func TestFileProviderPassphrase(t *testing.T) {
	dir := t.TempDir()
	p := fileProvider(t, dir)
	id, err := p.NewKey(context.Background(), "l")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.OpenFileProvider(dir, []byte("wrong")); !errors.Is(err, pki.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := keys.OpenFileProvider(dir, nil); err == nil {
		t.Fatal("opened without a passphrase")
	}
	// A key file moved under another id does not open.
	other, _ := p.NewKey(context.Background(), "l")
	b, _ := os.ReadFile(filepath.Join(dir, id+".key"))
	os.WriteFile(filepath.Join(dir, other+".key"), b, 0o600)
	q := fileProvider(t, dir)
	if _, err := q.Seal(context.Background(), other, []byte("x"), nil); err == nil {
		t.Fatal("a key file copied over another id opened")
	}
}

// TestNothingInClear: no secret of the hierarchy, nor any provider key, is
// on disk in clear — in the provider's directory or in the database.
func TestNothingInClear(t *testing.T) {
	ctx := context.Background()
	pdir, ddir := t.TempDir(), t.TempDir()
	st, err := sqlite.OpenAudit(ctx, ddir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := keys.Open(ctx, fileProvider(t, pdir), st)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := kr.IndexKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("PRIVATE+KEY+a-very-secret-note-key")
	if _, err := kr.Ensure(ctx, keys.KindNote, func() ([]byte, string, error) { return secret, "public", nil }); err != nil {
		t.Fatal(err)
	}
	kek, err := kr.NewKEK(ctx, "2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	dk := []byte("a 32-byte data key for one day!!")
	wrapped, err := kr.WrapDataKey(ctx, kek, "2026-12-01", dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.UnwrapDataKey(ctx, kek, "2026-12-01", wrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := kr.UnwrapDataKey(ctx, kek, "2026-12-02", wrapped); err == nil {
		t.Fatal("a data key unwrapped as another period's")
	}
	st.Close()
	for _, d := range []string{pdir, ddir} {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, idx) || bytes.Contains(b, secret) || bytes.Contains(b, dk) {
				t.Errorf("%s holds a secret in clear", path)
			}
			return nil
		})
	}
	// A second node (same provider directory and database) sees the same
	// hierarchy.
	st2, err := sqlite.OpenAudit(ctx, ddir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	kr2, _ := keys.Open(ctx, fileProvider(t, pdir), st2)
	idx2, err := kr2.IndexKey(ctx)
	if err != nil || !bytes.Equal(idx, idx2) {
		t.Fatalf("second node's index key differs: %v", err)
	}
	if got, err := kr2.UnwrapDataKey(ctx, kek, "2026-12-01", wrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("second node cannot unwrap: %v", err)
	}
}

func TestEnsureRace(t *testing.T) {
	ctx := context.Background()
	pdir, ddir := t.TempDir(), t.TempDir()
	st, err := sqlite.OpenAudit(ctx, ddir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	got := make([][]byte, 4)
	p := fileProvider(t, pdir)
	for i := range got {
		kr, _ := keys.Open(ctx, p, st) // four nodes (one provider: each opening costs a key derivation)
		wg.Go(func() {
			k, err := kr.IndexKey(ctx)
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		})
	}
	wg.Wait()
	for _, k := range got[1:] {
		if !bytes.Equal(k, got[0]) {
			t.Fatal("nodes racing to create the index key got different keys")
		}
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	pdir, ddir := t.TempDir(), t.TempDir()
	st, err := sqlite.OpenAudit(ctx, ddir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := fileProvider(t, pdir)
	kr, _ := keys.Open(ctx, p, st)
	v1, err := kr.Ensure(ctx, keys.KindNote, func() ([]byte, string, error) { return []byte("one"), "pub1", nil })
	if err != nil {
		t.Fatal(err)
	}
	v2, err := kr.Rotate(ctx, keys.KindNote, []byte("two"), "pub2")
	if err != nil || v2.Version != 2 || string(v2.Key) != "two" {
		t.Fatalf("rotate: %+v, %v", v2, err)
	}
	ws, _ := st.WrappedKeys(ctx, keys.KindNote)
	if len(ws) != 1 || ws[0].Version != 2 {
		t.Fatalf("versions after rotation: %+v (v1 %d must be retired)", ws, v1.Version)
	}

	// Master rotation: secrets rewrapped, the old master destroyed.
	pks, _ := p.Keys(ctx)
	var oldMaster string
	for _, k := range pks {
		if k.Label == keys.MasterLabel {
			oldMaster = k.ID
		}
	}
	nm, err := kr.RotateMaster(ctx)
	if err != nil || nm == oldMaster {
		t.Fatalf("rotate master: %s, %v", nm, err)
	}
	if _, err := os.Stat(filepath.Join(pdir, oldMaster+".key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("old master still in the provider")
	}
	kr2, _ := keys.Open(ctx, p, st)
	if s, err := kr2.Secret(ctx, keys.KindNote); err != nil || string(s.Key) != "two" {
		t.Fatalf("after master rotation: %+v, %v", s, err)
	}

	// Root rotation under a new passphrase.
	newPass := []byte("a new passphrase")
	if err := p.RotateRoot(newPass); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.OpenFileProvider(pdir, pass); !errors.Is(err, pki.ErrWrongPassphrase) {
		t.Fatalf("old passphrase after root rotation: %v", err)
	}
	q, err := keys.OpenFileProvider(pdir, newPass)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	kr3, _ := keys.Open(ctx, q, st)
	if s, err := kr3.Secret(ctx, keys.KindNote); err != nil || string(s.Key) != "two" {
		t.Fatalf("after root rotation: %+v, %v", s, err)
	}
	list, err := kr3.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, i := range list {
		kinds[i.Kind]++
	}
	if kinds["master"] != 1 || kinds[keys.KindNote] != 1 {
		t.Fatalf("list: %+v", list)
	}
}

func TestEraseSurvivesBackupFile(t *testing.T) {
	pdir := t.TempDir()
	keystest.EraseSurvivesBackup(t, keystest.Drill{
		Provider: fileProvider(t, pdir),
		Reopen:   func() keys.Provider { return fileProvider(t, pdir) },
		Disk:     []string{pdir},
	})
}

func TestSQLiteStore(t *testing.T) {
	st, err := sqlite.OpenAudit(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keystest.Store(t, st)
}

// TestOpenEmptyDirRace: processes (here providers that share nothing but
// the directory) opening an empty shared directory together end with one
// root key, and each opens every key the others create.
func TestOpenEmptyDirRace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ps := make([]*keys.FileProvider, 3)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() {
			p, err := keys.OpenFileProvider(dir, pass)
			if err != nil {
				t.Error(err)
				return
			}
			ps[i] = p
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "root-") {
		t.Fatalf("directory after a concurrent first open: %v, want one root key and nothing else", ents)
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		id, err := p.NewKey(ctx, keys.KEKPrefix+"2026-12-01")
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for _, p := range ps {
		for _, id := range ids {
			if _, err := p.Seal(ctx, id, []byte("x"), nil); err != nil {
				t.Errorf("a provider cannot use key %s another created: %v", id, err)
			}
		}
	}
	// Reopened, the directory is the same provider (no rotation ran).
	p := fileProvider(t, dir)
	for _, id := range ids {
		if _, err := p.Seal(ctx, id, []byte("x"), nil); err != nil {
			t.Errorf("reopened: key %s: %v", id, err)
		}
	}
}
