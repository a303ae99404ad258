package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestFirstCheckpointAccepted(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	rec := post(t, w, l.request(t, 0, 5))
	wantStatus(t, rec, http.StatusOK)
	body := rec.Body.String()
	if !strings.HasPrefix(body, "— witness.example/w1 ") || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
		t.Fatalf("response body %q is not one signature line", body)
	}
	st, ok, err := w.store.Latest(context.Background(), l.origin)
	if err != nil || !ok || st.Size != 5 || st.Root != l.root(t, 5) {
		t.Fatalf("stored state %+v %v %v, want size 5", st, ok, err)
	}
}

func TestGrowthWithConsistencyProof(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	sizes := []int64{1, 2, 3, 4, 7, 8, 9, 16, 17, 31, 33, 64, 100, 257}
	old := int64(0)
	for _, n := range sizes {
		merged := w.cosign(t, l, old, n)
		if _, err := note.Open(merged, note.VerifierList(l.verifier)); err != nil {
			t.Fatalf("merged checkpoint lost the log signature: %v", err)
		}
		ts, err := VerifyCosignature(merged, w.cosigner.Verifier())
		if err != nil || ts.IsZero() {
			t.Fatalf("VerifyCosignature = %v, %v", ts, err)
		}
		old = n
	}
}

func TestCheckpointZeroThenGrowth(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 0)
	w.cosign(t, l, 0, 0) // same size, same root: cosigned again
	w.cosign(t, l, 0, 3)
}

func TestResubmitSameCheckpoint(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 10)
	w.cosign(t, l, 10, 10)
	// A proof between equal sizes must be empty.
	body := FormatAddCheckpoint(10, []tlog.Hash{{1}}, l.checkpoint(t, 10))
	wantStatus(t, post(t, w, body), http.StatusUnprocessableEntity)
}

func TestWrongOldSizeConflict(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)

	// Nothing cosigned yet: the stored size is 0.
	wantConflict(t, post(t, w, l.request(t, 3, 8)), 0)

	w.cosign(t, l, 0, 5)
	wantConflict(t, post(t, w, l.request(t, 3, 8)), 5)
	wantConflict(t, post(t, w, l.request(t, 0, 8)), 5)
	wantConflict(t, post(t, w, l.request(t, 6, 8)), 5)
	w.cosign(t, l, 5, 8)
}

func TestBadConsistencyProof(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 5)

	good := l.proof(t, 5, 13)
	tampered := append([]tlog.Hash(nil), good...)
	tampered[0][0] ^= 1
	cases := map[string][]tlog.Hash{
		"tampered":  tampered,
		"truncated": good[:len(good)-1],
		"extended":  append(append([]tlog.Hash(nil), good...), tlog.Hash{}),
		"empty":     nil,
		"other":     l.proof(t, 4, 13),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, post(t, w, FormatAddCheckpoint(5, p, l.checkpoint(t, 13))), http.StatusUnprocessableEntity)
		})
	}
	// Non-empty proof from size 0 (on a fresh witness).
	w2 := newTestWitness(t, nil, nil, l)
	wantStatus(t, post(t, w2, FormatAddCheckpoint(0, good, l.checkpoint(t, 13))), http.StatusUnprocessableEntity)

	// Nothing was stored; the good proof still works.
	w.cosign(t, l, 5, 13)
}

func TestUnknownOrigin(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	other := newTestLog(t, "example.org/other")
	w := newTestWitness(t, nil, nil, l)
	// c2sp.org/tlog-witness: "If the checkpoint origin is unknown, the
	// witness MUST respond with a 404 Not Found".
	wantStatus(t, post(t, w, other.request(t, 0, 3)), http.StatusNotFound)
	if _, ok, _ := w.store.Latest(context.Background(), other.origin); ok {
		t.Fatal("state stored for an unknown origin")
	}
}

