// Package storetest is the conformance suite that every backend of
// crossroads.RegisterStore and crossroads.CertificateStore runs (design §5:
// one suite, every backend).
//
// Beyond the interface documentation, the suite fixes this contract:
//   - Registers lists each register sorted by id; times come back in UTC,
//     equal to what was written to the nanosecond; a zero ValidTo or To
//     stays zero; nil and empty lists are interchangeable.
//   - References are kept intact: a service's provider, an authorisation's
//     grantee and services, an integration's participant must exist (in
//     the store or in the same Apply, where participants are written first,
//     then services, authorisations, integrations); an end time must lie
//     after its start. Violations fail with an error wrapping
//     crossroads.ErrInvalid and write nothing.
//   - Integrations are ordered by (person, participant, sector, capacity,
//     from); EachIntegration streams in the same order and lets fn write to
//     the store.
//   - RecordCertificate of an identical certificate is a no-op; of a
//     different one under a known serial, crossroads.ErrConflict.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Store is what a backend under test implements.
type Store = interface {
	crossroads.RegisterStore
	crossroads.CertificateStore
}

// TestRegisterStore runs the suite. open must return a store for t: empty
// the first time it is called with a given t, and — after the previous
// store was closed — the same data when called again with the same t (the
// durability test reopens). Stores that implement io.Closer are closed by
// the suite; open may also register its own cleanup.
func TestRegisterStore(t *testing.T, open func(t *testing.T) interface {
	crossroads.RegisterStore
	crossroads.CertificateStore
}) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) Store)
	}{
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"Upsert", testUpsert},
		{"ApplyAtomicReference", testApplyAtomicReference},
		{"ApplyAtomicIntegration", testApplyAtomicIntegration},
		{"ApplyNil", testApplyNil},
		{"IntegrationFilters", testIntegrationFilters},
		{"IntegrationPutDelete", testIntegrationPutDelete},
		{"IntegrationRejects", testIntegrationRejects},
		{"IntegrationChanges", testIntegrationChanges},
		{"EachIntegration", testEachIntegration},
		{"IntegrationKinds", testIntegrationKinds},
		{"Version", testVersion},
		{"VersionConcurrentApplies", testVersionConcurrentApplies},
		{"IntegrationHistory", testIntegrationHistory},
		{"HistoryOfApply", testHistoryOfApply},
		{"Certificates", testCertificates},
		{"RevocationCursor", testRevocationCursor},
		{"Durability", testDurability},
		{"Concurrent", testConcurrent},
		{"Permits", testPermits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, func(t *testing.T) Store {
				s := open(t)
				if c, ok := s.(io.Closer); ok {
					t.Cleanup(func() { c.Close() })
				}
				return s
			})
		})
	}
}

var ctx = context.Background()

