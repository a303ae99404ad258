package apply_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
)

// TestWave1DemoFileApplies: the wave-1 demo network file (services with
// concernsPerson and no operations) applies unchanged, with a warning per
// service that cannot be called yet, and applies again as a no-op.
func TestWave1DemoFileApplies(t *testing.T) {
	f, err := os.Open("testdata/wave1-demo-network.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := apply.Parse(f)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := newStore(t)
	plan, err := apply.Run(ctx, s, n, apply.Options{})
	if err != nil {
		t.Fatalf("the wave-1 file no longer applies: %v", err)
	}
	if len(plan.Warnings) != len(n.Services) {
		t.Errorf("warnings = %v, want one per service without operations (%d)", plan.Warnings, len(n.Services))
	}
	for _, w := range plan.Warnings {
		if !strings.Contains(w.Message, "cannot be called") {
			t.Errorf("warning %q", w)
		}
	}
	regs, _ := s.Registers(ctx)
	for _, svc := range regs.Services {
		if svc.SubjectKind() != crossroads.SubjectPerson || len(svc.Operations) != 0 {
			t.Errorf("service %s: subject %q, %d operations", svc.ID, svc.SubjectKind(), len(svc.Operations))
		}
	}
	again, err := apply.Run(ctx, s, n, apply.Options{})
	if err != nil || again.HasChanges() {
		t.Errorf("second apply of the wave-1 file: %v\n%s", err, again)
	}
}

func TestParseWave2(t *testing.T) {
	n := sample(t)
	if got := n.Services[0]; got.Subject != crossroads.SubjectPerson || len(got.Operations) != 2 ||
		got.Operations[1].Method != "PUT" || got.Operations[1].Body != "application/json" || !slices.Equal(got.Operations[0].Query, []string{"lang"}) {
		t.Errorf("service 0 = %+v", got)
	}
	if got := n.Services[1]; !got.ConcernsPerson || got.SubjectKind() != crossroads.SubjectPerson || got.Operations[1].Fields[0] != "/employments" {
		t.Errorf("service 1 = %+v", got)
	}
	if got := n.Authorisations[0].Operations; !slices.Equal(got["rr.person"], []string{"read", "correct-address"}) || len(got) != 1 {
		t.Errorf("authorisation operations = %v", got)
	}
	if got := n.Authorisations[1].Capacities[1]; got.Kind != crossroads.SubjectEnterprise {
		t.Errorf("capacity kind = %+v", got)
	}
	if got := n.Integrations[5]; got.Kind != crossroads.SubjectEnterprise || got.Person != "BE0403.170.701" {
		t.Errorf("integration kind = %+v", got)
	}
}

func TestValidateWave2Rules(t *testing.T) {
	type rule struct {
		mutate     func(n *crossroads.Network)
		path, want string
	}
	rules := map[string]rule{
		"unknown subject kind": {func(n *crossroads.Network) { n.Services[0].Subject = "animal" }, "services[0].subject", `"animal" is not a subject kind`},
		"concernsPerson contradicts subject": {func(n *crossroads.Network) {
			n.Services[2].ConcernsPerson = true
		}, "services[2].concernsPerson", "contradicts subject: enterprise"},
		"operation id missing":   {func(n *crossroads.Network) { n.Services[0].Operations[0].ID = "" }, "services[0].operations", `operation "": id must match`},
		"operation id invalid":   {func(n *crossroads.Network) { n.Services[0].Operations[0].ID = "Read Me" }, "services[0].operations", `operation "Read Me": id must match`},
		"operation id duplicate": {func(n *crossroads.Network) { n.Services[0].Operations[1].ID = "read" }, "services[0].operations", `operation "read": id repeated`},
		"subject not in path": {func(n *crossroads.Network) {
			n.Services[1].Operations[0].Path = "/all"
		}, "services[1].operations", "the path must have {subject}"},
		"enterprise subject not in path": {func(n *crossroads.Network) {
			n.Services[2].Operations[0].Path = "/list"
		}, "services[2].operations", "enterprise: the path must have {subject}"},
		// The operation package's rules (operation.CheckService) are part of the validation.
		"body on a GET": {func(n *crossroads.Network) { n.Services[0].Operations[0].Body = "application/json" }, "services[0].operations", "a body is accepted only by POST, PUT and PATCH"},
		"bad template":  {func(n *crossroads.Network) { n.Services[0].Operations[0].Path = "/{subject}/{x:float}" }, "services[0].operations", `operation "read": path:`},
		"bad method":    {func(n *crossroads.Network) { n.Services[0].Operations[0].Method = "TRACE" }, "services[0].operations", `method "TRACE"`},
		"operations of another service": {func(n *crossroads.Network) {
			n.Authorisations[0].Operations["rsz.employer"] = []string{"identify"}
		}, `authorisations[0].operations["rsz.employer"]`, "not one of the services"},
		"unknown operation": {func(n *crossroads.Network) {
			n.Authorisations[0].Operations["rr.person"] = []string{"read", "delete"}
		}, `authorisations[0].operations["rr.person"][1]`, `has no operation "delete"`},
		"capacity of an unknown kind": {func(n *crossroads.Network) {
			n.Authorisations[1].Capacities[1].Kind = "animal"
		}, "authorisations[1].capacities[1].kind", "not a subject kind"},
		"integration of an unknown kind": {func(n *crossroads.Network) { n.Integrations[5].Kind = "animal" }, "integrations[5].kind", "not a subject kind"},
		"invalid enterprise number": {func(n *crossroads.Network) {
			n.Integrations[5].Person = "0403.170.702"
		}, "integrations[5].person", "not a valid cbe enterprise id"},
		"an enterprise number as a person": {func(n *crossroads.Network) {
			n.Integrations[5].Kind = ""
		}, "integrations[5].person", "not a valid insz person id"},
		"capacity held for persons only": {func(n *crossroads.Network) {
			n.Integrations[5].Capacity = "unemployed"
		}, "integrations[5].capacity", "for an enterprise"},
	}
	for name, r := range rules {
		t.Run(name, func(t *testing.T) {
			n := sample(t)
			r.mutate(n)
			_, err := apply.Check(n, nil, nil)
			var ps apply.Problems
			if !errors.As(err, &ps) || !slices.ContainsFunc(ps, func(p apply.Problem) bool { return p.Path == r.path && strings.Contains(p.Message, r.want) }) {
				t.Errorf("no problem at %s containing %q; got:\n%v", r.path, r.want, err)
			}
		})
	}
}

// TestValidateConfiguredKinds: a kind the network configures is a subject
// kind like the built-in ones; its scheme validates integrations.
func TestValidateConfiguredKinds(t *testing.T) {
	n := sample(t)
	n.Services[0].Subject = "foreign-person"
	n.Services[0].Operations = n.Services[0].Operations[:1]
	n.Authorisations[0].Operations = nil
	n.Authorisations[1].Capacities = append(n.Authorisations[1].Capacities, crossroads.Capacity{Sector: "2", Code: "frontier-worker", Kind: "foreign-person"})
	n.Integrations = append(n.Integrations, crossroads.Integration{Kind: "foreign-person", Person: "FR-1234", Participant: "rva", Sector: "2", Capacity: "frontier-worker"})
	kinds := personid.DefaultKinds(nil)
	if _, err := apply.Check(n, nil, kinds); err == nil {
		t.Fatal("a kind the network does not configure validated")
	}
	kinds["foreign-person"] = personid.Opaque{}
	if _, err := apply.Check(n, nil, kinds); err != nil {
		t.Errorf("with the kind configured: %v", err)
	}
}

// TestLastOperator: an apply that would leave no active operator is
// refused (issue 16 item 5), whether it suspends it or changes its kind.
func TestLastOperator(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Run(ctx, s, sample(t), apply.Options{}); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"suspend":     "participants:\n  - {id: crossroads-ops, name: Ops, kind: operator, status: suspended}\n",
		"change kind": "participants:\n  - {id: crossroads-ops, name: Ops, kind: auditor, status: active}\n",
	} {
		_, err := apply.Run(ctx, s, parse(t, file), apply.Options{})
		var ps apply.Problems
		if !errors.As(err, &ps) || !strings.Contains(err.Error(), "no active operator") {
			t.Errorf("%s the last operator: %v", name, err)
		}
	}
	// With a second operator, the first may be suspended.
	two := "participants:\n  - {id: ops-2, name: Ops 2, kind: operator, status: active}\n  - {id: crossroads-ops, name: Ops, kind: operator, status: suspended}\n"
	if _, err := apply.Run(ctx, s, parse(t, two), apply.Options{}); err != nil {
		t.Errorf("suspending one of two operators: %v", err)
	}
}

