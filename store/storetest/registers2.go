package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// This file holds the wave-2 part of the suite: subject kinds of
// integrations, the registers' version (optimistic concurrency) and the
// person directory's history. The contract:
//   - an integration's Kind is part of its key; the person kind is stored
//     as such and comes back as the empty kind (its canonical form), any
//     other kind exactly; the change feed carries it;
//   - Registers returns the version (> 0); an Apply writing a
//     participant, service or authorisation bumps it by one; an Apply or
//     ChangeIntegration given a non-zero version other than the current
//     one writes nothing and fails with crossroads.ErrStale;
//   - ChangeIntegration records every change in IntegrationHistory, with
//     actor and user; Apply records the integrations it creates or changes
//     (actor empty); history is never pruned with the change feed.

func testIntegrationKinds(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	start, err := s.LastIntegrationChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	person := crossroads.Integration{Person: "0123456749", Participant: "p1", Sector: "17", Capacity: "c", From: t1}
	ent := person
	ent.Kind = crossroads.SubjectEnterprise
	explicit := person
	explicit.Kind = crossroads.SubjectPerson
	mustApply(t, s, &crossroads.Network{Integrations: []crossroads.Integration{person, ent}})
	if err := s.PutIntegration(ctx, explicit); err != nil { // the same key as person
		t.Fatal(err)
	}
	got := integrations(t, s, "p1", "0123456749")
	diff(t, "integrations of two kinds", got, utc(ent, person)) // sorted: kind last, "enterprise" < "person"
	changes, err := s.IntegrationChanges(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, c := range changes {
		kinds[c.Integration.Kind]++
	}
	if kinds[crossroads.SubjectEnterprise] != 1 || kinds[""] < 1 || kinds[crossroads.SubjectPerson] != 0 {
		t.Errorf("change feed kinds = %v (want enterprise once, person as the empty kind)", kinds)
	}
	if err := s.DeleteIntegration(ctx, ent); err != nil {
		t.Fatal(err)
	}
	diff(t, "after deleting the enterprise's", integrations(t, s, "p1", "0123456749"), utc(person))
}

// utc returns ins with their times in UTC, as stores return them.
func utc(ins ...crossroads.Integration) []crossroads.Integration {
	out := make([]crossroads.Integration, len(ins))
	for i, in := range ins {
		in.From, in.To = in.From.UTC(), in.To.UTC()
		out[i] = in
	}
	return out
}

func testVersion(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	v0 := registers(t, s).Version
	if v0 <= 0 {
		t.Fatalf("version of a new store = %d, want > 0", v0)
	}
	mustApply(t, s, &crossroads.Network{Participants: fixture().Participants, Version: v0})
	v1 := registers(t, s).Version
	if v1 <= v0 {
		t.Fatalf("version after an apply = %d, want > %d", v1, v0)
	}
	// Integrations alone do not change the registers' version.
	mustApply(t, s, &crossroads.Network{Integrations: []crossroads.Integration{{Person: "x", Participant: "inst-a", Sector: "1", Capacity: "c", From: t0}}, Version: v1})
	if v := registers(t, s).Version; v != v1 {
		t.Errorf("version after an integrations-only apply = %d, want %d", v, v1)
	}
	// A stale version writes nothing.
	stale := &crossroads.Network{Participants: []crossroads.Participant{{ID: "late", Name: "Late", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}},
		Integrations: []crossroads.Integration{{Person: "y", Participant: "inst-a", Sector: "1", Capacity: "c", From: t0}}, Version: v0}
	if err := s.Apply(ctx, stale); !errors.Is(err, crossroads.ErrStale) || !errors.Is(err, crossroads.ErrConflict) {
		t.Fatalf("Apply at a stale version = %v, want ErrStale", err)
	}
	if n := registers(t, s); len(n.Participants) != len(fixture().Participants) || n.Version != v1 {
		t.Errorf("a stale apply wrote: %d participants, version %d", len(n.Participants), n.Version)
	}
	if got := integrations(t, s, "", "y"); len(got) != 0 {
		t.Errorf("a stale apply wrote integrations: %v", got)
	}
	ev := crossroads.IntegrationEvent{Action: crossroads.IntegrationRegister, Integration: crossroads.Integration{Person: "z", Participant: "inst-a", Sector: "1", Capacity: "c", From: t0}}
	if _, err := s.ChangeIntegration(ctx, ev, v0); !errors.Is(err, crossroads.ErrStale) {
		t.Errorf("ChangeIntegration at a stale version = %v, want ErrStale", err)
	}
	if got := integrations(t, s, "", "z"); len(got) != 0 {
		t.Errorf("a stale change wrote: %v", got)
	}
	if _, err := s.ChangeIntegration(ctx, ev, v1); err != nil {
		t.Errorf("ChangeIntegration at the current version: %v", err)
	}
	// Version 0 is no precondition.
	mustApply(t, s, &crossroads.Network{Participants: stale.Participants})
	if v := registers(t, s).Version; v <= v1 {
		t.Errorf("version after an unconditional apply = %d, want > %d", v, v1)
	}
}

// testVersionConcurrentApplies: applies racing from the same version —
// exactly one wins; the others fail with ErrStale and write nothing.
func testVersionConcurrentApplies(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, fixture())
	v := registers(t, s).Version
	const racers = 4
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := crossroads.Participant{ID: "racer-" + string(rune('a'+i)), Name: "r", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}
			errs[i] = s.Apply(ctx, &crossroads.Network{Participants: []crossroads.Participant{p}, Version: v})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, crossroads.ErrStale):
			t.Errorf("racing apply: %v, want nil or ErrStale", err)
		}
	}
	n := registers(t, s)
	if won != 1 || len(n.Participants) != len(fixture().Participants)+1 || n.Version != v+1 {
		t.Errorf("%d applies won, %d participants, version %d; want 1, %d, %d", won, len(n.Participants), n.Version, len(fixture().Participants)+1, v+1)
	}
}