// Fixed times with nanoseconds and a non-UTC zone, to check exact round trips.
var (
	brussels = time.FixedZone("CET", 3600)
	t0       = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t1       = time.Date(2025, 3, 15, 9, 30, 1, 123456789, brussels)
	t2       = time.Date(2027, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func fixture() *crossroads.Network {
	return &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: "rsz", Name: "Employment register — RSZ/ONSS", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive, IncidentContact: "soc@rsz.example"},
			{ID: "inst-a", Name: "Institution A", Kind: crossroads.KindInstitution, Status: crossroads.StatusSuspended},
			{ID: "rr", Name: "Population register", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
		},
		Services: []crossroads.Service{
			{ID: "rr.person", Provider: "rr", BaseURL: "https://rr.example/v1", Description: "Identity and address",
				Classification: 3, Fields: []string{"/name", "/address", "/a~1b"}, ConcernsPerson: true, Subject: crossroads.SubjectPerson,
				Operations: []crossroads.Operation{
					{ID: "read", Method: "GET", Path: "/persons/{subject}", Query: []string{"lang", "at"}, Fields: []string{"/name"}},
					{ID: "correct-address", Method: "PUT", Path: "/persons/{subject}/address", Body: "application/json"},
				}},
			{ID: "rsz.employer", Provider: "rsz", BaseURL: "https://rsz.example/employers", Classification: 0, Subject: crossroads.SubjectEnterprise,
				Operations: []crossroads.Operation{{ID: "identify", Method: "GET", Path: "/{subject}/year/{year:int}"}}},
		},
		Authorisations: []crossroads.Authorisation{
			{ID: "csss-24-123", Reference: "CSSS/24/123", Grantee: "inst-a",
				Services: []string{"rr.person", "rsz.employer"}, Purposes: []string{"benefit.check", "fraud"},
				Fields: map[string][]string{"rr.person": {"/name", "/address/street"}, "rsz.employer": {crossroads.WholePayload}},
				Capacities: []crossroads.Capacity{{Sector: "17", Code: "beneficiary"}, {Sector: "17", Code: "applicant"},
					{Sector: "17", Code: "employer", Kind: crossroads.SubjectEnterprise}},
				Operations: map[string][]string{"rr.person": {"read", "correct-address"}, "rsz.employer": {}},
				ValidFrom:  t1, ValidTo: t2, Status: crossroads.StatusActive,
				Limits: &crossroads.Limits{RatePerSecond: 12.5, Burst: 20, MaxConcurrent: 4}},
			{ID: "a-open", Reference: "ref", Grantee: "inst-a", Services: []string{"rr.person"}, Purposes: []string{"p"},
				ValidFrom: t0, Status: crossroads.StatusRevoked, Limits: &crossroads.Limits{}},
		},
		Integrations: []crossroads.Integration{
			{Person: "85073003328", Participant: "inst-a", Sector: "17", Capacity: "beneficiary", From: t1, To: t2},
			{Person: "85073003328", Participant: "inst-a", Sector: "17", Capacity: "applicant", From: t0},
			{Kind: crossroads.SubjectEnterprise, Person: "0123456749", Participant: "inst-a", Sector: "17", Capacity: "employer", From: t1},
		},
	}
}

