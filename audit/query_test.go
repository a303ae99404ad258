package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"golang.org/x/mod/sumdb/tlog"
)

func TestSearchAndSubject(t *testing.T) {
	e := open(t, t.TempDir())
	ctx := context.Background()
	commitN(t, e.trail, 0, 250)
	waitSize(t, e.trail, 250)

	p, err := e.trail.Search(ctx, audit.Query{Participant: "src-b", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 100 || p.NextPageToken == "" || p.Records[0].ExchangeID != "ex-000249" {
		t.Fatalf("page 1: %d records, token %q", len(p.Records), p.NextPageToken)
	}
	seen := len(p.Records)
	for p.NextPageToken != "" {
		p, err = e.trail.Search(ctx, audit.Query{Participant: "src-b", Limit: 100, PageToken: p.NextPageToken})
		if err != nil {
			t.Fatal(err)
		}
		seen += len(p.Records)
	}
	if seen != 250 {
		t.Fatalf("paged through %d records", seen)
	}
	// Subject ...07 is in records 7, 107, 207.
	p, err = e.trail.Search(ctx, audit.Query{Subject: "85073003307"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 3 || p.Records[0].Subject != "85073003307" || p.Records[0].LogIndex == nil {
		t.Fatalf("by subject: %+v", p.Records)
	}
	p, _ = e.trail.Search(ctx, audit.Query{Participant: "nobody"})
	if len(p.Records) != 0 {
		t.Fatal("matched an unknown participant")
	}
	from := time.Date(2026, 3, 1, 10, 0, 100, 0, time.UTC)
	p, _ = e.trail.Search(ctx, audit.Query{From: from, To: from.Add(10 * time.Second)})
	if len(p.Records) != 10 {
		t.Fatalf("time range: %d records", len(p.Records))
	}

	es, err := e.trail.BySubject(ctx, "85073003307", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[0].Institution != "inst-a" || es[0].AuthorisationRef != "DEL-24/123" || es[0].Proof == "" {
		t.Fatalf("BySubject: %+v", es)
	}
	v := mustVerifier(t, e.trail.VerifierKey())
	for _, se := range es {
		pr, err := verify.ParseProof([]byte(se.Proof))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.CheckProof(pr, v, tlog.RecordHash(pr.Extra)); err != nil {
			t.Fatal(err)
		}
		// The party can open the commitment.
		op, err := e.trail.Opening(ctx, se.ExchangeID)
		if err != nil {
			t.Fatal(err)
		}
		_, c, err := audit.ParseLeaf(pr.Extra)
		if err != nil || audit.Commitment(op.Nonce, op.Record) != c {
			t.Fatal("opening does not match the proven leaf")
		}
	}
}

func TestHandlers(t *testing.T) {
	e := open(t, t.TempDir())
	commitN(t, e.trail, 0, 5)
	waitSize(t, e.trail, 5)
	h := e.trail.Handler()
	do := func(p *crossroads.Participant, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if p != nil {
			r = r.WithContext(crossroads.WithCaller(r.Context(), p))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	requester := &crossroads.Participant{ID: "inst-a", Kind: crossroads.KindInstitution}
	provider := &crossroads.Participant{ID: "src-b", Kind: crossroads.KindAuthenticSource}
	stranger := &crossroads.Participant{ID: "inst-z", Kind: crossroads.KindInstitution}
	auditor := &crossroads.Participant{ID: "aud", Kind: crossroads.KindAuditor}

	for _, c := range []struct {
		who    *crossroads.Participant
		path   string
		status int
	}{
		{requester, "/v1/audit/proofs/ex-000001", 200},
		{provider, "/v1/audit/proofs/ex-000001", 200},
		{auditor, "/v1/audit/proofs/ex-000001", 200},
		{stranger, "/v1/audit/proofs/ex-000001", 404},
		{stranger, "/v1/audit/proofs/ex-999999", 404},
		{nil, "/v1/audit/proofs/ex-000001", 401},
		{auditor, "/v1/audit/records?participant=inst-a&limit=2", 200},
		{auditor, "/v1/audit/records?from=yesterday", 400},
		{requester, "/v1/audit/records", 403},
		{nil, "/v1/log/checkpoint", 200},
		{nil, "/v1/log/tile/0/000.p/5", 200},
		{nil, "/v1/log/tile/entries/000.p/5", 200},
		{nil, "/v1/log/tile/0/001", 404},
		{nil, "/v1/log/key", 200},
	} {
		w := do(c.who, c.path)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.path, w.Code, c.status, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q", c.path, w.Header().Get("Content-Type"))
		}
	}
	// The stranger's 404 is the same as for an unknown exchange.
	if a, b := do(stranger, "/v1/audit/proofs/ex-000001").Body.String(), do(stranger, "/v1/audit/proofs/nope").Body.String(); a != b {
		t.Errorf("404 bodies differ: %q vs %q", a, b)
	}
	w := do(requester, "/v1/audit/proofs/ex-000001")
	pr, err := verify.ParseProof(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.CheckProof(pr, mustVerifier(t, e.trail.VerifierKey()), tlog.RecordHash(pr.Extra)); err != nil {
		t.Fatal(err)
	}
	var page audit.Page
	if err := json.Unmarshal(do(auditor, "/v1/audit/records?participant=inst-a&limit=2").Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.NextPageToken == "" {
		t.Fatalf("records page: %+v", page)
	}
	if got := strings.TrimSpace(do(nil, "/v1/log/key").Body.String()); got != e.trail.VerifierKey() {
		t.Fatalf("key %q", got)
	}
}

func TestKEKRotation(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	keysDir := filepath.Join(dir, "audit-keys")
	fk, err := audit.OpenFileKeys(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	e := open(t, dir, func(c *audit.Config) { c.KeyProvider = fk })
	commitN(t, e.trail, 0, 3) // day 1
	rec := testRecord(10)
	rec.Time = rec.Time.Add(48 * time.Hour) // another day: its own data key and KEK
	if _, err := e.trail.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	before, _ := e.store.Keys(ctx)
	if len(before) != 2 || before[0].KEKID == before[1].KEKID {
		t.Fatalf("keys before rewrap: %+v (want one KEK per period)", before)
	}
	n, err := e.trail.Rewrap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("rewrap: %d, %v", n, err)
	}
	e.close()
	// The old KEKs are destroyed; every data key is under a new one.
	for _, k := range before {
		if _, err := os.Stat(filepath.Join(keysDir, "kek-"+k.KEKID+".key")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("old KEK %s still on disk: %v", k.KEKID, err)
		}
	}
	e = open(t, dir) // fresh FileKeys from the directory
	p, err := e.trail.Search(ctx, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 4 {
		t.Fatalf("%d records readable after rotation", len(p.Records))
	}
	var st *sqlite.AuditStore = e.store
	after, _ := st.Keys(ctx)
	for i, k := range after {
		if k.KEKID == before[i].KEKID || !strings.HasPrefix(k.KEKID, k.Period+"_") {
			t.Fatalf("key %s wrapped under %s after rotation", k.Period, k.KEKID)
		}
	}
}

// TestFileKeysListsOnlyKEKs: the index key and the "current" file of
// earlier versions are not KEKs.
func TestFileKeysListsOnlyKEKs(t *testing.T) {
	dir := t.TempDir()
	fk, err := audit.OpenFileKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "current"), []byte("20260301T100000-000000000Z\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "kek-20260301T100000-000000000Z.key"), make([]byte, 32), 0o600)
	id, err := fk.NewKEK(context.Background(), "2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	keks, err := fk.KEKs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range keks {
		got[k.ID] = k.Period
	}
	if len(got) != 2 || got["20260301T100000-000000000Z"] != "" || got[id] != "2026-03-02" {
		t.Fatalf("KEKs: %+v", keks)
	}
}
