package apply

import (
	"errors"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

const permitYAML = `
participants:
  - {id: hdab, name: Access body, kind: institution, status: active}
  - {id: uni, name: University, kind: institution, status: active}
  - {id: hosp-a, name: Hospital A, kind: institution, status: active}
  - {id: alice, name: Alice Researcher, kind: institution, status: active}
  - {id: ops, name: Operator, kind: operator, status: active}
authorisations:
  - id: permit-1
    reference: HDAB/2026/17
    grantee: uni
    purposes: [research]
    validFrom: 2026-01-01
    validTo: 2027-01-01
    status: active
    kind: data-permit
    permit:
      accessBody: hdab
      purpose: Readmissions after heart surgery
      datasets:
        - {id: admissions, holder: hosp-a}
      members:
        - {participant: alice, role: researcher, name: Alice}
        - {participant: hosp-a, role: data-holder}
      statistics: [count, mean]
      rules: {threshold: 10, dominance_n: 2, dominance_k: 0.9}
      budget: {epsilon: 1.0, delta: 0.000001}
      files: {types: [csv], maxBytes: 1048576}
      peers:
        - {hub: hub-b, url: "https://127.0.0.1:9443"}
`

func TestParsePermit(t *testing.T) {
	n, err := Parse(strings.NewReader(permitYAML))
	if err != nil {
		t.Fatal(err)
	}
	a := n.Authorisations[0]
	if a.Kind != crossroads.KindDataPermit || a.Permit == nil || a.Permit.AccessBody != "hdab" || len(a.Permit.Members) != 2 ||
		a.Permit.Budget.Epsilon != 1 || a.Permit.Rules["threshold"] != 10 || a.Permit.Files.MaxBytes != 1<<20 {
		t.Fatalf("parsed %+v %+v", a, a.Permit)
	}
	if err := Validate(n, nil, nil); err != nil {
		t.Fatalf("valid permit refused: %v", err)
	}
}

func TestValidatePermit(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(a *crossroads.Authorisation)
	}{
		{"unknown kind", "not an authorisation kind", func(a *crossroads.Authorisation) { a.Kind = "permit" }},
		{"terms without kind", "permit terms need kind", func(a *crossroads.Authorisation) { a.Kind = "" }},
		{"no terms", "needs its terms", func(a *crossroads.Authorisation) { a.Permit = nil }},
		{"services", "names no services", func(a *crossroads.Authorisation) { a.Services = []string{"x"} }},
		{"unknown access body", "unknown participant \"nobody\"", func(a *crossroads.Authorisation) { a.Permit.AccessBody = "nobody" }},
		{"bad role", "not a permit role", func(a *crossroads.Authorisation) { a.Permit.Members[0].Role = "admin" }},
		{"operator member", "operators halt workspaces", func(a *crossroads.Authorisation) {
			a.Permit.Members = append(a.Permit.Members, crossroads.PermitMember{Participant: "ops", Role: crossroads.RoleResearcher})
		}},
		{"twice", "listed twice", func(a *crossroads.Authorisation) { a.Permit.Members = append(a.Permit.Members, a.Permit.Members[0]) }},
		{"holder not member", "not a member of role data-holder", func(a *crossroads.Authorisation) { a.Permit.Datasets[0].Holder = "alice" }},
		{"no datasets", "at least one dataset", func(a *crossroads.Authorisation) { a.Permit.Datasets = nil }},
		{"bad dataset id", "not a valid dataset id", func(a *crossroads.Authorisation) { a.Permit.Datasets[0].ID = "../x" }},
		{"statistic", "not a statistic", func(a *crossroads.Authorisation) { a.Permit.Statistics = []string{"max"} }},
		{"epsilon", "positive number", func(a *crossroads.Authorisation) { a.Permit.Budget.Epsilon = 0 }},
		{"delta", "in [0, 1)", func(a *crossroads.Authorisation) { a.Permit.Budget.Delta = 1 }},
		{"file type", "not a file type", func(a *crossroads.Authorisation) { a.Permit.Files.Types = []string{"exe"} }},
		{"rule value", "rules", func(a *crossroads.Authorisation) { a.Permit.Rules["threshold"] = "ten" }},
		{"unknown rule", "rules", func(a *crossroads.Authorisation) { a.Permit.Rules["thresold"] = 5 }},
		{"peer url", "not an https://host:port", func(a *crossroads.Authorisation) { a.Permit.Peers[0].URL = "http://x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(strings.NewReader(permitYAML))
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(&n.Authorisations[0])
			err = Validate(n, nil, nil)
			if !errors.Is(err, crossroads.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a problem containing %q", err, tc.want)
			}
		})
	}
}