// norm makes a comparable copy: sorted by id, times in UTC, empty lists nil.
func norm(n *crossroads.Network) *crossroads.Network {
	out := &crossroads.Network{}
	out.Participants = append(out.Participants, n.Participants...)
	for _, s := range n.Services {
		s.Fields = nilIfEmpty(s.Fields)
		ops := make([]crossroads.Operation, 0, len(s.Operations))
		for _, o := range s.Operations {
			o.Query, o.Fields = nilIfEmpty(o.Query), nilIfEmpty(o.Fields)
			ops = append(ops, o)
		}
		s.Operations = nilIfEmpty(ops)
		out.Services = append(out.Services, s)
	}
	for _, a := range n.Authorisations {
		a.Services = nilIfEmpty(a.Services)
		a.Purposes = nilIfEmpty(a.Purposes)
		a.Capacities = nilIfEmpty(a.Capacities)
		var f map[string][]string
		for k, v := range a.Fields {
			if f == nil {
				f = map[string][]string{}
			}
			f[k] = nilIfEmpty(v)
		}
		a.Fields = f
		var ops map[string][]string
		for k, v := range a.Operations {
			if ops == nil {
				ops = map[string][]string{}
			}
			ops[k] = nilIfEmpty(v)
		}
		a.Operations = ops
		a.ValidFrom, a.ValidTo = a.ValidFrom.UTC(), a.ValidTo.UTC()
		if a.Limits != nil {
			l := *a.Limits
			a.Limits = &l
		}
		out.Authorisations = append(out.Authorisations, a)
	}
	for _, in := range n.Integrations {
		in.From, in.To = in.From.UTC(), in.To.UTC()
		out.Integrations = append(out.Integrations, in)
	}
	sort.Slice(out.Participants, func(i, j int) bool { return out.Participants[i].ID < out.Participants[j].ID })
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].ID < out.Services[j].ID })
	sort.Slice(out.Authorisations, func(i, j int) bool { return out.Authorisations[i].ID < out.Authorisations[j].ID })
	sortIntegrations(out.Integrations)
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func integrationLess(a, b crossroads.Integration) int {
	for _, c := range [][2]string{{a.Person, b.Person}, {a.Participant, b.Participant}, {a.Sector, b.Sector}, {a.Capacity, b.Capacity}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	if c := a.From.Compare(b.From); c != 0 {
		return c
	}
	return strings.Compare(kindKey(a.Kind), kindKey(b.Kind))
}

func kindKey(k string) string {
	if k == "" {
		return crossroads.SubjectPerson
	}
	return k
}

func sortIntegrations(s []crossroads.Integration) { slices.SortFunc(s, integrationLess) }

func mustApply(t *testing.T, s Store, n *crossroads.Network) {
	t.Helper()
	if err := s.Apply(ctx, n); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func registers(t *testing.T, s Store) *crossroads.Network {
	t.Helper()
	n, err := s.Registers(ctx)
	if err != nil {
		t.Fatalf("Registers: %v", err)
	}
	if n == nil {
		t.Fatal("Registers returned nil network")
	}
	return n
}

func integrations(t *testing.T, s Store, participant, person string) []crossroads.Integration {
	t.Helper()
	got, err := s.Integrations(ctx, participant, person)
	if err != nil {
		t.Fatalf("Integrations(%q, %q): %v", participant, person, err)
	}
	return got
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func testEmpty(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	n := registers(t, s)
	if len(n.Participants)+len(n.Services)+len(n.Authorisations)+len(n.Integrations) != 0 {
		t.Errorf("new store not empty: %+v", n)
	}
	if got := integrations(t, s, "", ""); len(got) != 0 {
		t.Errorf("Integrations on new store: %v", got)
	}
	certs, err := s.Certificates(ctx)
	if err != nil || len(certs) != 0 {
		t.Errorf("Certificates on new store = %v, %v", certs, err)
	}
	serials, next, err := s.RevokedSince(ctx, 0)
	if err != nil || len(serials) != 0 || next != 0 {
		t.Errorf("RevokedSince(0) on new store = %v, %d, %v; want none, 0", serials, next, err)
	}
}

func testRoundTrip(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	in := fixture()
	mustApply(t, s, in)
	got := registers(t, s)
	if len(got.Integrations) != 0 {
		t.Errorf("Registers returned integrations: %v", got.Integrations)
	}
	want := norm(fixture())
	want.Integrations = nil
	diff(t, "participants", got.Participants, want.Participants)
	diff(t, "services", norm(got).Services, want.Services)
	diff(t, "authorisations", norm(got).Authorisations, want.Authorisations)
	// Exactness beyond normalisation.
	for _, a := range got.Authorisations {
		if a.ValidFrom.Location() != time.UTC || (!a.ValidTo.IsZero() && a.ValidTo.Location() != time.UTC) {
			t.Errorf("authorisation %s: times not in UTC: %v %v", a.ID, a.ValidFrom, a.ValidTo)
		}
		switch a.ID {
		case "a-open":
			if a.ValidTo != (time.Time{}) {
				t.Errorf("open-ended ValidTo came back as %v", a.ValidTo)
			}
			if a.Limits == nil || *a.Limits != (crossroads.Limits{}) {
				t.Errorf("zero, non-nil limits came back as %+v", a.Limits)
			}
		case "csss-24-123":
			if !a.ValidFrom.Equal(t1) || a.ValidFrom.Nanosecond() != 123456789 || !a.ValidTo.Equal(t2) {
				t.Errorf("validity came back as %v – %v, want %v – %v", a.ValidFrom, a.ValidTo, t1, t2)
			}
		}
	}
	gotInts := integrations(t, s, "", "")
	diff(t, "integrations", gotInts, norm(fixture()).Integrations)
	for _, in := range gotInts {
		if in.Capacity == "applicant" && in.To != (time.Time{}) {
			t.Errorf("open-ended To came back as %v", in.To)
		}
	}
	// The zero time itself must round-trip where a time is required.
	z := crossroads.Integration{Person: "p-zero", Participant: "inst-a", Sector: "1", Capacity: "c"}
	if err := s.PutIntegration(ctx, z); err != nil {
		t.Fatalf("PutIntegration with zero From: %v", err)
	}
	if got := integrations(t, s, "", "p-zero"); len(got) != 1 || got[0] != z {
		t.Errorf("zero-time integration came back as %+v, want %+v", got, z)
	}
}

func testUpsert(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, fixture())
	up := &crossroads.Network{
		Participants: []crossroads.Participant{{ID: "inst-a", Name: "Institution A (renamed)", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}},
		Services: []crossroads.Service{{ID: "rr.person", Provider: "rr", BaseURL: "https://rr.example/v2", Classification: 4,
			Fields: []string{"/name"}, ConcernsPerson: false}},
		Authorisations: []crossroads.Authorisation{{ID: "csss-24-123", Reference: "CSSS/24/123bis", Grantee: "inst-a",
			Services: []string{"rsz.employer"}, Purposes: []string{"fraud"}, ValidFrom: t0, Status: crossroads.StatusSuspended}},
		Integrations: []crossroads.Integration{{Person: "85073003328", Participant: "inst-a", Sector: "17", Capacity: "applicant", From: t0, To: t2}},
	}
	mustApply(t, s, up)
	f := fixture()
	want := norm(&crossroads.Network{
		Participants:   []crossroads.Participant{f.Participants[0], up.Participants[0], f.Participants[2]},
		Services:       []crossroads.Service{up.Services[0], f.Services[1]},
		Authorisations: []crossroads.Authorisation{f.Authorisations[1], up.Authorisations[0]},
	})
	got := norm(registers(t, s))
	diff(t, "participants after upsert", got.Participants, want.Participants)
	diff(t, "services after upsert", got.Services, want.Services)
	diff(t, "authorisations after upsert", got.Authorisations, want.Authorisations)
	ints := integrations(t, s, "inst-a", "85073003328")
	if len(ints) != 2 {
		t.Fatalf("want 2 integrations after upsert, got %v", ints)
	}
	for _, in := range ints {
		if in.Capacity == "applicant" && !in.To.Equal(t2) {
			t.Errorf("integration To not replaced: %+v", in)
		}
	}
}

// testApplyAtomicReference: the batch updates an existing participant,
// adds new ones, then fails on a service whose provider does not exist.
// Nothing may remain.
func testApplyAtomicReference(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, fixture())
	before := registers(t, s)
	beforeInts := integrations(t, s, "", "")
	bad := &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: "inst-a", Name: "changed", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "new-1", Name: "New 1", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "new-2", Name: "New 2", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
		},
		Services: []crossroads.Service{
			{ID: "new-svc", Provider: "new-2", BaseURL: "https://x.example", Classification: 1},
			{ID: "bad-svc", Provider: "no-such-participant", BaseURL: "https://y.example", Classification: 1},
			{ID: "new-svc-2", Provider: "new-2", BaseURL: "https://z.example", Classification: 1},
		},
		Integrations: []crossroads.Integration{{Person: "x", Participant: "new-1", Sector: "1", Capacity: "c", From: t0}},
	}
	err := s.Apply(ctx, bad)
	if err == nil {
		t.Fatal("Apply with a service of an unknown provider succeeded")
	}
	if !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("Apply error %v does not wrap ErrInvalid", err)
	}
	diff(t, "registers after failed Apply", registers(t, s), before)
	diff(t, "integrations after failed Apply", integrations(t, s, "", ""), beforeInts)

	// Same for an authorisation naming an unknown service.
	bad2 := &crossroads.Network{
		Participants:   []crossroads.Participant{{ID: "new-3", Name: "New 3", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}},
		Authorisations: []crossroads.Authorisation{{ID: "x", Grantee: "new-3", Services: []string{"rr.person", "no-such-service"}, ValidFrom: t0, Status: crossroads.StatusActive}},
	}
	if err := s.Apply(ctx, bad2); !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("Apply with an unknown service: err = %v, want ErrInvalid", err)
	}
	diff(t, "registers after failed Apply", registers(t, s), before)
}