func testIntegrationHistory(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	in := crossroads.Integration{Kind: crossroads.SubjectEnterprise, Person: "0123456749", Participant: "p3", Sector: "17", Capacity: "employer", From: t1}
	change := func(action string, in crossroads.Integration) crossroads.IntegrationEvent {
		t.Helper()
		ev, err := s.ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: action, Integration: in, Actor: "p3", User: "agent-7"}, 0)
		if err != nil {
			t.Fatalf("ChangeIntegration(%s): %v", action, err)
		}
		if ev.Seq == 0 || ev.At.IsZero() {
			t.Errorf("event not stamped: %+v", ev)
		}
		return ev
	}
	before := time.Now().Add(-time.Second)
	e1 := change(crossroads.IntegrationRegister, in)
	if _, err := s.ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: crossroads.IntegrationRegister, Integration: in, Actor: "p3"}, 0); !errors.Is(err, crossroads.ErrConflict) {
		t.Errorf("registering twice = %v, want ErrConflict", err)
	}
	corrected := in
	corrected.To = t2
	e2 := change(crossroads.IntegrationCorrect, corrected)
	ended := in
	ended.To = t1.Add(time.Hour)
	e3 := change(crossroads.IntegrationEnd, ended)
	absent := in
	absent.Sector = "99"
	if _, err := s.ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: crossroads.IntegrationEnd, Integration: absent}, 0); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("ending an absent file = %v, want ErrNotFound", err)
	}
	bad := in
	bad.To = t0 // before From
	if _, err := s.ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: crossroads.IntegrationCorrect, Integration: bad}, 0); !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("ending before the start = %v, want ErrInvalid", err)
	}
	if _, err := s.ChangeIntegration(ctx, crossroads.IntegrationEvent{Action: "delete", Integration: in}, 0); !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("unknown action = %v, want ErrInvalid", err)
	}
	diff(t, "the file after the changes", integrations(t, s, "p3", in.Person), utc(ended))

	hist, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Kind: crossroads.SubjectEnterprise, Person: in.Person})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history: %+v, want 3 events", hist)
	}
	for i, want := range []crossroads.IntegrationEvent{e1, e2, e3} {
		got := hist[i]
		if got.Seq != want.Seq || got.Action != want.Action || got.Actor != "p3" || got.User != "agent-7" ||
			!got.At.Equal(want.At) || got.At.Before(before) || got.Integration != utc(want.Integration)[0] {
			t.Errorf("history[%d] = %+v, want %+v", i, got, want)
		}
	}
	// Filters and paging.
	if h, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Person: in.Person}); err != nil || len(h) != 0 {
		t.Errorf("history of the person kind with an enterprise's number = %v, %v; want none", h, err)
	}
	if h, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Participant: "p1"}); err != nil || len(h) == 0 {
		t.Errorf("history of p1 (the fixture's applies) = %v, %v", h, err)
	} else {
		for _, ev := range h {
			if ev.Integration.Participant != "p1" || ev.Action != crossroads.IntegrationRegister {
				t.Errorf("history of p1 holds %+v", ev)
			}
		}
	}
	page, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Participant: "p3", Limit: 2})
	if err != nil || len(page) != 2 || page[0].Seq != e1.Seq {
		t.Fatalf("first page = %v, %v", page, err)
	}
	rest, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Participant: "p3", After: page[1].Seq})
	if err != nil || len(rest) != 1 || rest[0].Seq != e3.Seq {
		t.Errorf("second page = %v, %v", rest, err)
	}
	// The change feed's pruning leaves the history.
	if _, err := s.PruneIntegrationChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if h, err := s.IntegrationHistory(ctx, crossroads.HistoryQuery{Participant: "p3"}); err != nil || len(h) != 3 {
		t.Errorf("history after pruning the feed: %d events, %v", len(h), err)
	}
}

// testHistoryOfApply: integrations written by an apply are in the history
// too, as registrations or corrections; unchanged ones are not.
func testHistoryOfApply(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	in := crossroads.Integration{Person: "00000000042", Participant: "p3", Sector: "5", Capacity: "patient", From: t1}
	q := crossroads.HistoryQuery{Person: in.Person}
	mustApply(t, s, &crossroads.Network{Integrations: []crossroads.Integration{in}})
	mustApply(t, s, &crossroads.Network{Integrations: []crossroads.Integration{in}}) // unchanged
	in.To = t2
	mustApply(t, s, &crossroads.Network{Integrations: []crossroads.Integration{in}})
	h, err := s.IntegrationHistory(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Action != crossroads.IntegrationRegister || h[1].Action != crossroads.IntegrationCorrect ||
		h[1].Integration != utc(in)[0] || h[0].Actor != "" {
		t.Errorf("history of applies = %+v", h)
	}
}
