package witness

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func newTLSWitness(t *testing.T, w *testWitness) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(w)
	t.Cleanup(srv.Close)
	return &Client{URL: srv.URL + "/", HTTP: srv.Client(), Verifier: w.cosigner.Verifier()}
}

func TestClientAddCheckpoint(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	c := newTLSWitness(t, w)
	policy := Policy{Witnesses: []note.Verifier{w.cosigner.Verifier()}, Quorum: 1}

	old := int64(0)
	for _, n := range []int64{3, 4, 9, 40} {
		cp := l.checkpoint(t, n)
		if policy.Satisfied(cp) {
			t.Fatal("policy satisfied without cosignatures")
		}
		sigs, err := c.AddCheckpoint(ctx, uint64(old), l.proof(t, old, n), cp)
		if err != nil {
			t.Fatalf("AddCheckpoint(%d -> %d): %v", old, n, err)
		}
		merged, err := MergeSignatures(cp, sigs...)
		if err != nil {
			t.Fatal(err)
		}
		if !policy.Satisfied(merged) {
			t.Fatalf("policy not satisfied by %q", merged)
		}
		if _, err := VerifyCosignature(merged, w.cosigner.Verifier()); err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(merged, note.VerifierList(l.verifier, w.cosigner.Verifier())); err != nil {
			t.Fatal(err)
		}
		old = n
	}
}

func TestClientConflictRetry(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 7)
	c := newTLSWitness(t, w)

	// The client does not know the witness's state: it starts from 0.
	_, err := c.AddCheckpoint(ctx, 0, nil, l.checkpoint(t, 20))
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || errors.Is(err, ErrFork) || ce.Size != 7 {
		t.Fatalf("AddCheckpoint from 0 = %v, want conflict at 7", err)
	}
	sigs, err := c.AddCheckpoint(ctx, ce.Size, l.proof(t, int64(ce.Size), 20), l.checkpoint(t, 20))
	if err != nil || len(sigs) != 1 {
		t.Fatalf("retry: %v, %v", sigs, err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.org/log")
	unknown := newTestLog(t, "example.org/unknown")
	impostor := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 8)
	c := newTLSWitness(t, w)

	_, err := c.AddCheckpoint(ctx, 0, nil, unknown.checkpoint(t, 2))
	if !errors.Is(err, ErrUnknownLog) {
		t.Errorf("unknown log: %v", err)
	}
	_, err = c.AddCheckpoint(ctx, 8, impostor.proof(t, 8, 9), impostor.checkpoint(t, 9))
	if !errors.Is(err, ErrBadSignature) {
		t.Errorf("bad signature: %v", err)
	}
	_, err = c.AddCheckpoint(ctx, 8, l.proof(t, 7, 9), l.checkpoint(t, 9))
	if !errors.Is(err, ErrInconsistent) {
		t.Errorf("bad proof: %v", err)
	}
	_, err = c.AddCheckpoint(ctx, 8, []tlog.Hash{{}}, l.checkpoint(t, 8))
	if !errors.Is(err, ErrInconsistent) {
		t.Errorf("non-empty proof at equal sizes: %v", err)
	}
	_, err = c.AddCheckpoint(ctx, 9, nil, l.checkpoint(t, 8))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("old size above checkpoint size: %v", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 {
		t.Errorf("want StatusError 400, got %v", err)
	}
	_, err = c.AddCheckpoint(ctx, 8, nil, l.fork(t, 5).checkpoint(t, 8))
	var ce *ConflictError
	if !errors.Is(err, ErrFork) || !errors.As(err, &ce) || !ce.Fork || ce.Size != 8 {
		t.Errorf("fork: %v", err)
	}
	if _, err := c.AddCheckpoint(ctx, 0, nil, []byte("not a note")); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed checkpoint: %v", err)
	}

	// A client expecting another witness key gets no valid cosignature.
	c.Verifier = newTestCosigner(t, "witness.example/w1").Verifier()
	if _, err := c.AddCheckpoint(ctx, 8, nil, l.checkpoint(t, 8)); !errors.Is(err, ErrNotCosigned) {
		t.Errorf("wrong witness key: %v", err)
	}
	// Without a verifier, the lines are returned as they are.
	c.Verifier = nil
	if sigs, err := c.AddCheckpoint(ctx, 8, nil, l.checkpoint(t, 8)); err != nil || len(sigs) != 1 || sigs[0].Name != "witness.example/w1" {
		t.Errorf("no verifier: %v, %v", sigs, err)
	}
}

func TestClientUnreachable(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	srv := httptest.NewTLSServer(nil)
	c := &Client{URL: srv.URL, HTTP: srv.Client()}
	srv.Close()
	if _, err := c.AddCheckpoint(context.Background(), 0, nil, l.checkpoint(t, 1)); err == nil {
		t.Fatal("AddCheckpoint to a closed server succeeded")
	}
}
