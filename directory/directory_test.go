package directory

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/policy"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func network() *crossroads.Network {
	return &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: "ocmw", Name: "OCMW", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "rr", Name: "RR", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
		},
		Services: []crossroads.Service{{ID: "person", Provider: "rr", BaseURL: "https://rr.example", Fields: []string{"/name"}, ConcernsPerson: true}},
		Authorisations: []crossroads.Authorisation{{
			ID: "a1", Reference: "CSSS/1", Grantee: "ocmw", Services: []string{"person"}, Purposes: []string{"aid"},
			Fields: map[string][]string{"person": {"/name"}}, Capacities: []crossroads.Capacity{{Sector: "s", Code: "c"}},
			ValidFrom: t0, Status: crossroads.StatusActive,
		}},
	}
}

func openStore(t testing.TB) *sqlite.Registers {
	t.Helper()
	s, err := sqlite.OpenRegisters(context.Background(), filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestWriteThroughAndReload(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	person := personid.Make("850730", 33, false)
	n := network()
	n.Integrations = []crossroads.Integration{{Person: person, Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}}
	if err := d.Store().Apply(ctx, n); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	q := policy.Request{Requester: "ocmw", Service: "person", Purpose: "aid", Subject: person}
	if got := policy.Decide(d, q, now); !got.Allowed {
		t.Fatalf("after apply: %s", got.Reason)
	}
	// A second directory over the same store sees the same (durable) state.
	d2, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(d2, q, now); !got.Allowed {
		t.Fatalf("after reload: %s", got.Reason)
	}
	// Removing the integration denies at once, in memory and after reload.
	if err := d.Store().DeleteIntegration(ctx, n.Integrations[0]); err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(d, q, now); got.Reason != crossroads.ReasonNoIntegration {
		t.Fatalf("after delete: %s", got.Reason)
	}
	d3, _ := Open(ctx, store)
	if got := policy.Decide(d3, q, now); got.Reason != crossroads.ReasonNoIntegration {
		t.Fatalf("after delete and reload: %s", got.Reason)
	}
	// Re-adding via PutIntegration works too.
	if err := d.Store().PutIntegration(ctx, n.Integrations[0]); err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(d, q, now); !got.Allowed {
		t.Fatalf("after put: %s", got.Reason)
	}
	if caps := d.Capacities("ocmw"); len(caps) != 1 || caps[0] != (crossroads.Capacity{Sector: "s", Code: "c"}) {
		t.Fatalf("capacities %v", caps)
	}
}

// TestFailedWriteLeavesMemoryUnchanged: memory follows only durable writes.
func TestFailedWriteLeavesMemoryUnchanged(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	n := network()
	if err := d.Store().Apply(ctx, n); err != nil {
		t.Fatal(err)
	}
	store.Close()
	person := personid.Make("850730", 34, false)
	in := crossroads.Integration{Person: person, Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}
	if err := d.Store().PutIntegration(ctx, in); err == nil {
		t.Fatal("write to a closed store succeeded")
	}
	if got := d.Integrations(person, "ocmw"); len(got) != 0 {
		t.Fatalf("memory changed by a failed write: %v", got)
	}
}

// BenchmarkDecide measures the preventive check against a directory of
// 10,000 authorisations and 1,000,000 integrations (design §6).
func BenchmarkDecide(b *testing.B) {
	const nAuth, nInt = 10_000, 1_000_000
	d := newDirectory(nil)
	n := &crossroads.Network{}
	n.Participants = append(n.Participants, crossroads.Participant{ID: "rr", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive})
	for i := 0; i < 100; i++ {
		n.Services = append(n.Services, crossroads.Service{ID: fmt.Sprintf("svc-%d", i), Provider: "rr", ConcernsPerson: true})
	}
	for i := 0; i < nAuth; i++ {
		g := fmt.Sprintf("inst-%d", i%1000)
		if i < 1000 {
			n.Participants = append(n.Participants, crossroads.Participant{ID: g, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
		}
		n.Authorisations = append(n.Authorisations, crossroads.Authorisation{
			ID: fmt.Sprintf("a-%d", i), Grantee: g, Services: []string{fmt.Sprintf("svc-%d", i%100), fmt.Sprintf("svc-%d", (i+1)%100)},
			Purposes: []string{"p1", "p2"}, Capacities: []crossroads.Capacity{{Sector: "s", Code: "c"}},
			Fields: map[string][]string{}, ValidFrom: t0, Status: crossroads.StatusActive,
		})
	}
	d.regs.Store(index(n))
	persons := make([]string, nInt/2)
	for i := range persons {
		persons[i] = personid.Make(fmt.Sprintf("%02d%02d%02d", 50+i%50, 1+i%12, 1+i%28), i%997, false) + fmt.Sprint(i/10000)
	}
	for i := 0; i < nInt; i++ {
		d.put(crossroads.Integration{Person: persons[i%len(persons)], Participant: fmt.Sprintf("inst-%d", i%1000), Sector: "s", Capacity: "c", From: t0})
	}
	now := t0.Add(time.Hour)
	reqs := make([]policy.Request, 1024)
	for i := range reqs {
		k := (i * 7919) % nInt
		reqs[i] = policy.Request{Requester: fmt.Sprintf("inst-%d", k%1000), Service: fmt.Sprintf("svc-%d", k%1000%100), Purpose: "p2", Subject: persons[k%len(persons)]}
	}
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if policy.Decide(d, reqs[i%len(reqs)], now).Allowed {
			allowed++
		}
	}
	b.StopTimer()
	if allowed == 0 {
		b.Fatal("no request was allowed: the benchmark measures only denials")
	}
}

// TestRefreshSeesOtherWriters: a change written to the store by someone
// else (another hub node, an offline apply) reaches the directory.
func TestRefreshSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store().Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	if changed, err := d.Refresh(ctx); err != nil || changed {
		t.Fatalf("refresh without change: %v %v", changed, err)
	}
	n := network()
	n.Participants[0].Status = crossroads.StatusSuspended
	if err := store.Apply(ctx, &crossroads.Network{Participants: n.Participants[:1]}); err != nil { // behind the directory's back
		t.Fatal(err)
	}
	if p, _ := d.Participant("ocmw"); p.Status != crossroads.StatusActive {
		t.Fatal("memory changed before refresh")
	}
	if changed, err := d.Refresh(ctx); err != nil || !changed {
		t.Fatalf("refresh: %v %v", changed, err)
	}
	if p, _ := d.Participant("ocmw"); p.Status != crossroads.StatusSuspended {
		t.Fatalf("suspension not seen after refresh: %s", p.Status)
	}
}

// TestRefreshIntegrationsFollowsOtherNodes: two directories over one store
// (two hub nodes): what one writes, the other decides on after a refresh.
func TestRefreshIntegrationsFollowsOtherNodes(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store().Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	person := personid.Make("850730", 77, false)
	in := crossroads.Integration{Person: person, Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}
	q := policy.Request{Requester: "ocmw", Service: "person", Purpose: "aid", Subject: person}
	now := t0.Add(time.Hour)

	if err := a.Store().PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(b, q, now); got.Allowed {
		t.Fatal("node b allowed before learning of the integration")
	}
	if n, err := b.RefreshIntegrations(ctx); err != nil || n == 0 {
		t.Fatalf("refresh: %d %v", n, err)
	}
	if got := policy.Decide(b, q, now); !got.Allowed {
		t.Fatalf("node b after refresh: %s", got.Reason)
	}
	// An ended file must stop exchanges on every node.
	if err := a.Store().DeleteIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(b, q, now); got.Reason != crossroads.ReasonNoIntegration {
		t.Fatalf("node b after the deletion: %s", got.Reason)
	}
	if n, err := b.RefreshIntegrations(ctx); err != nil || n != 0 {
		t.Fatalf("idle refresh applied %d (%v)", n, err)
	}
	// a replays its own writes harmlessly.
	if _, err := a.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	if got := policy.Decide(a, q, now); got.Reason != crossroads.ReasonNoIntegration {
		t.Fatalf("node a after replaying its own writes: %s", got.Reason)
	}
}

// TestReloadIntegrations: a node that fell behind the change feed's
// retention rebuilds its person directory whole.
func TestReloadIntegrations(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a, _ := Open(ctx, store)
	if err := a.Store().Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	b, _ := Open(ctx, store)
	person := personid.Make("850730", 78, false)
	in := crossroads.Integration{Person: person, Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}
	if err := a.Store().PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The feed is pruned before b reads it: b would never learn of the change.
	if _, err := store.PruneIntegrationChanges(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.RefreshIntegrations(ctx); n != 0 || len(b.Integrations(person, "ocmw")) != 0 {
		t.Fatal("the pruned change reached b through the feed")
	}
	if err := b.ReloadIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Integrations(person, "ocmw"); len(got) != 1 {
		t.Fatalf("after reload: %v", got)
	}
}
