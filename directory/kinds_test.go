package directory

import (
	"context"
	"errors"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

// TestSubjectKinds: integrations are indexed by crossroads.SubjectKey, so
// an enterprise's file is found under its key and never under a person's
// id that happens to be spelled the same; reloads and the change feed keep
// the kind.
func TestSubjectKinds(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	n := network()
	n.Authorisations[0].Capacities = append(n.Authorisations[0].Capacities, crossroads.Capacity{Sector: "s", Code: "employer", Kind: crossroads.SubjectEnterprise})
	ent := crossroads.Integration{Kind: crossroads.SubjectEnterprise, Person: "0403170701", Participant: "ocmw", Sector: "s", Capacity: "employer", From: t0}
	n.Integrations = []crossroads.Integration{ent}
	if err := d.Store().Apply(ctx, n); err != nil {
		t.Fatal(err)
	}
	check := func(d *Directory, when string) {
		t.Helper()
		if got := d.Integrations(crossroads.SubjectKey(crossroads.SubjectEnterprise, ent.Person), "ocmw"); len(got) != 1 || got[0].Kind != crossroads.SubjectEnterprise {
			t.Errorf("%s: enterprise's files = %v", when, got)
		}
		if got := d.Integrations(ent.Person, "ocmw"); len(got) != 0 {
			t.Errorf("%s: the enterprise's file found under a person's id: %v", when, got)
		}
	}
	check(d, "after apply")
	if err := d.ReloadIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	check(d, "after reload")
	other, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	check(other, "another node at start")
	// A change made through one node reaches the other through the feed.
	ended := ent
	ended.To = t0.AddDate(0, 1, 0)
	if _, err := d.Store().ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: crossroads.IntegrationEnd, Integration: ended, Actor: "ocmw"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := other.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	if got := other.Integrations(crossroads.SubjectKey(crossroads.SubjectEnterprise, ent.Person), "ocmw"); len(got) != 1 || !got[0].To.Equal(ended.To) {
		t.Errorf("other node after the feed: %v", got)
	}

	cur := d.Current()
	if !cur.HoldsCapacity("ocmw", crossroads.Capacity{Sector: "s", Code: "employer", Kind: crossroads.SubjectEnterprise}) ||
		cur.HoldsCapacity("ocmw", crossroads.Capacity{Sector: "s", Code: "employer"}) || !cur.HoldsCapacity("ocmw", crossroads.Capacity{Sector: "s", Code: "c"}) {
		t.Error("HoldsCapacity does not follow the capacities' kinds")
	}
	if cur.Version() == 0 {
		t.Error("snapshot without a version")
	}
}

// TestStaleWriteReloads: a write refused because another writer changed
// the registers makes the directory read them again, so that a retry
// validates against what is there.
func TestStaleWriteReloads(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store().Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	stale := b.Current().Version()
	n := &crossroads.Network{Participants: network().Participants[:1], Version: stale}
	if err := b.Store().Apply(ctx, n); !errors.Is(err, crossroads.ErrStale) {
		t.Fatalf("apply at a stale version = %v", err)
	}
	if b.Current().Version() == stale || len(b.Snapshot().Services) != 1 {
		t.Errorf("the directory did not reload after a stale write: version %d", b.Current().Version())
	}
}