// testApplyAtomicIntegration: the last entry of a batch breaks a check
// (end before start); every earlier entry of every kind must be undone.
func testApplyAtomicIntegration(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	n := fixture()
	n.Integrations = append(n.Integrations, crossroads.Integration{Person: "y", Participant: "rr", Sector: "1", Capacity: "c", From: t2, To: t1})
	if err := s.Apply(ctx, n); !errors.Is(err, crossroads.ErrInvalid) {
		t.Fatalf("Apply with To before From: err = %v, want ErrInvalid", err)
	}
	got := registers(t, s)
	if len(got.Participants)+len(got.Services)+len(got.Authorisations) != 0 {
		t.Errorf("failed Apply left entries: %+v", got)
	}
	if ints := integrations(t, s, "", ""); len(ints) != 0 {
		t.Errorf("failed Apply left integrations: %v", ints)
	}
	// And the store still works afterwards.
	mustApply(t, s, fixture())
	if got := registers(t, s); len(got.Participants) != 3 {
		t.Errorf("Apply after a failed Apply: %d participants, want 3", len(got.Participants))
	}
}

func testApplyNil(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	if err := s.Apply(ctx, &crossroads.Network{}); err != nil {
		t.Errorf("Apply(empty) = %v", err)
	}
	if err := s.Apply(ctx, nil); err != nil {
		t.Errorf("Apply(nil) = %v", err)
	}
}