func TestDiffOperations(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Run(ctx, s, sample(t), apply.Options{}); err != nil {
		t.Fatal(err)
	}
	next := sample(t)
	next.Services[0].Operations[0].Query = []string{"lang", "at"}
	next.Services[0].Operations = append(next.Services[0].Operations[:1], crossroads.Operation{ID: "history", Method: "GET", Path: "/{subject}/history"})
	next.Services[2].Subject = crossroads.SubjectNone
	next.Services[2].Operations[0].Path = "/"
	next.Authorisations[0].Operations["rr.person"] = []string{"read", "history"}
	plan, err := apply.Run(ctx, s, next, apply.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	got := plan.String()
	for _, want := range []string{
		`~ service rr.person: operations.read GET /{subject} query ["lang"] → GET /{subject} query ["lang", "at"]`,
		`~ service rr.person: operations.correct-address PUT /{subject}/address body "application/json" → none`,
		`~ service rr.person: operations.history none → GET /{subject}/history`,
		`~ service rsz.employer: subject "enterprise" → "none"`,
		`~ service rsz.employer: operations.identify GET /{subject} → GET /`,
		`~ authorisation csss-24-123: operations {"rr.person": ["read", "correct-address"]} → {"rr.person": ["read", "history"]}`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
}

// racingStore lets the first Apply of each of two callers through only
// once both have validated: the two applies race from the same version.
type racingStore struct {
	crossroads.RegisterStore
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (r *racingStore) Apply(ctx context.Context, n *crossroads.Network) error {
	r.mu.Lock()
	first := r.waiting < 2
	if first {
		r.waiting++
		if r.waiting == 2 {
			close(r.release)
		}
	}
	r.mu.Unlock()
	if first {
		<-r.release
	}
	return r.RegisterStore.Apply(ctx, n)
}

// TestConcurrentAppliesSerialised: two applies, each valid alone (each
// suspends one of two operators), race from the same version. Together
// they would leave no operator; the loser is revalidated and refused.
func TestConcurrentAppliesSerialised(t *testing.T) {
	s := newStore(t)
	base := sample(t)
	base.Participants = append(base.Participants, crossroads.Participant{ID: "ops-2", Name: "Ops 2", Kind: crossroads.KindOperator, Status: crossroads.StatusActive})
	if _, err := apply.Run(ctx, s, base, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	r := &racingStore{RegisterStore: s.RegisterStore, release: make(chan struct{})}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, id := range []string{"crossroads-ops", "ops-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := "participants:\n  - {id: " + id + ", name: Ops, kind: operator, status: suspended}\n"
			_, errs[i] = apply.Run(ctx, r, parse(t, file), apply.Options{})
		}()
	}
	wg.Wait()
	var ok, refused int
	for _, err := range errs {
		var ps apply.Problems
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ps) && strings.Contains(err.Error(), "no active operator"):
			refused++
		default:
			t.Errorf("racing apply: %v", err)
		}
	}
	regs, _ := s.Registers(ctx)
	active := 0
	for _, p := range regs.Participants {
		if p.Kind == crossroads.KindOperator && p.Status == crossroads.StatusActive {
			active++
		}
	}
	if ok != 1 || refused != 1 || active != 1 {
		t.Errorf("%d applied, %d refused, %d active operators; want 1, 1, 1", ok, refused, active)
	}
}

func TestIfMatch(t *testing.T) {
	s := newStore(t)
	plan, err := apply.Run(ctx, s, sample(t), apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := plan.Version
	if v == 0 {
		t.Fatal("plan has no version")
	}
	file := parse(t, "participants:\n  - {id: new, name: New, kind: institution, status: active}\n")
	if _, err := apply.Run(ctx, s, file, apply.Options{IfMatch: v - 1}); !errors.Is(err, apply.ErrPrecondition) {
		t.Fatalf("stale If-Match = %v, want ErrPrecondition", err)
	}
	if regs, _ := s.Registers(ctx); len(regs.Participants) != 6 {
		t.Errorf("a refused If-Match wrote")
	}
	next, err := apply.Run(ctx, s, file, apply.Options{IfMatch: v})
	if err != nil || next.Version <= v || !next.HasChanges() {
		t.Errorf("matching If-Match: %v, version %d (was %d)", err, next.Version, v)
	}
}
