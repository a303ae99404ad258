package apply

import (
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

func subscriptionNetwork() *crossroads.Network {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cap := crossroads.Capacity{Sector: "17", Code: "beneficiary"}
	return &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: "pop", Name: "Pop", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
			{ID: "ocmw", Name: "OCMW", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "old", Name: "Old", Kind: crossroads.KindInstitution, Status: crossroads.StatusSuspended},
		},
		Services: []crossroads.Service{{ID: "population", Provider: "pop", BaseURL: "https://pop.example", Classification: 1, Fields: []string{"/a"},
			Subject: crossroads.SubjectPerson, Operations: []crossroads.Operation{
				{ID: "read", Method: "GET", Path: "/p/{subject}"},
				{ID: "moved", Kind: crossroads.OperationMutation, Fields: []string{"/a"}},
			}}},
		Authorisations: []crossroads.Authorisation{{ID: "a1", Reference: "r", Grantee: "ocmw", Services: []string{"population"}, Purposes: []string{"aid"},
			Fields: map[string][]string{"population": {"/a"}}, Operations: map[string][]string{"population": {"moved"}},
			Capacities: []crossroads.Capacity{cap}, ValidFrom: from, Status: crossroads.StatusActive}},
		Subscriptions: []crossroads.Subscription{{ID: "s1", Subscriber: "ocmw", Service: "population", Operation: "moved", Purpose: "aid",
			Capacities: []crossroads.Capacity{cap}, Delivery: crossroads.DeliveryPush, Endpoint: "https://ocmw.example/events", Status: crossroads.StatusActive}},
	}
}

func TestSubscriptionValidation(t *testing.T) {
	if _, err := Check(subscriptionNetwork(), nil, nil); err != nil {
		t.Fatalf("valid network: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(n *crossroads.Network)
		want   string
	}{
		"unknown subscriber":   {func(n *crossroads.Network) { n.Subscriptions[0].Subscriber = "nobody" }, "unknown participant"},
		"suspended subscriber": {func(n *crossroads.Network) { n.Subscriptions[0].Subscriber = "old" }, "not active"},
		"not a mutation":       {func(n *crossroads.Network) { n.Subscriptions[0].Operation = "read" }, "declares no mutation"},
		"unknown operation":    {func(n *crossroads.Network) { n.Subscriptions[0].Operation = "nope" }, "declares no mutation"},
		"http endpoint":        {func(n *crossroads.Network) { n.Subscriptions[0].Endpoint = "http://ocmw.example/events" }, "not an https URL"},
		"no endpoint":          {func(n *crossroads.Network) { n.Subscriptions[0].Endpoint = "" }, "needs an endpoint"},
		"credentials":          {func(n *crossroads.Network) { n.Subscriptions[0].Endpoint = "https://u:p@ocmw.example/" }, "credentials"},
		"pull with endpoint":   {func(n *crossroads.Network) { n.Subscriptions[0].Delivery = crossroads.DeliveryPull }, "no endpoint"},
		"bad delivery":         {func(n *crossroads.Network) { n.Subscriptions[0].Delivery = "mail" }, "delivery mode"},
		"no capacity":          {func(n *crossroads.Network) { n.Subscriptions[0].Capacities = nil }, "at least one capacity"},
		"purpose not covered":  {func(n *crossroads.Network) { n.Subscriptions[0].Purpose = "other" }, "no authorisation"},
		"capacity not named": {func(n *crossroads.Network) {
			n.Subscriptions[0].Capacities = []crossroads.Capacity{{Sector: "99", Code: "x"}}
		}, "no authorisation"},
		"mutation not granted":   {func(n *crossroads.Network) { n.Authorisations[0].Operations = nil }, "no authorisation"},
		"revoked authorisation":  {func(n *crossroads.Network) { n.Authorisations[0].Status = crossroads.StatusRevoked }, "no authorisation"},
		"duplicate id":           {func(n *crossroads.Network) { n.Subscriptions = append(n.Subscriptions, n.Subscriptions[0]) }, "duplicate id"},
		"bad status":             {func(n *crossroads.Network) { n.Subscriptions[0].Status = "on" }, "subscription status"},
		"mutation with a path":   {func(n *crossroads.Network) { n.Services[0].Operations[1].Path = "/x/{subject}" }, "declares no method, path"},
		"unknown operation kind": {func(n *crossroads.Network) { n.Services[0].Operations[1].Kind = "event" }, "want empty"},
	} {
		t.Run(name, func(t *testing.T) {
			n := subscriptionNetwork()
			tc.change(n)
			_, err := Check(n, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a problem with %q", err, tc.want)
			}
		})
	}
	// against the current registers: the subscription alone refers to them
	cur := subscriptionNetwork()
	only := &crossroads.Network{Subscriptions: cur.Subscriptions}
	cur.Subscriptions = nil
	if _, err := Check(only, cur, nil); err != nil {
		t.Fatalf("subscription against current registers: %v", err)
	}
	// a suspended subscription needs no covering authorisation
	n := subscriptionNetwork()
	n.Subscriptions[0].Status, n.Subscriptions[0].Purpose = crossroads.StatusSuspended, "other"
	if _, err := Check(n, nil, nil); err != nil {
		t.Fatalf("suspended subscription: %v", err)
	}
}

func TestSubscriptionParseAndDiff(t *testing.T) {
	y := `
subscriptions:
  - id: s1
    subscriber: ocmw
    service: population
    operation: moved
    purpose: aid
    capacities: [{sector: "17", code: beneficiary}]
    delivery: pull
    status: active
`
	n, err := Parse(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Subscriptions) != 1 || n.Subscriptions[0].Delivery != crossroads.DeliveryPull || n.Subscriptions[0].Capacities[0].Code != "beneficiary" {
		t.Fatalf("parsed %+v", n.Subscriptions)
	}
	cur := subscriptionNetwork()
	plan := Diff(cur, n, nil)
	if !plan.HasChanges() || len(plan.Network().Subscriptions) != 1 || !strings.Contains(plan.String(), "~ subscription s1: delivery") {
		t.Fatalf("plan:\n%s", plan)
	}
	if p := Diff(cur, cur, nil); len(p.Network().Subscriptions) != 0 {
		t.Fatalf("unchanged subscription written: %s", p)
	}
}
