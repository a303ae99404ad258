package policy

import (
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// view is a map-backed View for unit tests of the pure decision.
type view struct {
	participants map[string]*crossroads.Participant
	services     map[string]*crossroads.Service
	auths        []*crossroads.Authorisation
	integrations []crossroads.Integration
}

func (v *view) Participant(id string) (*crossroads.Participant, bool) {
	p, ok := v.participants[id]
	return p, ok
}
func (v *view) Service(id string) (*crossroads.Service, bool) { s, ok := v.services[id]; return s, ok }
func (v *view) Authorisations(grantee, service string) []*crossroads.Authorisation {
	var out []*crossroads.Authorisation
	for _, a := range v.auths {
		if a.Grantee != grantee {
			continue
		}
		for _, s := range a.Services {
			if s == service {
				out = append(out, a)
			}
		}
	}
	return out
}
func (v *view) Integrations(person, participant string) []crossroads.Integration {
	var out []crossroads.Integration
	for _, in := range v.integrations {
		if in.Person == person && in.Participant == participant {
			out = append(out, in)
		}
	}
	return out
}

var (
	now  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	past = now.AddDate(-1, 0, 0)
	soon = now.AddDate(1, 0, 0)
)

func baseView() *view {
	return &view{
		participants: map[string]*crossroads.Participant{
			"ocmw":    {ID: "ocmw", Status: crossroads.StatusActive},
			"susp":    {ID: "susp", Status: crossroads.StatusSuspended},
			"rr":      {ID: "rr", Status: crossroads.StatusActive},
			"oldprov": {ID: "oldprov", Status: crossroads.StatusSuspended},
		},
		services: map[string]*crossroads.Service{
			"person":  {ID: "person", Provider: "rr", ConcernsPerson: true},
			"stats":   {ID: "stats", Provider: "rr"},
			"retired": {ID: "retired", Provider: "oldprov", ConcernsPerson: true},
		},
		auths: []*crossroads.Authorisation{{
			ID: "a1", Grantee: "ocmw", Services: []string{"person", "stats", "retired"}, Purposes: []string{"social-aid"},
			Fields:     map[string][]string{"person": {"/name"}},
			Capacities: []crossroads.Capacity{{Sector: "17", Code: "beneficiary"}},
			ValidFrom:  past, ValidTo: soon, Status: crossroads.StatusActive,
		}},
		integrations: []crossroads.Integration{
			{Person: "p1", Participant: "ocmw", Sector: "17", Capacity: "beneficiary", From: past},
			{Person: "p2", Participant: "ocmw", Sector: "99", Capacity: "other", From: past},
			{Person: "p3", Participant: "ocmw", Sector: "17", Capacity: "beneficiary", From: past, To: now},
		},
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(v *view)
		req    Request
		want   crossroads.Reason
	}{
		{"allowed", nil, Request{"ocmw", "person", "social-aid", "p1"}, crossroads.ReasonAllowed},
		{"allowed without person", nil, Request{"ocmw", "stats", "social-aid", ""}, crossroads.ReasonAllowed},
		{"unknown participant", nil, Request{"nobody", "person", "social-aid", "p1"}, crossroads.ReasonUnknownParticipant},
		{"participant suspended", nil, Request{"susp", "person", "social-aid", "p1"}, crossroads.ReasonParticipantSuspended},
		{"unknown service", nil, Request{"ocmw", "nope", "social-aid", "p1"}, crossroads.ReasonUnknownService},
		{"provider suspended", nil, Request{"ocmw", "retired", "social-aid", "p1"}, crossroads.ReasonProviderSuspended},
		{"no authorisation", func(v *view) { v.auths = nil }, Request{"ocmw", "person", "social-aid", "p1"}, crossroads.ReasonNoAuthorisation},
		{"purpose not covered", nil, Request{"ocmw", "person", "marketing", "p1"}, crossroads.ReasonPurposeNotCovered},
		{"authorisation suspended", func(v *view) { v.auths[0].Status = crossroads.StatusSuspended }, Request{"ocmw", "person", "social-aid", "p1"}, crossroads.ReasonAuthorisationNotActive},
		{"authorisation expired", func(v *view) { v.auths[0].ValidTo = now }, Request{"ocmw", "person", "social-aid", "p1"}, crossroads.ReasonAuthorisationNotActive},
		{"authorisation not yet valid", func(v *view) { v.auths[0].ValidFrom = now.Add(time.Second) }, Request{"ocmw", "person", "social-aid", "p1"}, crossroads.ReasonAuthorisationNotActive},
		{"no integration", nil, Request{"ocmw", "person", "social-aid", "p9"}, crossroads.ReasonNoIntegration},
		{"integration ended", nil, Request{"ocmw", "person", "social-aid", "p3"}, crossroads.ReasonNoIntegration},
		{"capacity not covered", nil, Request{"ocmw", "person", "social-aid", "p2"}, crossroads.ReasonCapacityNotCovered},
		{"second authorisation covers", func(v *view) {
			a := *v.auths[0]
			a.ID, a.Capacities = "a2", []crossroads.Capacity{{Sector: "99", Code: "other"}}
			v.auths = append(v.auths, &a)
		}, Request{"ocmw", "person", "social-aid", "p2"}, crossroads.ReasonAllowed},
		{"most specific reason wins", func(v *view) {
			a := *v.auths[0]
			a.ID, a.Status = "a0", crossroads.StatusRevoked
			v.auths = append([]*crossroads.Authorisation{&a}, v.auths...)
		}, Request{"ocmw", "person", "social-aid", "p2"}, crossroads.ReasonCapacityNotCovered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := baseView()
			if tc.mutate != nil {
				tc.mutate(v)
			}
			d := Decide(v, tc.req, now)
			if d.Reason != tc.want {
				t.Fatalf("reason = %s, want %s", d.Reason, tc.want)
			}
			if d.Allowed != (tc.want == crossroads.ReasonAllowed) {
				t.Fatalf("allowed = %v with reason %s", d.Allowed, d.Reason)
			}
			if d.Allowed && d.Authorisation == nil {
				t.Fatal("allowed without an authorisation")
			}
		})
	}
}

func TestDecideReturnsPermittedFields(t *testing.T) {
	d := Decide(baseView(), Request{"ocmw", "person", "social-aid", "p1"}, now)
	if len(d.Fields) != 1 || d.Fields[0] != "/name" {
		t.Fatalf("fields = %v", d.Fields)
	}
}
