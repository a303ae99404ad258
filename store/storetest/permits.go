package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// permitFixture is a data permit with every term set (issue 14).
func permitFixture() crossroads.Authorisation {
	return crossroads.Authorisation{
		ID: "permit-1", Reference: "HDAB/2026/17", Grantee: "uni", Purposes: []string{"research"},
		ValidFrom: t1, ValidTo: t2, Status: crossroads.StatusActive, Kind: crossroads.KindDataPermit,
		Permit: &crossroads.Permit{
			AccessBody: "hdab",
			Datasets:   []crossroads.PermitDataset{{ID: "admissions", Holder: "hosp", Description: "Admissions 2025"}},
			Members: []crossroads.PermitMember{
				{Participant: "alice", Role: crossroads.RoleResearcher, Name: "Alice"},
				{Participant: "hosp", Role: crossroads.RoleDataHolder},
			},
			Purpose: "Readmission rates", Statistics: []string{crossroads.StatCount, crossroads.StatMean},
			Software: []string{"crossroads-aggregate"},
			Rules:    map[string]any{"threshold": float64(10), "dominanceK": 0.9},
			Budget:   &crossroads.PrivacyBudget{Epsilon: 1, Delta: 1e-6},
			Files:    &crossroads.PermitFiles{Types: []string{"csv"}, MaxBytes: 1 << 20},
			Peers:    []crossroads.PermitPeer{{Hub: "hub-b", URL: "https://hub-b.example:8443"}},
		},
	}
}

// testPermits checks that a data permit's kind and terms round-trip, are
// replaced by a later apply, and go when the authorisation becomes a
// deliberation again; terms without a kind are refused.
func testPermits(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	ps := []crossroads.Participant{
		{ID: "uni", Name: "University", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
		{ID: "hdab", Name: "Access body", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
	}
	p := permitFixture()
	mustApply(t, s, &crossroads.Network{Participants: ps, Authorisations: []crossroads.Authorisation{p}})
	get := func() crossroads.Authorisation {
		t.Helper()
		for _, a := range registers(t, s).Authorisations {
			if a.ID == p.ID {
				return a
			}
		}
		t.Fatal("permit missing")
		return crossroads.Authorisation{}
	}
	got := get()
	if got.Kind != crossroads.KindDataPermit || !reflect.DeepEqual(got.Permit, p.Permit) {
		t.Fatalf("permit came back as %q %+v, want %+v", got.Kind, got.Permit, p.Permit)
	}
	if !got.ValidTo.Equal(t2) {
		t.Errorf("validTo %v", got.ValidTo)
	}
	p.Permit.Members = p.Permit.Members[:1]
	p.ValidTo = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	mustApply(t, s, &crossroads.Network{Authorisations: []crossroads.Authorisation{p}})
	if got := get(); len(got.Permit.Members) != 1 || !got.ValidTo.Equal(p.ValidTo) {
		t.Errorf("updated permit came back as %+v (to %v)", got.Permit.Members, got.ValidTo)
	}
	bad := p
	bad.Kind = ""
	if err := s.Apply(ctx, &crossroads.Network{Authorisations: []crossroads.Authorisation{bad}}); !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("terms without a kind: %v, want ErrInvalid", err)
	}
	if got := get(); got.Kind != crossroads.KindDataPermit {
		t.Errorf("a refused apply changed the permit: %q", got.Kind)
	}
	bad.Permit = nil
	mustApply(t, s, &crossroads.Network{Authorisations: []crossroads.Authorisation{bad}})
	if got := get(); got.Kind != "" || got.Permit != nil {
		t.Errorf("deliberation came back as %q %+v", got.Kind, got.Permit)
	}
}
