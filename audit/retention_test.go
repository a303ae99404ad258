package audit_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"golang.org/x/mod/sumdb/tlog"
)

func TestEraseAfterRetention(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	ctx := context.Background()
	now := time.Now().UTC()
	ages := map[int]time.Duration{} // record → age
	for i := range 10 {
		switch {
		case i < 5:
			ages[i] = 400*24*time.Hour + time.Duration(i)*time.Minute
		case i < 8:
			ages[i] = 40*24*time.Hour + time.Duration(i)*time.Minute
		default:
			ages[i] = time.Hour
		}
		r := testRecord(i)
		r.Time = now.Add(-ages[i])
		if _, err := e.trail.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitSize(t, e.trail, 10)
	old, err := e.store.Get(ctx, "ex-000002")
	if err != nil {
		t.Fatal(err)
	}
	oldPeriod := old.Period

	// Less than the minimum retention needs force.
	if _, err := e.trail.Erase(ctx, now.Add(-30*24*time.Hour), false); !errors.Is(err, crossroads.ErrInvalid) {
		t.Fatalf("erase within a year: err = %v, want ErrInvalid", err)
	}
	if row, _ := e.store.Get(ctx, "ex-000006"); row.Erased() {
		t.Fatal("refused erase erased")
	}

	rep, err := e.trail.Erase(ctx, now.Add(-audit.MinRetention), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 5 || len(rep.Keys) == 0 {
		t.Fatalf("report %+v, want 5 records and their keys", rep)
	}
	if _, err := e.store.Key(ctx, oldPeriod); !errors.Is(err, crossroads.ErrNotFound) {
		t.Fatalf("data key of an expired period: %v, want destroyed", err)
	}
	row, err := e.store.Get(ctx, "ex-000002")
	if err != nil {
		t.Fatal(err)
	}
	if !row.Erased() || row.Nonce != nil || row.SubjectIndex != nil {
		t.Fatalf("row not erased: %+v", row)
	}
	if !bytes.Equal(row.Leaf, old.Leaf) || row.Index != old.Index || row.Requester != old.Requester || row.Service != old.Service {
		t.Fatal("erase changed the leaf, index or metadata")
	}
	// The ciphertext is gone from the database files too.
	for _, f := range []string{"audit.db", "audit.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, old.Ciphertext) {
			t.Errorf("%s still holds an erased ciphertext", f)
		}
		if bytes.Contains(b, old.Nonce) {
			t.Errorf("%s still holds an erased nonce", f)
		}
	}

	// Search shows erased records as such, with their metadata only.
	p, err := e.trail.Search(ctx, audit.Query{Participant: "inst-a"})
	if err != nil {
		t.Fatal(err)
	}
	erased := 0
	for _, r := range p.Records {
		if r.Erased {
			erased++
			if r.Subject != "" || r.AuthorisationRef != "" || r.Requester != "inst-a" || r.Service != "svc-income" || r.LogIndex == nil {
				t.Errorf("erased entry %+v", r)
			}
		}
	}
	if len(p.Records) != 10 || erased != 5 {
		t.Fatalf("%d records, %d erased; want 10, 5", len(p.Records), erased)
	}
	// The subject can no longer be linked to erased records.
	if p, err := e.trail.Search(ctx, audit.Query{Subject: testRecord(2).Subject}); err != nil || len(p.Records) != 0 {
		t.Fatalf("subject search after erasure: %v, %d records", err, len(p.Records))
	}
	if _, err := e.trail.Opening(ctx, "ex-000002"); !errors.Is(err, audit.ErrErased) {
		t.Fatalf("opening: %v, want ErrErased", err)
	}

	// The tree still verifies, and so does the erased record's proof.
	pr, err := e.trail.Proof(ctx, "ex-000002")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.CheckProof(pr, mustVerifier(t, e.trail.VerifierKey()), tlog.Hash(audit.LeafHash(old.Leaf))); err != nil {
		t.Fatal(err)
	}
	chk, err := e.trail.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(chk.Problems) != 0 || chk.Erased != 5 || chk.LogSize != 10 {
		t.Fatalf("check: %+v", chk)
	}
	// The proof handler says the record is erased.
	req := httptest.NewRequest(http.MethodGet, "/v1/audit/proofs/ex-000002", nil)
	req = req.WithContext(crossroads.WithCaller(req.Context(), &crossroads.Participant{ID: "inst-a"}))
	rec := httptest.NewRecorder()
	e.trail.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get(audit.HeaderRecordErased) != "true" {
		t.Fatalf("proof handler: %d %q", rec.Code, rec.Header().Get(audit.HeaderRecordErased))
	}

	// Forced, a shorter retention erases the younger records too; new
	// records still commit, and a repeat erases nothing more.
	rep, err = e.trail.Erase(ctx, now.Add(-30*24*time.Hour), true)
	if err != nil || rep.Records != 3 {
		t.Fatalf("forced erase: %+v, %v", rep, err)
	}
	for i := range 2 {
		r := testRecord(100 + i)
		r.Time = time.Now()
		if _, err := e.trail.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err = e.trail.Erase(ctx, now.Add(-30*24*time.Hour), true); err != nil || rep.Records != 0 || len(rep.Keys) != 0 {
		t.Fatalf("repeat: %+v, %v", rep, err)
	}
	waitSize(t, e.trail, 12)
	if chk, err := e.trail.Check(ctx); err != nil || len(chk.Problems) != 0 || chk.Erased != 8 {
		t.Fatalf("check: %+v, %v", chk, err)
	}
}