func directoryFixture() *crossroads.Network {
	n := &crossroads.Network{}
	for _, p := range []string{"p1", "p2", "p3"} {
		n.Participants = append(n.Participants, crossroads.Participant{ID: p, Name: p, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
	}
	for i, person := range []string{"00000000001", "00000000002", "00000000003"} {
		for _, p := range []string{"p1", "p2"} {
			n.Integrations = append(n.Integrations,
				crossroads.Integration{Person: person, Participant: p, Sector: "17", Capacity: "beneficiary", From: t0.AddDate(0, i, 0)},
				crossroads.Integration{Person: person, Participant: p, Sector: "17", Capacity: "beneficiary", From: t0.AddDate(1, i, 0), To: t2},
			)
		}
	}
	return n
}

func testIntegrationFilters(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	n := directoryFixture()
	mustApply(t, s, n)
	filter := func(participant, person string) []crossroads.Integration {
		var out []crossroads.Integration
		for _, in := range n.Integrations {
			if (participant == "" || in.Participant == participant) && (person == "" || in.Person == person) {
				out = append(out, in)
			}
		}
		sortIntegrations(out)
		return out
	}
	for _, c := range []struct{ participant, person string }{
		{"", ""}, {"p1", ""}, {"p2", ""}, {"", "00000000002"}, {"p1", "00000000003"}, {"p3", ""}, {"", "99999999999"}, {"p3", "00000000001"},
	} {
		got := integrations(t, s, c.participant, c.person)
		diff(t, fmt.Sprintf("Integrations(%q, %q)", c.participant, c.person), norm(&crossroads.Network{Integrations: got}).Integrations, filter(c.participant, c.person))
		if !slices.IsSortedFunc(got, integrationLess) {
			t.Errorf("Integrations(%q, %q) not sorted: %v", c.participant, c.person, got)
		}
	}
}

func testIntegrationPutDelete(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	in := crossroads.Integration{Person: "00000000009", Participant: "p3", Sector: "5", Capacity: "patient", From: t1}
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatalf("PutIntegration: %v", err)
	}
	in.To = t2
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatalf("PutIntegration (replace): %v", err)
	}
	got := integrations(t, s, "p3", "")
	if len(got) != 1 || !got[0].To.Equal(t2) || !got[0].From.Equal(t1) {
		t.Fatalf("after replace: %+v", got)
	}
	// Same key but another start is another integration.
	in2 := in
	in2.From = t0
	if err := s.PutIntegration(ctx, in2); err != nil {
		t.Fatalf("PutIntegration: %v", err)
	}
	if got := integrations(t, s, "p3", "00000000009"); len(got) != 2 {
		t.Fatalf("want 2 integrations differing by From, got %v", got)
	}
	del := in
	del.To = time.Time{} // To is not part of the key
	if err := s.DeleteIntegration(ctx, del); err != nil {
		t.Fatalf("DeleteIntegration: %v", err)
	}
	if got := integrations(t, s, "p3", ""); len(got) != 1 || !got[0].From.Equal(t0) {
		t.Errorf("after delete: %+v", got)
	}
	if err := s.DeleteIntegration(ctx, del); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("second DeleteIntegration = %v, want ErrNotFound", err)
	}
	if err := s.DeleteIntegration(ctx, crossroads.Integration{Person: "nobody", Participant: "p1", Sector: "1", Capacity: "c", From: t0}); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("DeleteIntegration of unknown = %v, want ErrNotFound", err)
	}
}

