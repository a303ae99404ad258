package apply_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var ctx = context.Background()

func sample(t testing.TB) *crossroads.Network {
	t.Helper()
	f, err := os.Open("testdata/network.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := apply.Parse(f)
	if err != nil {
		t.Fatalf("Parse(testdata/network.yaml): %v", err)
	}
	return n
}

func parse(t *testing.T, s string) *crossroads.Network {
	t.Helper()
	n, err := apply.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return n
}

// countingStore records what reaches RegisterStore.Apply.
type countingStore struct {
	crossroads.RegisterStore
	applied []*crossroads.Network
}

func (c *countingStore) Apply(ctx context.Context, n *crossroads.Network) error {
	c.applied = append(c.applied, n)
	return c.RegisterStore.Apply(ctx, n)
}

func newStore(t testing.TB) *countingStore {
	t.Helper()
	s, err := sqlite.OpenRegisters(ctx, filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countingStore{RegisterStore: s}
}

func TestParseSample(t *testing.T) {
	n := sample(t)
	if len(n.Participants) != 6 || len(n.Services) != 3 || len(n.Authorisations) != 2 || len(n.Integrations) != 6 {
		t.Fatalf("parsed %d participants, %d services, %d authorisations, %d integrations",
			len(n.Participants), len(n.Services), len(n.Authorisations), len(n.Integrations))
	}
	a := n.Authorisations[0]
	if !a.ValidFrom.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) || a.ValidFrom.Location() != time.UTC {
		t.Errorf("date-only validFrom = %v, want 2024-03-01 UTC", a.ValidFrom)
	}
	if got := n.Authorisations[1].ValidFrom; !got.Equal(time.Date(2022, 6, 14, 22, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("RFC 3339 validFrom with offset = %v, want 2022-06-14T22:00Z", got)
	}
	if !n.Authorisations[1].ValidTo.IsZero() {
		t.Errorf("absent validTo = %v, want zero", n.Authorisations[1].ValidTo)
	}
	if a.Limits == nil || *a.Limits != (crossroads.Limits{RatePerSecond: 20, Burst: 40, MaxConcurrent: 8}) {
		t.Errorf("limits = %+v", a.Limits)
	}
	if got := n.Services[2].Fields; !slices.Equal(got, []string{crossroads.WholePayload}) {
		t.Errorf("whole-payload fields = %q", got)
	}
	if err := apply.Validate(n, nil, personid.INSZ{}); err != nil {
		t.Errorf("sample does not validate: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"unknown top-level field":     {"participant:\n  - id: x\n", "participant"},
		"unknown nested field":        {"participants:\n  - id: x\n    kindd: operator\n", "kindd"},
		"unknown authorisation field": {"authorisations:\n  - id: x\n    grantees: y\n", "grantees"},
		"slash date":                  {"authorisations:\n  - id: x\n    validFrom: 2024/01/01\n", "not a time"},
		"space-separated time":        {"authorisations:\n  - id: x\n    validFrom: 2024-01-01 10:00:00\n", "not a time"},
		"time without zone":           {"integrations:\n  - from: 2024-01-01T10:00:00\n", "not a time"},
		"impossible date":             {"integrations:\n  - from: 2024-02-30\n", "not a time"},
		"time as a list":              {"integrations:\n  - from: [2024-01-01]\n", "want a time"},
		"wrong type":                  {"services:\n  - id: x\n    classification: high\n", "line 3"},
		"two documents":               {"participants: []\n---\nparticipants: []\n", "more than one"},
		"empty":                       {"", "empty"},
		"not a mapping":               {"- a\n- b\n", "cannot unmarshal"},
		"too large":                   {"# " + strings.Repeat("x", apply.MaxSize) + "\n", "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := apply.Parse(strings.NewReader(c.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", n)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// TestValidateRules checks each rule: a mutation of the valid sample must
// produce a problem at the given path whose message contains want.
func TestValidateRules(t *testing.T) {
	type rule struct {
		mutate     func(n *crossroads.Network)
		path, want string
	}
	svc := func(n *crossroads.Network) *crossroads.Service { return &n.Services[0] }
	auth := func(n *crossroads.Network) *crossroads.Authorisation { return &n.Authorisations[0] }
	integ := func(n *crossroads.Network) *crossroads.Integration { return &n.Integrations[0] }
	rules := map[string]rule{
		"participant id empty":     {func(n *crossroads.Network) { n.Participants[5].ID = "" }, "participants[5].id", "required"},
		"participant id uppercase": {func(n *crossroads.Network) { n.Participants[5].ID = "DPA" }, "participants[5].id", "not a valid id"},
		"participant id too long":  {func(n *crossroads.Network) { n.Participants[5].ID = strings.Repeat("a", 64) }, "participants[5].id", "not a valid id"},
		"participant id leading -": {func(n *crossroads.Network) { n.Participants[5].ID = "-dpa" }, "participants[5].id", "not a valid id"},
		"participant id duplicate": {func(n *crossroads.Network) { n.Participants = append(n.Participants, n.Participants[1]) }, "participants[6].id", "duplicate id \"rsz\" (also participants[1])"},
		"service id duplicate":     {func(n *crossroads.Network) { n.Services = append(n.Services, n.Services[0]) }, "services[3].id", "duplicate"},
		"service id invalid":       {func(n *crossroads.Network) { n.Services[2].ID = "rsz employer" }, "services[2].id", "not a valid id"},
		"authorisation id dup":     {func(n *crossroads.Network) { n.Authorisations[1].ID = n.Authorisations[0].ID }, "authorisations[1].id", "duplicate"},
		"authorisation id empty":   {func(n *crossroads.Network) { auth(n).ID = "" }, "authorisations[0].id", "required"},
		"participant kind":         {func(n *crossroads.Network) { n.Participants[2].Kind = "bank" }, "participants[2].kind", "not a participant kind"},
		"participant status":       {func(n *crossroads.Network) { n.Participants[2].Status = crossroads.StatusRevoked }, "participants[2].status", "not a participant status"},
		"authorisation status":     {func(n *crossroads.Network) { auth(n).Status = "expired" }, "authorisations[0].status", "not an authorisation status"},
		"provider empty":           {func(n *crossroads.Network) { svc(n).Provider = "" }, "services[0].provider", "required"},
		"provider unknown":         {func(n *crossroads.Network) { svc(n).Provider = "nope" }, "services[0].provider", "unknown participant \"nope\""},
		"provider institution":     {func(n *crossroads.Network) { svc(n).Provider = "ocmw-gent" }, "services[0].provider", "is an institution"},
		"provider operator":        {func(n *crossroads.Network) { svc(n).Provider = "crossroads-ops" }, "services[0].provider", "is an operator"},
		"baseUrl empty":            {func(n *crossroads.Network) { svc(n).BaseURL = "" }, "services[0].baseUrl", "required"},
		"baseUrl http":             {func(n *crossroads.Network) { svc(n).BaseURL = "http://api.rr.example.be/v1" }, "services[0].baseUrl", "not an https URL"},
		"baseUrl relative":         {func(n *crossroads.Network) { svc(n).BaseURL = "/v1/persons" }, "services[0].baseUrl", "not an https URL"},
		"baseUrl no host":          {func(n *crossroads.Network) { svc(n).BaseURL = "https:///v1" }, "services[0].baseUrl", "no host"},
		"baseUrl user info":        {func(n *crossroads.Network) { svc(n).BaseURL = "https://u:secret@api.rr.example.be/v1" }, "services[0].baseUrl", "user info"},
		"baseUrl query":            {func(n *crossroads.Network) { svc(n).BaseURL = "https://api.rr.example.be/v1?key=1" }, "services[0].baseUrl", "query"},
		"baseUrl empty query":      {func(n *crossroads.Network) { svc(n).BaseURL = "https://api.rr.example.be/v1?" }, "services[0].baseUrl", "query"},
		"baseUrl fragment":         {func(n *crossroads.Network) { svc(n).BaseURL = "https://api.rr.example.be/v1#x" }, "services[0].baseUrl", "fragment"},
		"classification 5":         {func(n *crossroads.Network) { svc(n).Classification = 5 }, "services[0].classification", "0–4"},
		"classification -1":        {func(n *crossroads.Network) { svc(n).Classification = -1 }, "services[0].classification", "0–4"},
		"service field no slash":   {func(n *crossroads.Network) { svc(n).Fields[1] = "birthDate" }, "services[0].fields[1]", "must be empty or start with"},
		"service field bad ~":      {func(n *crossroads.Network) { svc(n).Fields[1] = "/a~2b" }, "services[0].fields[1]", "~"},
		"service field trailing ~": {func(n *crossroads.Network) { svc(n).Fields[1] = "/a~" }, "services[0].fields[1]", "~"},
		"grantee empty":            {func(n *crossroads.Network) { auth(n).Grantee = "" }, "authorisations[0].grantee", "required"},
		"grantee unknown":          {func(n *crossroads.Network) { auth(n).Grantee = "ocmw-antwerpen" }, "authorisations[0].grantee", "unknown participant"},
		"services empty":           {func(n *crossroads.Network) { auth(n).Services = nil; auth(n).Fields = nil }, "authorisations[0].services", "at least one"},
		"service unknown":          {func(n *crossroads.Network) { auth(n).Services[1] = "rsz.salary" }, "authorisations[0].services[1]", "unknown service \"rsz.salary\""},
		"service twice":            {func(n *crossroads.Network) { auth(n).Services = append(auth(n).Services, "rr.person") }, "authorisations[0].services[2]", "twice"},
		"purposes empty":           {func(n *crossroads.Network) { auth(n).Purposes = nil }, "authorisations[0].purposes", "at least one"},
		"purpose invalid":          {func(n *crossroads.Network) { auth(n).Purposes = []string{"ok", "Social Integration"} }, "authorisations[0].purposes[1]", "not a valid purpose"},
		"purpose empty string":     {func(n *crossroads.Network) { auth(n).Purposes = []string{""} }, "authorisations[0].purposes[0]", "not a valid purpose"},
		"field not listed":         {func(n *crossroads.Network) { auth(n).Fields["rr.person"] = []string{"/name", "/salary"} }, `authorisations[0].fields["rr.person"][1]`, "does not list \"/salary\""},
		"field not a prefix":       {func(n *crossroads.Network) { auth(n).Fields["rr.person"] = []string{"/nam"} }, `authorisations[0].fields["rr.person"][0]`, "does not list"},
		"field invalid pointer":    {func(n *crossroads.Network) { auth(n).Fields["rr.person"] = []string{"name"} }, `authorisations[0].fields["rr.person"][0]`, "not a JSON pointer"},
		"fields key not a service": {func(n *crossroads.Network) { auth(n).Fields["rsz.employer"] = []string{""} }, `authorisations[0].fields["rsz.employer"]`, "not one of the services"},
		"validTo before validFrom": {func(n *crossroads.Network) { auth(n).ValidTo = auth(n).ValidFrom.Add(-time.Second) }, "authorisations[0].validTo", "after validFrom"},
		"validTo equals validFrom": {func(n *crossroads.Network) { auth(n).ValidTo = auth(n).ValidFrom }, "authorisations[0].validTo", "after validFrom"},
		"capacity without sector":  {func(n *crossroads.Network) { auth(n).Capacities[1].Sector = "" }, "authorisations[0].capacities[1].sector", "required"},
		"capacity without code":    {func(n *crossroads.Network) { auth(n).Capacities[1].Code = "" }, "authorisations[0].capacities[1].code", "required"},
		"negative rate":            {func(n *crossroads.Network) { auth(n).Limits.RatePerSecond = -1 }, "authorisations[0].limits.ratePerSecond", "non-negative"},
		"negative burst":           {func(n *crossroads.Network) { auth(n).Limits.Burst = -1 }, "authorisations[0].limits.burst", "negative"},
		"negative concurrency":     {func(n *crossroads.Network) { auth(n).Limits.MaxConcurrent = -1 }, "authorisations[0].limits.maxConcurrent", "negative"},
		"person check digits":      {func(n *crossroads.Network) { integ(n).Person = "85073003329" }, "integrations[0].person", "not a valid insz person id"},
		"person not a number":      {func(n *crossroads.Network) { integ(n).Person = "jan.peeters" }, "integrations[0].person", "not a valid insz person id"},
		"integration participant":  {func(n *crossroads.Network) { integ(n).Participant = "nope" }, "integrations[0].participant", "unknown participant"},
		"integration no sector":    {func(n *crossroads.Network) { integ(n).Sector = "" }, "integrations[0].sector", "required"},
		"integration no capacity":  {func(n *crossroads.Network) { integ(n).Capacity = "" }, "integrations[0].capacity", "required"},
		"integration to < from":    {func(n *crossroads.Network) { integ(n).To = integ(n).From.AddDate(0, 0, -1) }, "integrations[0].to", "after from"},
		"capacity not authorised":  {func(n *crossroads.Network) { integ(n).Participant = "rva" }, "integrations[0].capacity", "holds no authorisation naming capacity 17/social-integration-beneficiary"},
		"capacity only revoked":    {func(n *crossroads.Network) { auth(n).Status = crossroads.StatusRevoked }, "integrations[0].capacity", "holds no authorisation"},
		"integration duplicate": {func(n *crossroads.Network) {
			in := n.Integrations[1]
			in.Person = "92021414523" // canonical form of the same person
			n.Integrations = append(n.Integrations, in)
		}, "integrations[6]", "duplicate of integrations[1]"},
	}
	for name, r := range rules {
		t.Run(name, func(t *testing.T) {
			n := sample(t)
			r.mutate(n)
			err := apply.Validate(n, nil, personid.INSZ{})
			var ps apply.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate = %v, want Problems", err)
			}
			if !errors.Is(err, crossroads.ErrInvalid) {
				t.Error("Problems does not match crossroads.ErrInvalid")
			}
			for _, p := range ps {
				if p.Path == r.path && strings.Contains(p.Message, r.want) {
					return
				}
			}
			t.Errorf("no problem at %s containing %q; got:\n%v", r.path, r.want, err)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for name, mutate := range map[string]func(n *crossroads.Network){
		"authorisation revoked": func(n *crossroads.Network) {
			n.Authorisations[1].Status = crossroads.StatusRevoked
			n.Integrations = slices.Delete(n.Integrations, 5, 6) // rva's, whose capacities it named
			n.Integrations = slices.Delete(n.Integrations, 2, 4)
		},
		"participant suspended": func(n *crossroads.Network) { n.Participants[2].Status = crossroads.StatusSuspended },
		"national backend provider": func(n *crossroads.Network) {
			n.Participants[0].Kind, n.Participants[0].Country = crossroads.KindNationalBackend, "BE"
		},
		"ancestor of a listed field":    func(n *crossroads.Network) { n.Authorisations[0].Fields["rsz.employment"] = []string{"/employer"} },
		"whole payload":                 func(n *crossroads.Network) { n.Authorisations[0].Fields["rr.person"] = []string{""} },
		"pointer with escapes":          func(n *crossroads.Network) { n.Services[0].Fields = append(n.Services[0].Fields, "/a~0b~1c") },
		"id of 63 characters":           func(n *crossroads.Network) { n.Participants[5].ID = strings.Repeat("a", 63) },
		"service with a port and path":  func(n *crossroads.Network) { n.Services[0].BaseURL = "https://api.rr.example.be:8443/v1/" },
		"zero limits":                   func(n *crossroads.Network) { n.Authorisations[0].Limits = &crossroads.Limits{} },
		"integration in suspended auth": func(n *crossroads.Network) { n.Authorisations[0].Status = crossroads.StatusSuspended },
	} {
		t.Run(name, func(t *testing.T) {
			n := sample(t)
			mutate(n)
			if err := apply.Validate(n, nil, personid.INSZ{}); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateCanonicalises(t *testing.T) {
	n := sample(t)
	if err := apply.Validate(n, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := n.Integrations[1].Person; got != "92021414523" {
		t.Errorf("person id after Validate = %q, want canonical 92021414523", got)
	}
}

// TestValidateAgainstCurrent: references may point into the registers, and
// a file may not break entries of the registers it does not mention.
func TestValidateAgainstCurrent(t *testing.T) {
	current := sample(t)
	current.Integrations = nil
	extra := parse(t, `
authorisations:
  - id: csss-25-001
    reference: CSSS/25/001
    grantee: rva
    services: [rr.person]
    purposes: [unemployment.control]
    fields: {rr.person: [/address]}
    capacities: [{sector: "2", code: job-seeker}]
    validFrom: 2025-01-01
    status: active
integrations:
  - {person: "85073003328", participant: ocmw-gent, sector: "17", capacity: applicant, from: 2025-05-01}
  - {person: "85073003328", participant: rva, sector: "2", capacity: job-seeker, from: 2025-05-01}
`)
	if err := apply.Validate(extra, current, nil); err != nil {
		t.Errorf("file referring to the registers: %v", err)
	}
	if err := apply.Validate(extra, nil, nil); err == nil {
		t.Error("the same file without the registers validated")
	}

	breaking := parse(t, `
participants:
  - {id: rsz, name: RSZ, kind: institution, status: active}
services:
  - id: rr.person
    provider: rr
    baseUrl: https://api.rr.example.be/v1/persons
    classification: 3
    fields: [/name]
`)
	err := apply.Validate(breaking, current, nil)
	var ps apply.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate = %v, want Problems", err)
	}
	want := map[string]string{
		`current service "rsz.employment".provider`:                  "is an institution",
		`current service "rsz.employer".provider`:                    "is an institution",
		`current authorisation "csss-24-123".fields["rr.person"][1]`: "does not list \"/birthDate\"",
		`current authorisation "csss-24-123".fields["rr.person"][2]`: "does not list \"/address/municipality\"",
		// Dropping operations an authorisation grants breaks it too.
		`current authorisation "csss-24-123".operations["rr.person"][0]`: `has no operation "read"`,
		`current authorisation "csss-24-123".operations["rr.person"][1]`: `has no operation "correct-address"`,
	}
	for path, msg := range want {
		if !slices.ContainsFunc(ps, func(p apply.Problem) bool { return p.Path == path && strings.Contains(p.Message, msg) }) {
			t.Errorf("missing problem %s: %s", path, msg)
		}
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}

	// Problems the registers already have are not blamed on the file.
	current.Services[0].Classification = 9
	if err := apply.Validate(parse(t, "participants:\n  - {id: new, name: New, kind: institution, status: active}\n"), current, nil); err != nil {
		t.Errorf("pre-existing problem blamed on the file: %v", err)
	}
}

func TestApplySample(t *testing.T) {
	s := newStore(t)
	desired := sample(t)
	plan, err := apply.Apply(ctx, s, desired, personid.INSZ{}, false)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(s.applied) != 1 {
		t.Fatalf("store.Apply called %d times, want 1", len(s.applied))
	}
	for _, c := range plan.Changes {
		if c.Action != apply.Create {
			t.Errorf("%s %s: %s, want create", c.Kind, c.ID, c.Action)
		}
	}
	if len(plan.Changes) != 6+3+2+6 {
		t.Errorf("plan has %d changes, want 17", len(plan.Changes))
	}
	if desired.Integrations[1].Person != "92.02.14-145.23" {
		t.Error("Apply modified the caller's network")
	}
	got, err := s.Registers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Participants) != 6 || len(got.Services) != 3 || len(got.Authorisations) != 2 {
		t.Errorf("registers after apply: %+v", got)
	}
	ins, err := s.Integrations(ctx, "ocmw-gent", "92021414523")
	if err != nil || len(ins) != 1 || !ins[0].To.Equal(time.Date(2025, 7, 10, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("integration stored in canonical form: %+v, %v", ins, err)
	}
	if s := plan.String(); !strings.Contains(s, "+ participant rr\n") || !strings.Contains(s, "+ authorisation csss-24-123\n") ||
		!strings.Contains(s, "+ integration ocmw-gent 17/applicant 92021414523 from 2025-01-10\n") {
		t.Errorf("plan rendering:\n%s", s)
	}
}

func TestApplyTwiceIsNoop(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Apply(ctx, s, sample(t), nil, false); err != nil {
		t.Fatal(err)
	}
	plan, err := apply.Apply(ctx, s, sample(t), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.HasChanges() {
		t.Errorf("second apply has changes:\n%s", plan)
	}
	if len(s.applied) != 1 {
		t.Errorf("store.Apply called %d times, want 1", len(s.applied))
	}
	if got := plan.String(); got != "no changes (17 unchanged)\n" {
		t.Errorf("plan of a no-op = %q", got)
	}
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Apply(ctx, s, sample(t), nil, false); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Registers(ctx)
	bad := sample(t)
	bad.Participants[2].Name = "changed" // a valid change among invalid ones
	bad.Participants[3].Kind = "agency"
	bad.Services[0].BaseURL = "http://api.rr.example.be"
	bad.Authorisations[0].Purposes = append(bad.Authorisations[0].Purposes, "Marketing")
	bad.Authorisations[1].Services[0] = "rsz.unknown"
	bad.Integrations[2].Person = "12345678901"
	plan, err := apply.Apply(ctx, s, bad, nil, false)
	var ps apply.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Apply = %v, want Problems", err)
	}
	if plan.HasChanges() {
		t.Error("invalid apply returned a plan with changes")
	}
	wantPaths := []string{"participants[3].kind", "services[0].baseUrl", "authorisations[0].purposes[1]",
		"authorisations[1].services[0]", `authorisations[1].fields["rsz.employment"]`, "integrations[2].person"}
	var gotPaths []string
	for _, p := range ps {
		gotPaths = append(gotPaths, p.Path)
	}
	if !slices.Equal(gotPaths, wantPaths) {
		t.Errorf("problem paths = %q\nwant %q\n%v", gotPaths, wantPaths, err)
	}
	for _, p := range wantPaths {
		if !strings.Contains(err.Error(), p+": ") {
			t.Errorf("error text does not list %s", p)
		}
	}
	if len(s.applied) != 1 {
		t.Errorf("store.Apply called %d times, want 1 (the first apply)", len(s.applied))
	}
	after, _ := s.Registers(ctx)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("registers changed by an invalid apply:\n%+v\nwas\n%+v", after, before)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	s := newStore(t)
	plan, err := apply.Apply(ctx, s, sample(t), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.HasChanges() || len(plan.Network().Participants) != 6 {
		t.Errorf("dry-run plan: %+v", plan)
	}
	if len(s.applied) != 0 {
		t.Errorf("dry run called store.Apply %d times", len(s.applied))
	}
	got, _ := s.Registers(ctx)
	ins, _ := s.Integrations(ctx, "", "")
	if len(got.Participants)+len(got.Services)+len(got.Authorisations)+len(ins) != 0 {
		t.Errorf("dry run wrote: %+v %v", got, ins)
	}
}

func TestDiffUpdate(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Apply(ctx, s, sample(t), nil, false); err != nil {
		t.Fatal(err)
	}
	next := sample(t)
	next.Authorisations[0].ValidTo = time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)
	next.Authorisations[0].Purposes = append(next.Authorisations[0].Purposes, "social-integration.review")
	next.Authorisations[0].Limits.Burst = 80
	next.Participants[1].Status = crossroads.StatusSuspended
	next.Integrations[0].To = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	next.Services = append(next.Services, crossroads.Service{ID: "rr.household", Provider: "rr", BaseURL: "https://api.rr.example.be/v1/households", Classification: 2, Fields: []string{"/members"}})

	dry, err := apply.Apply(ctx, s, next, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	want := `! services[3].operations: service "rr.household" declares no operations: it cannot be called until it does
~ participant rsz: status "active" → "suspended"
+ service rr.household
~ authorisation csss-24-123: purposes ["social-integration.eligibility"] → ["social-integration.eligibility", "social-integration.review"]
~ authorisation csss-24-123: validTo 2027-03-01 → 2028-03-01
~ authorisation csss-24-123: limits {ratePerSecond: 20, burst: 40, maxConcurrent: 8} → {ratePerSecond: 20, burst: 80, maxConcurrent: 8}
~ integration ocmw-gent 17/social-integration-beneficiary 85073003328 from 2024-04-01: to none → 2026-01-01
= 14 unchanged
`
	if got := dry.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	plan, err := apply.Apply(ctx, s, next, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if plan.String() != want {
		t.Errorf("applied plan differs from dry run:\n%s", plan)
	}
	w := s.applied[len(s.applied)-1]
	if len(w.Participants) != 1 || len(w.Services) != 1 || len(w.Authorisations) != 1 || len(w.Integrations) != 1 {
		t.Errorf("wrote %d participants, %d services, %d authorisations, %d integrations; want only the 4 changed entries",
			len(w.Participants), len(w.Services), len(w.Authorisations), len(w.Integrations))
	}
	if again, err := apply.Apply(ctx, s, next, nil, false); err != nil || again.HasChanges() {
		t.Errorf("re-applying the updated file: %v\n%s", err, again)
	}
}

// TestNoPruning: entries missing from the file stay.
func TestNoPruning(t *testing.T) {
	s := newStore(t)
	if _, err := apply.Apply(ctx, s, sample(t), nil, false); err != nil {
		t.Fatal(err)
	}
	small := parse(t, "participants:\n  - {id: dpa, name: Data Protection Authority, kind: auditor, status: active}\n")
	plan, err := apply.Apply(ctx, s, small, nil, false)
	if err != nil || plan.HasChanges() {
		t.Fatalf("apply subset: %v %s", err, plan)
	}
	got, _ := s.Registers(ctx)
	ins, _ := s.Integrations(ctx, "", "")
	if len(got.Participants) != 6 || len(got.Services) != 3 || len(got.Authorisations) != 2 || len(ins) != 6 {
		t.Errorf("entries were pruned: %d/%d/%d/%d", len(got.Participants), len(got.Services), len(got.Authorisations), len(ins))
	}
}
