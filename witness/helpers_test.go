package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testLog is an in-memory Merkle log built with golang.org/x/mod/sumdb/tlog.
type testLog struct {
	origin   string
	signer   note.Signer
	verifier note.Verifier
	salt     string // distinguishes the leaves of forks
	hashes   []tlog.Hash
	n        int64
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{origin: origin, signer: s, verifier: v}
}

// fork returns a log with the same origin and key and the same first n
// leaves, whose later leaves differ.
func (l *testLog) fork(t testing.TB, n int64) *testLog {
	t.Helper()
	f := &testLog{origin: l.origin, signer: l.signer, verifier: l.verifier, salt: l.salt + "fork"}
	f.hashes = append([]tlog.Hash(nil), l.hashes[:tlog.StoredHashCount(n)]...)
	f.n = n
	return f
}

func (l *testLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// grow appends leaves until the log has n.
func (l *testLog) grow(t testing.TB, n int64) {
	t.Helper()
	for l.n < n {
		h, err := tlog.StoredHashes(l.n, fmt.Appendf(nil, "leaf %d%s", l.n, l.salt), l.reader())
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, h...)
		l.n++
	}
}

func (l *testLog) root(t testing.TB, n int64) tlog.Hash {
	t.Helper()
	l.grow(t, n)
	h, err := tlog.TreeHash(n, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkpoint returns the signed checkpoint at size n.
func (l *testLog) checkpoint(t testing.TB, n int64) []byte {
	t.Helper()
	return signCheckpoint(t, Checkpoint{Origin: l.origin, Size: uint64(n), Root: l.root(t, n)}, l.signer)
}

func signCheckpoint(t testing.TB, c Checkpoint, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: c.String()}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proof returns the consistency proof from size old to size n.
func (l *testLog) proof(t testing.TB, old, n int64) []tlog.Hash {
	t.Helper()
	if old == 0 || old == n {
		return nil
	}
	l.grow(t, n)
	p, err := tlog.ProveTree(n, old, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// request returns an add-checkpoint body from old to n.
func (l *testLog) request(t testing.TB, old, n int64) []byte {
	t.Helper()
	return FormatAddCheckpoint(uint64(old), l.proof(t, old, n), l.checkpoint(t, n))
}

type testWitness struct {
	*Witness
	cosigner *Cosigner
	store    Store
}

func newTestCosigner(t testing.TB, name string) *Cosigner {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCosigner(name, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestWitness(t testing.TB, store Store, cosigner *Cosigner, logs ...*testLog) *testWitness {
	t.Helper()
	if cosigner == nil {
		cosigner = newTestCosigner(t, "witness.example/w1")
	}
	if store == nil {
		store = NewMemoryStore()
	}
	cfg := Config{Name: cosigner.Name(), Signer: cosigner, Store: store, Logger: quietLogger()}
	for _, l := range logs {
		cfg.Logs = append(cfg.Logs, Log{Origin: l.origin, Verifiers: []note.Verifier{l.verifier}})
	}
	w, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testWitness{Witness: w, cosigner: cosigner, store: store}
}

func post(t testing.TB, h http.Handler, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d; body %q", rec.Code, code, rec.Body.String())
	}
}

// wantConflict checks a 409 response carrying size.
func wantConflict(t testing.TB, rec *httptest.ResponseRecorder, size uint64) {
	t.Helper()
	wantStatus(t, rec, http.StatusConflict)
	if ct := rec.Header().Get("Content-Type"); ct != "text/x.tlog.size" {
		t.Errorf("Content-Type %q, want text/x.tlog.size", ct)
	}
	if got, want := rec.Body.String(), fmt.Sprintf("%d\n", size); got != want {
		t.Errorf("409 body %q, want %q", got, want)
	}
}

// cosign submits from old to n, expects success, and returns the checkpoint
// with the cosignature merged in.
func (w *testWitness) cosign(t testing.TB, l *testLog, old, n int64) []byte {
	t.Helper()
	rec := post(t, w, l.request(t, old, n))
	wantStatus(t, rec, http.StatusOK)
	sigs, err := ParseSignatureLines(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	merged, err := MergeSignatures(l.checkpoint(t, n), sigs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCosignature(merged, w.cosigner.Verifier()); err != nil {
		t.Fatalf("cosignature does not verify: %v", err)
	}
	return merged
}