// testIntegrationChanges: every write to the person directory, by any
// path, appears in the change feed in order, with what it changed.
func testIntegrationChanges(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	start, err := s.LastIntegrationChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := crossroads.Integration{Person: "00000000009", Participant: "p3", Sector: "5", Capacity: "patient", From: t1}
	if err := s.PutIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	updated := in
	updated.To = t2
	if err := s.Apply(ctx, &crossroads.Network{Integrations: []crossroads.Integration{updated}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	changes, err := s.IntegrationChanges(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		deleted bool
		to      time.Time
	}
	want := []step{{false, time.Time{}}, {true, time.Time{}}, {false, t2}, {true, t2}} // insert; update = old out, new in; delete
	if len(changes) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(changes), len(want), changes)
	}
	for i, c := range changes {
		if i > 0 && c.Seq <= changes[i-1].Seq {
			t.Fatalf("sequence not increasing: %+v", changes)
		}
		if c.Deleted != want[i].deleted || !c.Integration.To.Equal(want[i].to) || !c.Integration.From.Equal(t1) ||
			c.Integration.Person != in.Person || c.Integration.Participant != in.Participant {
			t.Errorf("change %d = %+v, want deleted=%v to=%v", i, c, want[i].deleted, want[i].to)
		}
	}
	last, err := s.LastIntegrationChange(ctx)
	if err != nil || last != changes[len(changes)-1].Seq {
		t.Fatalf("LastIntegrationChange = %d, %v; want %d", last, err, changes[len(changes)-1].Seq)
	}
	if more, err := s.IntegrationChanges(ctx, last, 100); err != nil || len(more) != 0 {
		t.Fatalf("changes after the last: %v %v", more, err)
	}
	if page, err := s.IntegrationChanges(ctx, start, 2); err != nil || len(page) != 2 || page[0].Seq != changes[0].Seq {
		t.Fatalf("limit: %v %v", page, err)
	}
	// Pruning drops what was recorded before the given time, and only that.
	if n, err := s.PruneIntegrationChanges(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning recent changes: %d %v", n, err)
	}
	if n, err := s.PruneIntegrationChanges(ctx, time.Now().Add(time.Hour)); err != nil || n < int64(len(changes)) {
		t.Fatalf("pruning everything: %d %v", n, err)
	}
	if rest, err := s.IntegrationChanges(ctx, 0, 100); err != nil || len(rest) != 0 {
		t.Fatalf("after pruning: %v %v", rest, err)
	}
}

