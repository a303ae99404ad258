package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testWitness is a real witness.Witness served over TLS, which can be made
// unavailable.
type testWitness struct {
	w     *witness.Witness
	store *witness.MemoryStore
	cs    *witness.Cosigner
	srv   *httptest.Server
	down  atomic.Bool
}

func newWitness(t *testing.T, name, logVKey string) *testWitness {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := witness.NewCosigner(name, key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{store: witness.NewMemoryStore(), cs: cs}
	tw.w, err = witness.New(context.Background(), witness.Config{
		Name: name, Signer: cs, Store: tw.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Logs: []witness.Log{{Origin: v.Name(), Verifiers: []note.Verifier{v}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if tw.down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		tw.w.ServeHTTP(rw, r)
	}))
	t.Cleanup(tw.srv.Close)
	return tw
}

func (tw *testWitness) config() audit.WitnessConfig {
	return audit.WitnessConfig{URL: tw.srv.URL, VerifierKey: tw.cs.VerifierKey()}
}

func (tw *testWitness) size(origin string) uint64 {
	s, _, _ := tw.store.Latest(context.Background(), origin)
	return s.Size
}

// logRecorder is a slog handler keeping the messages it receives.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// waitFor polls cond (a wait, not a timing assertion: the bound only stops
// a hung test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// witnessedEnv prepares dir with a note key and n witnesses of that log.
func witnessedEnv(t *testing.T, dir string, n int) (string, []*testWitness) {
	t.Helper()
	if _, err := audit.LoadOrCreateNoteKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	vkey, err := audit.ReadVerifierKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*testWitness
	for i := range n {
		ws = append(ws, newWitness(t, fmt.Sprintf("witness%d.example/w", i), vkey))
	}
	return vkey, ws
}

func withWitnesses(ws []*testWitness, quorum int, logs *logRecorder, tamper func([]tlog.Hash)) func(*audit.Config) {
	return func(c *audit.Config) {
		for _, w := range ws {
			c.Witnesses = append(c.Witnesses, w.config())
		}
		c.Quorum = quorum
		c.WitnessHTTP = ws[0].srv.Client() // every httptest server shares one test certificate
		if logs != nil {
			c.Logger = slog.New(logs)
		}
		if tamper != nil {
			audit.SetTamperProof(c, tamper)
		}
	}
}

// waitCosigned waits until the trail publishes a checkpoint of size n and
// returns it.
func waitCosigned(t *testing.T, tr *audit.Trail, v note.Verifier, n int64) []byte {
	t.Helper()
	var cp []byte
	waitFor(t, fmt.Sprintf("a cosigned checkpoint of size %d", n), func() bool {
		b, err := tr.Checkpoint(context.Background())
		if err != nil {
			return false
		}
		c, err := verify.OpenCheckpoint(b, v)
		if err != nil {
			t.Fatal(err)
		}
		cp = b
		return c.N >= n
	})
	return cp
}

func checkpointSize(t *testing.T, cp []byte, v note.Verifier) int64 {
	t.Helper()
	c, err := verify.OpenCheckpoint(cp, v)
	if err != nil {
		t.Fatal(err)
	}
	return c.N
}

func TestWitnessedCheckpointPublished(t *testing.T) {
	dir := t.TempDir()
	vkey, ws := witnessedEnv(t, dir, 3)
	v := mustVerifier(t, vkey)
	e := open(t, dir, withWitnesses(ws, 2, nil, nil))
	commitN(t, e.trail, 0, 10)
	cp := waitCosigned(t, e.trail, v, 10)
	if !e.trail.Witnesses().Satisfied(cp) {
		t.Fatal("published checkpoint does not satisfy the policy")
	}
	for _, w := range ws {
		if _, err := witness.VerifyCosignature(cp, w.cs.Verifier()); err != nil {
			t.Errorf("%s: %v", w.cs.Name(), err)
		}
	}

	// /v1/log/checkpoint serves the cosigned checkpoint.
	srv := httptest.NewServer(e.trail.LogHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || checkpointSize(t, served, v) < 10 || !e.trail.Witnesses().Satisfied(served) {
		t.Fatalf("served checkpoint: %d %q", resp.StatusCode, served)
	}

	// Proofs carry the cosigned checkpoint.
	pr, err := e.trail.Proof(context.Background(), "ex-000003")
	if err != nil {
		t.Fatal(err)
	}
	if !e.trail.Witnesses().Satisfied(pr.Checkpoint) {
		t.Fatal("proof's checkpoint is not cosigned")
	}
	row, err := e.store.Get(context.Background(), "ex-000003")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.CheckProof(pr, v, tlog.Hash(audit.LeafHash(row.Leaf))); err != nil {
		t.Fatal(err)
	}

	// After a restart the trail no longer knows the witnesses' sizes: they
	// answer 409 with theirs and it retries with a proof from there.
	e.close()
	e = open(t, dir, withWitnesses(ws, 2, nil, nil))
	if cp, err := e.trail.Checkpoint(context.Background()); err != nil || checkpointSize(t, cp, v) < 10 {
		t.Fatalf("published checkpoint not kept across restart: %v", err)
	}
	commitN(t, e.trail, 10, 5)
	cp = waitCosigned(t, e.trail, v, 15)
	if n, err := e.trail.Witnesses().Count(cp); err != nil || n != 3 {
		t.Fatalf("cosignatures: %d, %v", n, err)
	}
	for _, w := range ws {
		if s := w.size(v.Name()); s != 15 {
			t.Errorf("%s at size %d, want 15", w.cs.Name(), s)
		}
	}
}

func TestWitnessQuorumNotMet(t *testing.T) {
	dir := t.TempDir()
	vkey, ws := witnessedEnv(t, dir, 2)
	v := mustVerifier(t, vkey)
	logs := &logRecorder{}
	e := open(t, dir, withWitnesses(ws, 0, logs, nil)) // quorum 0: all
	commitN(t, e.trail, 0, 5)
	waitCosigned(t, e.trail, v, 5)

	ws[1].down.Store(true)
	commitN(t, e.trail, 5, 5)
	waitFor(t, "the log at size 10", func() bool {
		cp, err := audit.LogCheckpoint(e.trail)
		return err == nil && checkpointSize(t, cp, v) == 10
	})
	waitFor(t, "witness 0 at size 10", func() bool { return ws[0].size(v.Name()) == 10 })
	waitFor(t, "a quorum warning", func() bool { return logs.has("quorum not met") && logs.has("size=10") })
	cp, err := e.trail.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := checkpointSize(t, cp, v); n != 5 {
		t.Fatalf("published size %d with the quorum not met, want 5", n)
	}
	if _, err := e.trail.Proof(context.Background(), "ex-000007"); err == nil {
		t.Fatal("proof against an unpublished checkpoint")
	}

	ws[1].down.Store(false)
	cp = waitCosigned(t, e.trail, v, 10)
	if !e.trail.Witnesses().Satisfied(cp) {
		t.Fatal("not cosigned")
	}
}

func TestWitnessRefusesInconsistentProof(t *testing.T) {
	dir := t.TempDir()
	vkey, ws := witnessedEnv(t, dir, 1)
	v := mustVerifier(t, vkey)
	logs := &logRecorder{}
	var tamper atomic.Bool
	e := open(t, dir, withWitnesses(ws, 1, logs, func(p []tlog.Hash) {
		if tamper.Load() && len(p) > 0 {
			p[0][0] ^= 1
		}
	}))
	commitN(t, e.trail, 0, 5)
	waitCosigned(t, e.trail, v, 5)

	tamper.Store(true)
	commitN(t, e.trail, 5, 5)
	waitFor(t, "the refusal to be logged", func() bool { return logs.has("refused the checkpoint as inconsistent") })
	if !logs.has("ERROR") {
		t.Error("refusal not logged as an error")
	}
	if s := ws[0].size(v.Name()); s != 5 {
		t.Fatalf("witness moved to %d", s)
	}
	cp, err := e.trail.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := checkpointSize(t, cp, v); n != 5 {
		t.Fatalf("published size %d after the refusal, want 5", n)
	}
	// No personal data in what was logged.
	logs.mu.Lock()
	for _, m := range logs.msgs {
		if strings.Contains(m, "850730033") {
			t.Errorf("personal data logged: %s", m)
		}
	}
	logs.mu.Unlock()

	tamper.Store(false)
	waitCosigned(t, e.trail, v, 10)
}

func TestWitnessNoneCosignedYet(t *testing.T) {
	dir := t.TempDir()
	_, ws := witnessedEnv(t, dir, 1)
	ws[0].down.Store(true)
	e := open(t, dir, withWitnesses(ws, 1, nil, nil))
	commitN(t, e.trail, 0, 2)
	if _, err := e.trail.Checkpoint(context.Background()); err != audit.ErrNotWitnessed {
		t.Fatalf("err = %v, want ErrNotWitnessed", err)
	}
	srv := httptest.NewServer(e.trail.LogHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	// Subject lookups still work, without proofs.
	ents, err := e.trail.BySubject(context.Background(), testRecord(1).Subject, time.Time{}, time.Time{})
	if err != nil || len(ents) != 1 || ents[0].Proof != "" {
		t.Fatalf("BySubject: %v %+v", err, ents)
	}
}
