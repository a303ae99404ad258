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
		if crossroads.SubjectKey(in.Kind, in.Person) == person && in.Participant == participant {
			out = append(out, in)
		}
	}
	return out
}

var (
	opRead   = &crossroads.Operation{ID: "read", Method: "GET", Path: "/x/{subject}"}
	opWrite  = &crossroads.Operation{ID: "write", Method: "PUT", Path: "/x/{subject}", Body: "application/json"}
	opUpload = &crossroads.Operation{ID: "upload", Method: "POST", Path: "/up"}
	opList   = &crossroads.Operation{ID: "list", Method: "GET", Path: "/"}
)

// req builds a request for a GET operation (how the exchange calls Decide).
func req(requester, service, purpose, subject string) Request {
	return Request{Requester: requester, Service: service, Operation: opRead, Purpose: purpose, Subject: subject}
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
			"company": {ID: "company", Provider: "rr", Subject: crossroads.SubjectEnterprise},
		},
		auths: []*crossroads.Authorisation{{
			ID: "a1", Grantee: "ocmw", Services: []string{"person", "stats", "retired", "company"}, Purposes: []string{"social-aid"},
			Fields:     map[string][]string{"person": {"/name"}},
			Capacities: []crossroads.Capacity{{Sector: "17", Code: "beneficiary"}, {Sector: "17", Code: "employer", Kind: crossroads.SubjectEnterprise}},
			Operations: map[string][]string{"stats": {"read", "upload"}},
			ValidFrom:  past, ValidTo: soon, Status: crossroads.StatusActive,
		}},
		integrations: []crossroads.Integration{
			{Person: "p1", Participant: "ocmw", Sector: "17", Capacity: "beneficiary", From: past},
			{Person: "p2", Participant: "ocmw", Sector: "99", Capacity: "other", From: past},
			{Person: "p3", Participant: "ocmw", Sector: "17", Capacity: "beneficiary", From: past, To: now},
			{Kind: crossroads.SubjectEnterprise, Person: "e1", Participant: "ocmw", Sector: "17", Capacity: "employer", From: past},
			// a person-kind integration in the capacity an enterprise capacity names
			{Person: "e2", Participant: "ocmw", Sector: "17", Capacity: "employer", From: past},
			// an enterprise-kind integration in a person capacity
			{Kind: crossroads.SubjectEnterprise, Person: "e3", Participant: "ocmw", Sector: "17", Capacity: "beneficiary", From: past},
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
		{"allowed", nil, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonAllowed},
		{"allowed without person", nil, req("ocmw", "stats", "social-aid", ""), crossroads.ReasonAllowed},
		{"unknown participant", nil, req("nobody", "person", "social-aid", "p1"), crossroads.ReasonUnknownParticipant},
		{"participant suspended", nil, req("susp", "person", "social-aid", "p1"), crossroads.ReasonParticipantSuspended},
		{"unknown service", nil, req("ocmw", "nope", "social-aid", "p1"), crossroads.ReasonUnknownService},
		{"provider suspended", nil, req("ocmw", "retired", "social-aid", "p1"), crossroads.ReasonProviderSuspended},
		{"no authorisation", func(v *view) { v.auths = nil }, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonNoAuthorisation},
		{"purpose not covered", nil, req("ocmw", "person", "marketing", "p1"), crossroads.ReasonPurposeNotCovered},
		{"authorisation suspended", func(v *view) { v.auths[0].Status = crossroads.StatusSuspended }, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonAuthorisationNotActive},
		{"authorisation expired", func(v *view) { v.auths[0].ValidTo = now }, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonAuthorisationNotActive},
		{"authorisation not yet valid", func(v *view) { v.auths[0].ValidFrom = now.Add(time.Second) }, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonAuthorisationNotActive},
		{"no integration", nil, req("ocmw", "person", "social-aid", "p9"), crossroads.ReasonNoIntegration},
		{"integration ended", nil, req("ocmw", "person", "social-aid", "p3"), crossroads.ReasonNoIntegration},
		{"capacity not covered", nil, req("ocmw", "person", "social-aid", "p2"), crossroads.ReasonCapacityNotCovered},
		{"second authorisation covers", func(v *view) {
			a := *v.auths[0]
			a.ID, a.Capacities = "a2", []crossroads.Capacity{{Sector: "99", Code: "other"}}
			v.auths = append(v.auths, &a)
		}, req("ocmw", "person", "social-aid", "p2"), crossroads.ReasonAllowed},
		{"most specific reason wins", func(v *view) {
			a := *v.auths[0]
			a.ID, a.Status = "a0", crossroads.StatusRevoked
			v.auths = append([]*crossroads.Authorisation{&a}, v.auths...)
		}, req("ocmw", "person", "social-aid", "p2"), crossroads.ReasonCapacityNotCovered},
		{"write not granted (absent from Operations: GET only)", nil, Request{Requester: "ocmw", Service: "person", Operation: opWrite, Purpose: "social-aid", Subject: "p1"}, crossroads.ReasonOperationNotCovered},
		{"write granted explicitly", func(v *view) { v.auths[0].Operations["person"] = []string{"write"} }, Request{Requester: "ocmw", Service: "person", Operation: opWrite, Purpose: "social-aid", Subject: "p1"}, crossroads.ReasonAllowed},
		{"explicit list leaves out the GET", func(v *view) { v.auths[0].Operations["person"] = []string{"write"} }, req("ocmw", "person", "social-aid", "p1"), crossroads.ReasonOperationNotCovered},
		{"explicit grant, service about no one", nil, Request{Requester: "ocmw", Service: "stats", Operation: opUpload, Purpose: "social-aid"}, crossroads.ReasonAllowed},
		{"explicit list without the GET, service about no one", nil, Request{Requester: "ocmw", Service: "stats", Operation: opList, Purpose: "social-aid"}, crossroads.ReasonOperationNotCovered},
		{"operation checked before integrations", nil, Request{Requester: "ocmw", Service: "person", Operation: opWrite, Purpose: "social-aid", Subject: "p9"}, crossroads.ReasonOperationNotCovered},
		{"no integration outranks operation-not-covered", func(v *view) {
			a := *v.auths[0]
			a.ID, a.Operations = "a0", map[string][]string{"person": {"write"}}
			v.auths = append([]*crossroads.Authorisation{&a}, v.auths...)
		}, req("ocmw", "person", "social-aid", "p9"), crossroads.ReasonNoIntegration},
		{"enterprise allowed", nil, req("ocmw", "company", "social-aid", "e1"), crossroads.ReasonAllowed},
		{"enterprise kind given", nil, Request{Requester: "ocmw", Service: "company", Operation: opRead, Purpose: "social-aid", SubjectKind: crossroads.SubjectEnterprise, Subject: "e1"}, crossroads.ReasonAllowed},
		{"subject kind other than the service's", nil, Request{Requester: "ocmw", Service: "company", Operation: opRead, Purpose: "social-aid", SubjectKind: crossroads.SubjectPerson, Subject: "e1"}, crossroads.ReasonInvalidSubject},
		{"person integration does not cover an enterprise", nil, req("ocmw", "company", "social-aid", "e2"), crossroads.ReasonNoIntegration},
		{"enterprise integration does not cover a person", nil, req("ocmw", "person", "social-aid", "e1"), crossroads.ReasonNoIntegration},
		{"enterprise integration in a person capacity", nil, req("ocmw", "company", "social-aid", "e3"), crossroads.ReasonCapacityNotCovered},
		{"enterprise capacity does not cover a person", func(v *view) {
			v.integrations = append(v.integrations, crossroads.Integration{Person: "p7", Participant: "ocmw", Sector: "17", Capacity: "employer", From: past})
		}, req("ocmw", "person", "social-aid", "p7"), crossroads.ReasonCapacityNotCovered},
		{"nil operation: no operation rule", nil, Request{Requester: "ocmw", Service: "person", Purpose: "social-aid", Subject: "p1"}, crossroads.ReasonAllowed},
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
	d := Decide(baseView(), req("ocmw", "person", "social-aid", "p1"), now)
	if len(d.Fields) != 1 || d.Fields[0] != "/name" {
		t.Fatalf("fields = %v", d.Fields)
	}
}