func TestBadSignatureForbidden(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	impostor := newTestLog(t, "example.org/log") // same origin and key name, other key
	cp := Checkpoint{Origin: l.origin, Size: 4, Root: l.root(t, 4)}

	// Signed by an unknown key only.
	wantStatus(t, post(t, w, FormatAddCheckpoint(0, nil, signCheckpoint(t, cp, impostor.signer))), http.StatusForbidden)

	// Signed by the log's key, but the signature is corrupted.
	good := signCheckpoint(t, cp, l.signer)
	text, sigs, _ := splitNote(good)
	parsed, _ := ParseSignatureLines(sigs)
	raw, _ := base64.StdEncoding.DecodeString(parsed[0].Base64)
	raw[len(raw)-1] ^= 1
	parsed[0].Base64 = base64.StdEncoding.EncodeToString(raw)
	bad, err := MergeSignatures(append(append(bytes.Clone(text), '\n'), sigs...), parsed[0])
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, post(t, w, FormatAddCheckpoint(0, nil, bad)), http.StatusForbidden)

	// Signed over another root hash.
	r3 := l.root(t, 3)
	forged := bytes.Replace(signCheckpoint(t, Checkpoint{Origin: l.origin, Size: 4, Root: r3}, l.signer),
		[]byte(base64.StdEncoding.EncodeToString(r3[:])), []byte(base64.StdEncoding.EncodeToString(cp.Root[:])), 1)
	wantStatus(t, post(t, w, FormatAddCheckpoint(0, nil, forged)), http.StatusForbidden)

	// Unknown signatures are ignored when a known one verifies.
	both := signCheckpoint(t, cp, impostor.signer, l.signer)
	wantStatus(t, post(t, w, FormatAddCheckpoint(0, nil, both)), http.StatusOK)
}

func TestSmallerSizeRefused(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 10)
	// Claiming the witness is at 6: conflict with the stored size.
	wantConflict(t, post(t, w, l.request(t, 6, 6)), 10)
	wantConflict(t, post(t, w, l.request(t, 0, 6)), 10)
	// Old size above the checkpoint size: bad request.
	wantStatus(t, post(t, w, FormatAddCheckpoint(10, nil, l.checkpoint(t, 6))), http.StatusBadRequest)
	st, _, _ := w.store.Latest(context.Background(), l.origin)
	if st.Size != 10 {
		t.Fatalf("stored size %d after refused rollback, want 10", st.Size)
	}
}

func TestForkSameSizeDifferentRootRefused(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 6)
	w.cosign(t, l, 6, 8)

	f := l.fork(t, 6) // shares 6 leaves, then diverges
	if f.root(t, 8) == l.root(t, 8) {
		t.Fatal("fork has the same root")
	}
	// Same size, different root.
	rec := post(t, w, f.request(t, 8, 8))
	wantConflict(t, rec, 8)
	// The fork, grown further, with a proof from its own tree of size 8.
	wantStatus(t, post(t, w, f.request(t, 8, 12)), http.StatusUnprocessableEntity)

	st, _, _ := w.store.Latest(context.Background(), l.origin)
	if st.Size != 8 || st.Root != l.root(t, 8) {
		t.Fatalf("fork changed the stored state: %+v", st)
	}
	w.cosign(t, l, 8, 12)
}

func TestForkBeforeFirstCosignatureOfRoot(t *testing.T) {
	// Two different checkpoints of size 0 (only possible with a
	// misbehaving log) are a fork too.
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	w.cosign(t, l, 0, 0)
	other := signCheckpoint(t, Checkpoint{Origin: l.origin, Size: 0, Root: tlog.Hash{1}}, l.signer)
	wantConflict(t, post(t, w, FormatAddCheckpoint(0, nil, other)), 0)
}