func testIntegrationRejects(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	for name, in := range map[string]crossroads.Integration{
		"unknown participant": {Person: "00000000001", Participant: "nope", Sector: "1", Capacity: "c", From: t0},
		"to before from":      {Person: "00000000001", Participant: "p1", Sector: "1", Capacity: "c", From: t2, To: t1},
		"to equals from":      {Person: "00000000001", Participant: "p1", Sector: "1", Capacity: "c", From: t1, To: t1},
		"empty person":        {Participant: "p1", Sector: "1", Capacity: "c", From: t0},
		"empty sector":        {Person: "00000000001", Participant: "p1", Capacity: "c", From: t0},
	} {
		if err := s.PutIntegration(ctx, in); !errors.Is(err, crossroads.ErrInvalid) {
			t.Errorf("PutIntegration(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if got := integrations(t, s, "", ""); len(got) != len(directoryFixture().Integrations) {
		t.Errorf("rejected integrations were written: %d rows", len(got))
	}
}

func testEachIntegration(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	const n = 5000
	batch := &crossroads.Network{}
	for i := range n {
		batch.Integrations = append(batch.Integrations, crossroads.Integration{
			Person: fmt.Sprintf("%011d", 1000+i), Participant: []string{"p1", "p2", "p3"}[i%3], Sector: "17", Capacity: "beneficiary", From: t0.Add(time.Duration(i) * time.Nanosecond)})
	}
	mustApply(t, s, batch)
	total := n + len(directoryFixture().Integrations)
	count := 0
	var prev *crossroads.Integration
	// fn writes to the store while the stream is open: the stream must not
	// hold the store's writer.
	err := s.EachIntegration(ctx, func(in crossroads.Integration) error {
		if prev != nil && integrationLess(*prev, in) >= 0 {
			return fmt.Errorf("out of order: %+v then %+v", *prev, in)
		}
		prev = &in
		if count == 10 {
			if err := s.PutIntegration(ctx, crossroads.Integration{Person: "zz-written-during-stream", Participant: "p1", Sector: "1", Capacity: "c", From: t0}); err != nil {
				return fmt.Errorf("write during stream: %w", err)
			}
		}
		count++
		return nil
	})
	if err != nil {
		t.Fatalf("EachIntegration: %v", err)
	}
	if count != total && count != total+1 {
		t.Errorf("EachIntegration visited %d, want %d", count, total)
	}
	stop := errors.New("stop")
	count = 0
	err = s.EachIntegration(ctx, func(crossroads.Integration) error {
		count++
		if count == 100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || count != 100 {
		t.Errorf("EachIntegration with fn error: err = %v after %d calls, want stop after 100", err, count)
	}
	cctx, cancel := context.WithCancel(ctx)
	count = 0
	err = s.EachIntegration(cctx, func(crossroads.Integration) error {
		if count++; count == 5 {
			cancel()
		}
		return nil
	})
	if err == nil || count >= total {
		t.Errorf("EachIntegration with cancelled context: err = %v after %d calls", err, count)
	}
}

func cert(serial, participant string) crossroads.Certificate {
	return crossroads.Certificate{Serial: serial, Participant: participant, NotBefore: t1, NotAfter: t2,
		PEM: "-----BEGIN CERTIFICATE-----\nMIIB" + serial + "\n-----END CERTIFICATE-----\n"}
}

func testCertificates(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	for _, c := range []crossroads.Certificate{cert("0b", "inst-a"), cert("0a", "rr"), cert("ff01", "inst-a")} {
		if err := s.RecordCertificate(ctx, c); err != nil {
			t.Fatalf("RecordCertificate(%s): %v", c.Serial, err)
		}
	}
	if err := s.RecordCertificate(ctx, cert("0a", "rr")); err != nil {
		t.Errorf("recording the same certificate again = %v, want nil", err)
	}
	if err := s.RecordCertificate(ctx, cert("0a", "someone-else")); !errors.Is(err, crossroads.ErrConflict) {
		t.Errorf("recording another certificate under a known serial = %v, want ErrConflict", err)
	}
	if err := s.RecordCertificate(ctx, cert("", "x")); err == nil {
		t.Error("RecordCertificate with an empty serial succeeded")
	}
	revokedAt := time.Date(2025, 6, 1, 12, 0, 0, 42, brussels)
	if err := s.RevokeCertificate(ctx, "0b", revokedAt, "keyCompromise"); err != nil {
		t.Fatalf("RevokeCertificate: %v", err)
	}
	if err := s.RevokeCertificate(ctx, "0b", revokedAt.Add(time.Hour), "superseded"); err != nil {
		t.Errorf("revoking twice = %v, want nil", err)
	}
	if err := s.RevokeCertificate(ctx, "0c", revokedAt, "x"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("revoking an unknown serial = %v, want ErrNotFound", err)
	}
	got, err := s.Certificates(ctx)
	if err != nil {
		t.Fatalf("Certificates: %v", err)
	}
	want := []crossroads.Certificate{cert("0a", "rr"), cert("0b", "inst-a"), cert("ff01", "inst-a")}
	want[1].RevokedAt, want[1].RevocationReason = revokedAt, "keyCompromise"
	for i := range want {
		want[i].NotBefore, want[i].NotAfter, want[i].RevokedAt = want[i].NotBefore.UTC(), want[i].NotAfter.UTC(), want[i].RevokedAt.UTC()
	}
	want[0].RevokedAt, want[2].RevokedAt = time.Time{}, time.Time{}
	diff(t, "certificates", got, want)
}

func testRevocationCursor(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	for _, serial := range []string{"01", "02", "03", "04"} {
		if err := s.RecordCertificate(ctx, cert(serial, "p")); err != nil {
			t.Fatal(err)
		}
	}
	revoke := func(serial string) {
		t.Helper()
		if err := s.RevokeCertificate(ctx, serial, t1, "cessationOfOperation"); err != nil {
			t.Fatalf("RevokeCertificate(%s): %v", serial, err)
		}
	}
	since := func(cursor int64, want ...string) int64 {
		t.Helper()
		serials, next, err := s.RevokedSince(ctx, cursor)
		if err != nil {
			t.Fatalf("RevokedSince(%d): %v", cursor, err)
		}
		if !slices.Equal(serials, want) {
			t.Errorf("RevokedSince(%d) = %v, want %v", cursor, serials, want)
		}
		if len(want) == 0 && next != cursor {
			t.Errorf("RevokedSince(%d) with nothing new moved the cursor to %d", cursor, next)
		}
		if len(want) > 0 && next <= cursor {
			t.Errorf("RevokedSince(%d) returned cursor %d, want greater", cursor, next)
		}
		return next
	}
	c0 := since(0)
	revoke("03")
	c1 := since(c0, "03")
	since(c1)
	revoke("01")
	revoke("03") // again: no new entry
	revoke("04")
	c2 := since(c1, "01", "04")
	since(c2)
	since(0, "03", "01", "04")
	since(c0, "03", "01", "04")
}

func testDurability(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, fixture())
	mustApply(t, s, directoryFixture())
	if err := s.RecordCertificate(ctx, cert("0a", "rr")); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCertificate(ctx, "0a", t1, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	wantRegs := registers(t, s)
	wantInts := integrations(t, s, "", "")
	wantCerts, err := s.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, wantNext, err := s.RevokedSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := s.(io.Closer)
	if !ok {
		t.Skip("store has no Close; durability is the backend's own test")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t)
	diff(t, "registers after reopen", registers(t, s), wantRegs)
	diff(t, "integrations after reopen", integrations(t, s, "", ""), wantInts)
	certs, err := s.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "certificates after reopen", certs, wantCerts)
	serials, next, err := s.RevokedSince(ctx, 0)
	if err != nil || next != wantNext || !slices.Equal(serials, []string{"0a"}) {
		t.Errorf("RevokedSince(0) after reopen = %v, %d, %v; want [0a], %d", serials, next, err, wantNext)
	}
	// The revocation sequence continues after a reopen.
	if err := s.RecordCertificate(ctx, cert("0b", "rr")); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCertificate(ctx, "0b", t1, "x"); err != nil {
		t.Fatal(err)
	}
	if serials, next2, err := s.RevokedSince(ctx, next); err != nil || next2 <= next || !slices.Equal(serials, []string{"0b"}) {
		t.Errorf("RevokedSince after reopen = %v, %d, %v", serials, next2, err)
	}
}

// testConcurrent: writers and readers at once must neither fail (busy,
// locked) nor lose writes.
func testConcurrent(t *testing.T, open func(*testing.T) Store) {
	s := open(t)
	mustApply(t, s, directoryFixture())
	const workers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				in := crossroads.Integration{Person: fmt.Sprintf("c%d-%d", w, i), Participant: "p1", Sector: "1", Capacity: "c", From: t0}
				if err := s.PutIntegration(ctx, in); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Integrations(ctx, "p1", ""); err != nil {
					errs <- err
					return
				}
				if _, err := s.Registers(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := len(directoryFixture().Integrations)/2 + workers*each // p1 has half of the fixture
	if got := integrations(t, s, "p1", ""); len(got) != want {
		t.Errorf("after concurrent writes: %d integrations of p1, want %d", len(got), want)
	}
}
