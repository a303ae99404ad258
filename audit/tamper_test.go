package audit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCheckClean(t *testing.T) {
	e := open(t, t.TempDir())
	commitParallel(t, e.trail, 0, 300)
	waitSize(t, e.trail, 300)
	rep, err := e.trail.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Records != 300 || rep.Integrated != 300 || rep.LogSize != 300 {
		t.Fatalf("report %+v", rep)
	}
}

func TestTamperTile(t *testing.T) {
	e := open(t, t.TempDir())
	srv := httptest.NewServer(e.trail.LogHandler())
	defer srv.Close()
	commitParallel(t, e.trail, 0, 300)
	raw := waitSize(t, e.trail, 300)
	ctx := context.Background()
	src := &verify.HTTP{Base: srv.URL + "/v1/log/"}
	cp, err := verify.OpenCheckpoint(raw, mustVerifier(t, e.trail.VerifierKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Full(ctx, src, cp.Tree); err != nil {
		t.Fatalf("untampered log: %v", err)
	}
	// Flip a byte in the full level-0 tile.
	f := filepath.Join(e.dir, "log", "tile", "0", "000")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Full(ctx, src, cp.Tree); err == nil {
		t.Fatal("Full verified a tampered tile")
	}
	// Inclusion proofs through that tile fail too (tiles are authenticated
	// against the root).
	if err := verify.Inclusion(ctx, src, cp.Tree, 3, tlog.Hash{}); err == nil {
		t.Fatal("inclusion verified over a tampered tile")
	}
	rep, err := e.trail.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 {
		t.Fatal("Check found nothing wrong with a tampered tile")
	}
}

func TestTamperStore(t *testing.T) {
	for _, col := range []string{"nonce", "ciphertext"} {
		t.Run(col, func(t *testing.T) {
			e := open(t, t.TempDir())
			commitN(t, e.trail, 0, 20)
			waitSize(t, e.trail, 20)
			db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "audit.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var v []byte
			if err := db.QueryRow(`SELECT ` + col + ` FROM audit_records WHERE exchange_id = 'ex-000005'`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			v[len(v)-1] ^= 1
			if _, err := db.Exec(`UPDATE audit_records SET `+col+` = ? WHERE exchange_id = 'ex-000005'`, v); err != nil {
				t.Fatal(err)
			}
			rep, err := e.trail.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "ex-000005") {
				t.Fatalf("problems = %q", rep.Problems)
			}
		})
	}
}

func TestForkedCheckpoint(t *testing.T) {
	e := open(t, t.TempDir())
	srv := httptest.NewServer(e.trail.LogHandler())
	defer srv.Close()
	commitN(t, e.trail, 0, 10)
	raw := waitSize(t, e.trail, 10)
	v := mustVerifier(t, e.trail.VerifierKey())
	real, err := verify.OpenCheckpoint(raw, v)
	if err != nil {
		t.Fatal(err)
	}
	skey, err := os.ReadFile(filepath.Join(e.dir, audit.NoteKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	var other tlog.Hash
	rand.Read(other[:])
	forged := verify.Checkpoint{Origin: real.Origin, Tree: tlog.Tree{N: real.N, Hash: other}}
	fraw, err := note.Sign(&note.Note{Text: forged.String()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, different root, validly signed: a fork.
	fc, err := verify.OpenCheckpoint(fraw, v)
	if err != nil {
		t.Fatal(err)
	}
	src := &verify.HTTP{Base: srv.URL + "/v1/log/"}
	if err := verify.Consistency(context.Background(), src, real.Tree, fc.Tree); err == nil {
		t.Fatal("fork not detected")
	}
	// A larger forged tree is not consistent with the real one either.
	big := verify.Checkpoint{Origin: real.Origin, Tree: tlog.Tree{N: real.N + 5, Hash: other}}
	if err := verify.Consistency(context.Background(), src, real.Tree, big.Tree); err == nil {
		t.Fatal("inconsistent larger tree not detected")
	}
	// Signed by another key of the same name: refused.
	oskey, _, err := note.GenerateKey(rand.Reader, real.Origin)
	if err != nil {
		t.Fatal(err)
	}
	os2, _ := note.NewSigner(oskey)
	oraw, err := note.Sign(&note.Note{Text: real.String()}, os2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.OpenCheckpoint(oraw, v); err == nil {
		t.Fatal("checkpoint signed by another key accepted")
	}
}
