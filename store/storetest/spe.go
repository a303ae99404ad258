package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/spe"
)

// TestSPEStore is the conformance suite of spe.Store backends. open
// returns an empty store for t.
func TestSPEStore(t *testing.T, open func(t *testing.T) spe.Store) {
	s := open(t)
	if _, err := s.Workspace(ctx, "p1"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Fatalf("absent workspace: %v", err)
	}
	w := spe.Workspace{Permit: "p1", State: spe.StateOpen, Created: t1, Changed: t1}
	if err := s.PutWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.State, w.Reason, w.Actor, w.Changed = spe.StateHalted, "misuse", "ops", t2
	if err := s.PutWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	got, err := s.Workspace(ctx, "p1")
	if err != nil || got.State != spe.StateHalted || got.Reason != "misuse" || got.Actor != "ops" || !got.Created.Equal(t1) || !got.Changed.Equal(t2) || got.Changed.Nanosecond() != t2.Nanosecond() {
		t.Fatalf("workspace came back as %+v, %v", got, err)
	}
	w.State = spe.StateTerminated
	if err := s.PutWorkspace(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.State = spe.StateOpen
	if err := s.PutWorkspace(ctx, w); !errors.Is(err, crossroads.ErrConflict) {
		t.Errorf("reopening a terminated workspace: %v, want ErrConflict", err)
	}
	if got, _ := s.Workspace(ctx, "p1"); got.State != spe.StateTerminated {
		t.Errorf("terminated workspace now %s", got.State)
	}
	if err := s.PutWorkspace(ctx, spe.Workspace{Permit: "p2", State: spe.StateOpen, Created: t0, Changed: t0}); err != nil {
		t.Fatal(err)
	}

	u := spe.Upload{Permit: "p1", ID: "u1", Dataset: "d", Holder: "h", User: "h", Filename: "a.csv", Type: "csv", Size: 42, SHA256: "ab", At: t1}
	if err := s.PutUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUpload(ctx, u); !errors.Is(err, crossroads.ErrConflict) {
		t.Errorf("upload twice: %v, want ErrConflict", err)
	}
	u2 := u
	u2.ID, u2.At = "u0", t2
	if err := s.PutUpload(ctx, u2); err != nil {
		t.Fatal(err)
	}
	ups, err := s.Uploads(ctx, "p1")
	if err != nil || len(ups) != 2 || ups[0].ID != "u1" || ups[1].ID != "u0" || ups[0] != (spe.Upload{Permit: "p1", ID: "u1", Dataset: "d", Holder: "h", User: "h", Filename: "a.csv", Type: "csv", Size: 42, SHA256: "ab", At: t1.UTC()}) {
		t.Errorf("uploads %+v, %v", ups, err)
	}
	if ups, _ := s.Uploads(ctx, "p2"); len(ups) != 0 {
		t.Errorf("another permit's uploads listed: %+v", ups)
	}

	r := spe.Release{Permit: "p1", ID: "r1", Requester: "alice", Query: []byte(`{"dataset":"d"}`), Status: spe.ReleaseReview, Created: t1}
	if err := s.PutRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "p2", "r1"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("release of another permit: %v", err)
	}
	r.Status, r.Decided = spe.ReleaseReleased, t2
	if err := s.PutRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	gr, err := s.Release(ctx, "p1", "r1")
	if err != nil || gr.Status != spe.ReleaseReleased || !gr.Decided.Equal(t2) || string(gr.Query) != `{"dataset":"d"}` || gr.Requester != "alice" {
		t.Errorf("release %+v, %v", gr, err)
	}
	if err := s.PutRelease(ctx, spe.Release{Permit: "p1", ID: "r2", Requester: "bob", Query: []byte(`{}`), Status: spe.ReleasePass, Noisy: true, Federated: true, Created: t2}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Releases(ctx, "p1")
	if err != nil || len(rs) != 2 || rs[1].ID != "r2" || !rs[1].Noisy || !rs[1].Federated || !rs[1].Decided.IsZero() {
		t.Errorf("releases %+v, %v", rs, err)
	}

	for i, rv := range []spe.Review{{Reviewer: "rev-b", Decision: spe.DecisionApprove}, {Reviewer: "rev-a", Decision: spe.DecisionReject, Note: "n"}} {
		rv.Permit, rv.Release, rv.At = "p1", "r1", t1.Add(time.Duration(i)*time.Second)
		if err := s.AddReview(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddReview(ctx, spe.Review{Permit: "p1", Release: "r1", Reviewer: "rev-a", Decision: spe.DecisionApprove, At: t2}); !errors.Is(err, crossroads.ErrConflict) {
		t.Errorf("second decision of one reviewer: %v, want ErrConflict", err)
	}
	rvs, err := s.Reviews(ctx, "p1", "r1")
	if err != nil || len(rvs) != 2 || rvs[0].Reviewer != "rev-b" || rvs[1].Note != "n" || rvs[1].Decision != spe.DecisionReject {
		t.Errorf("reviews %+v, %v", rvs, err)
	}

	limit := crossroads.PrivacyBudget{Epsilon: 1, Delta: 1e-6}
	if sp, err := s.Spent(ctx, "p1"); err != nil || sp != (crossroads.PrivacyBudget{}) {
		t.Errorf("nothing spent: %+v %v", sp, err)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.SpendBudget(ctx, "p1", 0.1, 1e-7, limit); err != nil {
			t.Fatalf("spend %d: %v", i, err)
		}
	}
	if _, err := s.SpendBudget(ctx, "p1", 0.1, 0, limit); !errors.Is(err, spe.ErrBudget) {
		t.Errorf("spend beyond the budget: %v, want ErrBudget", err)
	}
	if sp, _ := s.Spent(ctx, "p1"); sp.Epsilon < 0.999 || sp.Epsilon > 1.001 {
		t.Errorf("spent %+v after a refused spend", sp)
	}
	if sp, _ := s.Spent(ctx, "p2"); sp.Epsilon != 0 {
		t.Errorf("another permit spent %+v", sp)
	}
}