func TestMalformedRequests(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	cp := string(l.checkpoint(t, 5))
	h := l.root(t, 1)
	hash := base64.StdEncoding.EncodeToString(h[:])
	many := strings.Repeat(hash+"\n", MaxProofLines+1)
	cases := map[string]string{
		"empty":              "",
		"no old line":        "\n" + cp,
		"no newline":         "old 0",
		"old without space":  "old0\n\n" + cp,
		"old leading zero":   "old 00\n\n" + cp,
		"old leading zero 2": "old 05\n\n" + cp,
		"old negative":       "old -1\n\n" + cp,
		"old plus":           "old +1\n\n" + cp,
		"old hex":            "old 0x1\n\n" + cp,
		"old overflow":       "old 18446744073709551616\n\n" + cp,
		"old above int64":    "old 9223372036854775808\n\n" + cp,
		"old trailing space": "old 0 \n\n" + cp,
		"OLD":                "OLD 0\n\n" + cp,
		"crlf":               "old 0\r\n\r\n" + cp,
		"no blank line":      "old 0\n" + cp,
		"bad proof base64":   "old 0\n!!!!\n\n" + cp,
		"short proof hash":   "old 0\nAAAA\n\n" + cp,
		"unpadded proof":     "old 0\n" + strings.TrimRight(hash, "=") + "\n\n" + cp,
		"too many proofs":    "old 0\n" + many + "\n" + cp,
		"no checkpoint":      "old 0\n\n",
		"unsigned":           "old 0\n\n" + strings.SplitN(cp, "\n\n", 2)[0] + "\n",
		"two lines":          "old 0\n\nexample.org/log\n5\n\n— example.org/log AAAAAAA=\n",
		"bad size":           "old 0\n\nexample.org/log\n05\n" + hash + "\n\n— example.org/log AAAAAAA=\n",
		"bad root":           "old 0\n\nexample.org/log\n5\nAAAA\n\n— example.org/log AAAAAAA=\n",
		"empty origin":       "old 0\n\n\n5\n" + hash + "\n\n— example.org/log AAAAAAA=\n",
		"bad sig line":       "old 0\n\nexample.org/log\n5\n" + hash + "\n\n-- example.org/log AAAAAAA=\n",
		"sig no newline":     strings.TrimSuffix("old 0\n\n"+cp, "\n"),
		"control char":       "old 0\n\n" + strings.Replace(cp, "example.org/log\n5", "example.org/log\n5\n\x01ext", 1),
		"old above size":     "old 6\n\n" + cp,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, post(t, w, []byte(body)), http.StatusBadRequest)
		})
	}
	if _, ok, _ := w.store.Latest(context.Background(), l.origin); ok {
		t.Fatal("malformed request stored state")
	}
}

func TestHTTPMethodsAndLimits(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w := newTestWitness(t, nil, nil, l)
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/add-checkpoint", nil))
	wantStatus(t, rec, http.StatusMethodNotAllowed)
	rec = httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/other", nil))
	wantStatus(t, rec, http.StatusNotFound)
	big := append(l.request(t, 0, 2), bytes.Repeat([]byte("x"), MaxRequestSize)...)
	wantStatus(t, post(t, w, big), http.StatusRequestEntityTooLarge)
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, "example.org/log")
	other := newTestLog(t, "example.net/another/log")
	cosigner := newTestCosigner(t, "witness.example/w1")

	fs1, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w1 := newTestWitness(t, fs1, cosigner, l, other)
	w1.cosign(t, l, 0, 5)
	w1.cosign(t, l, 5, 9)
	w1.cosign(t, other, 0, 2)

	if _, err := OpenFileStore(dir); err == nil {
		t.Fatal("a second FileStore opened a locked directory")
	}
	if err := fs1.Close(); err != nil {
		t.Fatal(err)
	}
	fs2, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs2.Close()
	w2 := newTestWitness(t, fs2, cosigner, l, other)
	wantConflict(t, post(t, w2, l.request(t, 0, 12)), 9)
	wantConflict(t, post(t, w2, other.request(t, 0, 3)), 2)
	wantConflict(t, post(t, w2, l.fork(t, 5).request(t, 9, 9)), 9)
	w2.cosign(t, l, 9, 12)
	st, ok, err := fs2.Latest(context.Background(), l.origin)
	if err != nil || !ok || st.Size != 12 || st.Root != l.root(t, 12) || !bytes.Equal(st.Checkpoint, l.checkpoint(t, 12)[:len(st.Checkpoint)]) {
		t.Fatalf("state after restart: %+v %v %v", st, ok, err)
	}
}

func TestFileStoreCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	s, err := OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := State{Size: 1, Root: tlog.Hash{1}}
	b := State{Size: 2, Root: tlog.Hash{2}}
	if err := s.CompareAndSwap(ctx, "o", nil, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "o", nil, b); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("CAS from absent over existing state: %v", err)
	}
	if err := s.CompareAndSwap(ctx, "o", &State{Size: 1, Root: tlog.Hash{9}}, b); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("CAS with wrong root: %v", err)
	}
	if err := s.CompareAndSwap(ctx, "o", &a, b); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, "o", &a, b); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("CAS from stale state: %v", err)
	}
}

func TestConcurrentSubmissionsSameOldSize(t *testing.T) {
	for _, kind := range []string{"file", "memory"} {
		t.Run(kind, func(t *testing.T) {
			var store Store = NewMemoryStore()
			if kind == "file" {
				fs, err := OpenFileStore(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				store = fs
			}
			l := newTestLog(t, "example.org/log")
			w := newTestWitness(t, store, nil, l)
			w.cosign(t, l, 0, 4)

			const n = 16
			bodies := make([][]byte, n)
			for i := range bodies {
				bodies[i] = l.request(t, 4, int64(5+i))
			}
			codes := make([]int, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range bodies {
				wg.Go(func() {
					<-start
					codes[i] = post(t, w, bodies[i]).Code
				})
			}
			close(start)
			wg.Wait()
			ok, conflict := 0, 0
			winner := -1
			for i, c := range codes {
				switch c {
				case http.StatusOK:
					ok++
					winner = i
				case http.StatusConflict:
					conflict++
				default:
					t.Errorf("request %d: status %d", i, c)
				}
			}
			if ok != 1 || conflict != n-1 {
				t.Fatalf("%d succeeded and %d conflicted, want 1 and %d", ok, conflict, n-1)
			}
			st, _, _ := store.Latest(context.Background(), l.origin)
			if st.Size != uint64(5+winner) {
				t.Fatalf("stored size %d, want the winner's %d", st.Size, 5+winner)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.org/log")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	logs := []Log{{Origin: l.origin, Verifiers: []note.Verifier{l.verifier}}}
	bad := map[string]Config{
		"no store":      {Name: "w", Key: key, Logs: logs},
		"no key":        {Name: "w", Store: NewMemoryStore(), Logs: logs},
		"bad name":      {Name: "w w", Key: key, Store: NewMemoryStore(), Logs: logs},
		"no verifiers":  {Name: "w", Key: key, Store: NewMemoryStore(), Logs: []Log{{Origin: "o"}}},
		"dup log":       {Name: "w", Key: key, Store: NewMemoryStore(), Logs: append(logs, logs...)},
		"signer name":   {Name: "w", Signer: newTestCosigner(t, "x"), Store: NewMemoryStore(), Logs: logs},
		"empty origin":  {Name: "w", Key: key, Store: NewMemoryStore(), Logs: []Log{{Verifiers: []note.Verifier{l.verifier}}}},
		"short ed25519": {Name: "w", Key: key[:10], Store: NewMemoryStore(), Logs: logs},
	}
	for name, cfg := range bad {
		cfg.Logger = quietLogger()
		if _, err := New(ctx, cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	w, err := New(ctx, Config{Name: "witness.example/k", Key: key, Store: NewMemoryStore(), Logs: logs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, w, l.request(t, 0, 3))
	wantStatus(t, rec, http.StatusOK)
	v, err := NewCosignatureVerifier(VerifierKey("witness.example/k", key.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	sigs, _ := ParseSignatureLines(rec.Body.Bytes())
	merged, _ := MergeSignatures(l.checkpoint(t, 3), sigs...)
	if _, err := VerifyCosignature(merged, v); err != nil {
		t.Fatal(err)
	}
}
