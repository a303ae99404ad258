// Package keystest holds the conformance tests every keys.Provider must
// pass, and the erasure-survives-backups drill, shared by the file and the
// PKCS#11 providers' tests.
package keystest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// Provider checks the contract of keys.Provider on p, which must be empty
// of keys labelled "keystest-*".
func Provider(t *testing.T, p keys.Provider) {
	t.Helper()
	ctx := context.Background()
	a, err := p.NewKey(ctx, "keystest-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.NewKey(ctx, "keystest-b")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two keys with one id")
	}
	secret := []byte("a data key of thirty-two bytes!!")
	sa, err := p.Seal(ctx, a, secret, []byte("aad-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sa, secret) {
		t.Fatal("sealed data holds the plaintext")
	}
	if sa2, _ := p.Seal(ctx, a, secret, []byte("aad-1")); bytes.Equal(sa, sa2) {
		t.Fatal("sealing twice gives the same bytes (nonce reused)")
	}
	got, err := p.Open(ctx, a, sa, []byte("aad-1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := p.Open(ctx, a, sa, []byte("aad-2")); err == nil {
		t.Fatal("opened with another aad")
	}
	if _, err := p.Open(ctx, b, sa, []byte("aad-1")); err == nil {
		t.Fatal("opened under another key")
	}
	tampered := slices.Clone(sa)
	tampered[len(tampered)-1] ^= 1
	if _, err := p.Open(ctx, a, tampered, []byte("aad-1")); err == nil {
		t.Fatal("opened tampered data")
	}
	if _, err := p.Open(ctx, a, sa[:5], []byte("aad-1")); err == nil {
		t.Fatal("opened truncated data")
	}
	labels := map[string]string{}
	pks, err := p.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range pks {
		labels[k.ID] = k.Label
	}
	if labels[a] != "keystest-a" || labels[b] != "keystest-b" {
		t.Fatalf("keys listed: %v", labels)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, a); err != nil {
		t.Fatalf("destroying a destroyed key: %v", err)
	}
	if err := p.Destroy(ctx, "no-such-key"); err != nil {
		t.Fatalf("destroying an unknown key: %v", err)
	}
	if _, err := p.Open(ctx, a, sa, []byte("aad-1")); err == nil {
		t.Fatal("opened under a destroyed key")
	}
	if _, err := p.Seal(ctx, a, secret, nil); err == nil {
		t.Fatal("sealed under a destroyed key")
	}
	pks, _ = p.Keys(ctx)
	for _, k := range pks {
		if k.ID == a {
			t.Fatal("destroyed key still listed")
		}
	}
	if err := p.Destroy(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// Drill is the erasure-survives-backups drill's setting.
type Drill struct {
	// Provider is the live provider (opened afresh by Reopen after the
	// erasure, when set, so that nothing cached survives).
	Provider keys.Provider
	Reopen   func() keys.Provider
	// Disk lists the directories of the provider's own storage that are
	// not part of the backup (the FileProvider's directory), searched for
	// keys after the erasure all the same.
	Disk []string
}

// EraseSurvivesBackup commits records of two old days and a recent one,
// backs up the data directory (every file: the database with its wrapped
// data keys and secrets, the log), runs the erasure, and then tries every
// key it can find — every 32-byte file and every 32-byte-aligned window of
// every file on disk and in the backup, every data key in the backup
// unwrapped by every key of the live provider, every secret of the backup
// — against the erased records' ciphertexts: all must fail, while the
// recent records still open and the Merkle log still verifies. The same
// attack run on the backup before the erasure must succeed, or the drill
// proves nothing.
func EraseSurvivesBackup(t *testing.T, d Drill) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.OpenAudit(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	kr, err := keys.Open(ctx, d.Provider, st)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := audit.Open(ctx, audit.Config{Dir: dir, Store: st, KeyProvider: kr, MaxMergeDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := []time.Time{now.Add(-400 * 24 * time.Hour), now.Add(-401 * 24 * time.Hour)}
	var oldIDs []string
	for i := range 6 {
		rec := &crossroads.AuditRecord{
			ExchangeID: fmt.Sprintf("drill-%d", i), Requester: "inst-a", Provider: "src-b", Service: "svc",
			Subject: fmt.Sprintf("8507300332%d", i), User: "user-secret", Purpose: "p",
			Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed, Time: now.Add(-time.Hour),
		}
		if i < 4 {
			rec.Time = old[i%2]
			oldIDs = append(oldIDs, rec.ExchangeID)
		}
		if _, err := tr.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(ctx); err != nil { // integrates and publishes
		t.Fatal(err)
	}
	st.Close()

	backup := t.TempDir()
	copyTree(t, dir, backup)
	if n := attack(t, ctx, backup, d.Provider, d.Disk, oldIDs); n != len(oldIDs) {
		t.Fatalf("before the erasure, the attack opens %d of %d records: the drill is broken", n, len(oldIDs))
	}

	if st, err = sqlite.OpenAudit(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if tr, err = audit.Open(ctx, audit.Config{Dir: dir, Store: st, KeyProvider: kr, MaxMergeDelay: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rep, err := tr.Erase(ctx, now.Add(-audit.MinRetention), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 4 || len(rep.Keys) != 2 || rep.KEKs < 2 {
		t.Fatalf("erase report %+v, want 4 records, 2 data keys, 2 KEKs", rep)
	}
	chk, err := tr.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(chk.Problems) > 0 || chk.Integrated != 6 {
		t.Fatalf("log after erasure: %+v", chk)
	}
	for i := 4; i < 6; i++ {
		if _, err := tr.Opening(ctx, fmt.Sprintf("drill-%d", i)); err != nil {
			t.Fatalf("recent record after erasure: %v", err)
		}
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	live := d.Provider
	if d.Reopen != nil {
		live.Close()
		live = d.Reopen()
	}
	if n := attack(t, ctx, backup, live, append([]string{dir}, d.Disk...), oldIDs); n != 0 {
		t.Fatalf("after the erasure, the backup still opens %d erased records", n)
	}
}

// attack returns how many of the records ids of the backup it can decrypt
// with any key it finds.
func attack(t *testing.T, ctx context.Context, backup string, p keys.Provider, disk []string, ids []string) int {
	t.Helper()
	bst, err := sqlite.OpenAudit(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	defer bst.Close()
	var rows []audit.Row
	for _, id := range ids {
		r, err := bst.Get(ctx, id)
		if err != nil || r.Erased() {
			t.Fatalf("backup row %s: %v (erased %v)", id, err, r.Erased())
		}
		rows = append(rows, r)
	}
	// Candidate raw keys.
	var cands [][]byte
	add := func(b []byte) {
		if len(b) == 32 {
			cands = append(cands, b)
		}
	}
	for _, root := range append([]string{backup}, disk...) {
		filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil || len(b) > 8<<20 {
				return nil
			}
			for i := 0; i+32 <= len(b); i += 32 {
				add(b[i : i+32])
			}
			if len(b) >= 32 && len(b)%32 != 0 {
				add(b[len(b)-32:])
			}
			return nil
		})
	}
	dks, err := bst.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pks, err := p.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, dk := range dks {
		for _, pk := range pks {
			for _, per := range []string{dk.Period, ""} {
				if raw, err := p.Open(ctx, pk.ID, dk.Wrapped, []byte("crossroads-audit-kek:"+per)); err == nil {
					add(raw)
				}
			}
		}
	}
	ws, err := bst.WrappedKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for _, pk := range pks {
			if raw, err := p.Open(ctx, pk.ID, w.Wrapped, fmt.Appendf(nil, "crossroads-secret:%s:%d", w.Kind, w.Version)); err == nil {
				add(raw)
			}
		}
	}
	opened := 0
	for _, r := range rows {
		for _, k := range cands {
			if decrypts(k, r) {
				opened++
				break
			}
		}
	}
	return opened
}

func decrypts(key []byte, r audit.Row) bool {
	block, err := aes.NewCipher(key)
	if err != nil {
		return false
	}
	a, err := cipher.NewGCM(block)
	if err != nil || len(r.Ciphertext) < a.NonceSize()+a.Overhead() {
		return false
	}
	_, err = a.Open(nil, r.Ciphertext[:a.NonceSize()], r.Ciphertext[a.NonceSize():], []byte("crossroads-audit-record:"+r.ExchangeID))
	return err == nil
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		src, err := os.Open(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Store checks the contract of keys.Store on an empty st.
func Store(t *testing.T, st keys.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	w := keys.Wrapped{Kind: "k", Version: 1, ProviderKey: "p1", Wrapped: []byte{1, 2, 3}, Public: "pub", Created: now}
	if ok, err := st.PutWrappedKey(ctx, w); err != nil || !ok {
		t.Fatalf("put: %v, %v", ok, err)
	}
	if ok, err := st.PutWrappedKey(ctx, keys.Wrapped{Kind: "k", Version: 1, ProviderKey: "p2", Wrapped: []byte{9}, Created: now}); err != nil || ok {
		t.Fatalf("put of an existing version: inserted %v, %v", ok, err)
	}
	st.PutWrappedKey(ctx, keys.Wrapped{Kind: "k", Version: 2, ProviderKey: "p1", Wrapped: []byte{4}, Created: now})
	st.PutWrappedKey(ctx, keys.Wrapped{Kind: "j", Version: 1, ProviderKey: "p1", Wrapped: []byte{5}, Created: now})
	ws, err := st.WrappedKeys(ctx, "k")
	if err != nil || len(ws) != 2 || ws[0].Version != 1 || ws[1].Version != 2 {
		t.Fatalf("list k: %+v, %v", ws, err)
	}
	if g := ws[0]; g.ProviderKey != "p1" || !bytes.Equal(g.Wrapped, []byte{1, 2, 3}) || g.Public != "pub" || !g.Created.Equal(now) {
		t.Fatalf("stored %+v, want %+v", g, w)
	}
	if all, _ := st.WrappedKeys(ctx, ""); len(all) != 3 {
		t.Fatalf("list all: %+v", all)
	}
	if err := st.ReplaceWrappedKey(ctx, keys.Wrapped{Kind: "k", Version: 1, ProviderKey: "p3", Wrapped: []byte{7}}); err != nil {
		t.Fatal(err)
	}
	if ws, _ := st.WrappedKeys(ctx, "k"); ws[0].ProviderKey != "p3" || !bytes.Equal(ws[0].Wrapped, []byte{7}) || ws[0].Public != "pub" {
		t.Fatalf("after replace: %+v", ws[0])
	}
	if err := st.ReplaceWrappedKey(ctx, keys.Wrapped{Kind: "k", Version: 9, ProviderKey: "p3", Wrapped: []byte{7}}); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("replace of a missing version: %v", err)
	}
	if err := st.DeleteWrappedKey(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteWrappedKey(ctx, "k", 1); err != nil {
		t.Fatalf("delete of a deleted version: %v", err)
	}
	if ws, _ := st.WrappedKeys(ctx, "k"); len(ws) != 1 || ws[0].Version != 2 {
		t.Fatalf("after delete: %+v", ws)
	}
}
