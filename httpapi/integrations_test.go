package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var (
	ctx    = context.Background()
	now    = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	person = personid.Make("850730", 33, false)
)

// fakeAudit is the audit trail: outside this package.
type fakeAudit struct {
	mu   sync.Mutex
	recs []crossroads.AuditRecord
	down bool
}

func (f *fakeAudit) Commit(_ context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return crossroads.Receipt{}, errors.New("audit store down")
	}
	f.recs = append(f.recs, *rec)
	return crossroads.Receipt{ExchangeID: rec.ExchangeID, Token: "receipt-" + rec.ExchangeID}, nil
}

func (f *fakeAudit) records() []crossroads.AuditRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]crossroads.AuditRecord(nil), f.recs...)
}

func testNetwork() *crossroads.Network {
	return &crossroads.Network{
		Participants: []crossroads.Participant{
			{ID: "ops", Name: "Ops", Kind: crossroads.KindOperator, Status: crossroads.StatusActive},
			{ID: "dpa", Name: "DPA", Kind: crossroads.KindAuditor, Status: crossroads.StatusActive},
			{ID: "inst", Name: "Institution", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "other", Name: "Other", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive},
			{ID: "rr", Name: "RR", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
		},
		Services: []crossroads.Service{{ID: "person", Provider: "rr", BaseURL: "https://rr.example", Fields: []string{"/name"}, Subject: crossroads.SubjectPerson,
			Operations: []crossroads.Operation{{ID: "read", Method: "GET", Path: "/{subject}"}}}},
		Authorisations: []crossroads.Authorisation{{
			ID: "a1", Reference: "CSSS/1", Grantee: "inst", Services: []string{"person"}, Purposes: []string{"aid"},
			Capacities: []crossroads.Capacity{{Sector: "17", Code: "beneficiary"}, {Sector: "17", Code: "employer", Kind: crossroads.SubjectEnterprise}},
			ValidFrom:  now.AddDate(-1, 0, 0), Status: crossroads.StatusActive,
		}},
	}
}

type fixture struct {
	api   *API
	dir   *directory.Directory
	store *sqlite.Registers
	audit *fakeAudit
}

func newFixture(t testing.TB, mutate func(*Config)) *fixture {
	t.Helper()
	store, err := sqlite.OpenRegisters(ctx, filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := apply.Apply(ctx, store, testNetwork(), nil, false); err != nil {
		t.Fatal(err)
	}
	dir, err := directory.Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAudit{}
	cfg := Config{Directory: dir, Scheme: personid.INSZ{}, Audit: fa, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mutate != nil {
		mutate(&cfg)
	}
	return &fixture{api: New(cfg), dir: dir, store: store, audit: fa}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call runs handler h as participant as, with the user header (if not
// empty), as the router would after authentication.
func (f *fixture) call(h http.HandlerFunc, method, target, as, usr, body string) response {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if usr != "" {
		req.Header.Set(headerUser, usr)
	}
	p, _ := f.dir.Participant(as)
	req = req.WithContext(crossroads.WithCaller(req.Context(), p))
	w := httptest.NewRecorder()
	h(w, req)
	r := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	json.Unmarshal(w.Body.Bytes(), &r.body)
	return r
}

func (f *fixture) put(as, body string) response {
	return f.call(f.api.putIntegration, "PUT", "/v1/integrations", as, "agent-1", body)
}

func (f *fixture) del(as, body string) response {
	return f.call(f.api.deleteIntegration, "DELETE", "/v1/integrations", as, "agent-1", body)
}

func (f *fixture) files(t *testing.T) []crossroads.Integration {
	t.Helper()
	ins, err := f.store.Integrations(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

func (f *fixture) history(t *testing.T) []crossroads.IntegrationEvent {
	t.Helper()
	h, err := f.store.IntegrationHistory(ctx, crossroads.HistoryQuery{Participant: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func fileBody(extra string) string {
	return `{"person":"` + person + `","sector":"17","capacity":"beneficiary"` + extra + `}`
}

func wantProblem(t *testing.T, r response, status int, reason crossroads.Reason) {
	t.Helper()
	if r.status != status || r.body["reason"] != string(reason) {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, reason)
	}
}

// TestIntegrationLifecycle: register, correct and end are each an audited
// event with the natural person, the subject and the period; ending keeps
// the file with its period closed; the history keeps every version.
func TestIntegrationLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	from := now.Add(time.Hour).Format(time.RFC3339)
	r := f.put("inst", fileBody(`,"from":"`+from+`"`))
	if r.status != http.StatusCreated || r.body["action"] != "register" || r.header.Get("Crossroads-Receipt") == "" {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	if r := f.put("inst", fileBody(`,"from":"`+from+`"`)); r.status != 200 || r.body["changed"] != false {
		t.Fatalf("same again: %d %s", r.status, r.raw)
	}
	to := now.AddDate(1, 0, 0).Format(time.RFC3339)
	if r := f.put("inst", fileBody(`,"from":"`+from+`","to":"`+to+`"`)); r.status != 200 || r.body["action"] != "correct" {
		t.Fatalf("correct: %d %s", r.status, r.raw)
	}
	// Not started yet: it cannot be ended, only corrected.
	wantProblem(t, f.del("inst", fileBody(`,"from":"`+from+`"`)), http.StatusConflict, ReasonIntegrationNotStarted)

	// A file that has started is ended now, not removed.
	started := now.Format(time.RFC3339)
	if r := f.put("inst", fileBody(`,"from":"`+started+`"`)); r.status != http.StatusCreated {
		t.Fatalf("register started: %d %s", r.status, r.raw)
	}
	f.api.cfg.Now = func() time.Time { return now.Add(time.Minute) }
	if r := f.del("inst", fileBody(`,"from":"`+started+`"`)); r.status != 200 || r.body["action"] != "end" {
		t.Fatalf("end: %d %s", r.status, r.raw)
	}
	wantProblem(t, f.del("inst", fileBody(`,"from":"`+started+`"`)), http.StatusConflict, ReasonIntegrationEnded)
	wantProblem(t, f.del("inst", fileBody(`,"from":"2020-01-01T00:00:00Z"`)), http.StatusNotFound, "not-found")

	files := f.files(t)
	if len(files) != 2 {
		t.Fatalf("files: %+v, want both kept", files)
	}
	for _, in := range files {
		if in.From.Equal(now) && !in.To.Equal(now.Add(time.Minute)) {
			t.Errorf("ended file: %+v, want to = the time of the DELETE", in)
		}
	}
	// The decision's view follows: the ended file is no longer active.
	for _, in := range f.dir.Integrations(person, "inst") {
		if in.From.Equal(now) && in.ActiveAt(now.Add(time.Minute)) {
			t.Errorf("ended file still active: %+v", in)
		}
	}

	recs := f.audit.records()
	var actions []string
	for _, rec := range recs {
		actions = append(actions, rec.Action)
		if rec.Kind != crossroads.RecordIntegration || rec.Requester != "inst" || rec.User != "agent-1" ||
			rec.Subject != person || rec.SubjectKind != crossroads.SubjectPerson || rec.Outcome != crossroads.OutcomeAllowed || rec.ExchangeID == "" {
			t.Errorf("record %+v", rec)
		}
		var d map[string]any
		if err := json.Unmarshal(rec.Detail, &d); err != nil || d["sector"] != "17" || d["capacity"] != "beneficiary" || d["from"] == nil || d["participant"] != "inst" {
			t.Errorf("record detail %s: %v", rec.Detail, err)
		}
	}
	if strings.Join(actions, ",") != "register,correct,register,end" {
		t.Errorf("audited actions %v", actions)
	}
	var hist []string
	for _, ev := range f.history(t) {
		hist = append(hist, ev.Action+"/"+ev.Actor+"/"+ev.User)
	}
	// The apply of the fixture wrote no integration; the API wrote four changes.
	if strings.Join(hist, ",") != "register/inst/agent-1,correct/inst/agent-1,register/inst/agent-1,end/inst/agent-1" {
		t.Errorf("history %v", hist)
	}
}

// TestIntegrationBackdating: from may not lie before now minus the
// tolerance unless an operator makes the change.
func TestIntegrationBackdating(t *testing.T) {
	f := newFixture(t, nil)
	past := now.Add(-time.Hour).Format(time.RFC3339)
	wantProblem(t, f.put("inst", fileBody(`,"from":"`+past+`"`)), http.StatusBadRequest, ReasonBackdated)
	if len(f.files(t)) != 0 || len(f.audit.records()) != 0 {
		t.Fatal("a refused backdating wrote or recorded something")
	}
	// An operator may, on behalf of the participant.
	r := f.call(f.api.putIntegration, "PUT", "/v1/integrations", "ops", "operator-1", fileBody(`,"from":"`+past+`","participant":"inst"`))
	if r.status != http.StatusCreated {
		t.Fatalf("operator backdating: %d %s", r.status, r.raw)
	}
	if recs := f.audit.records(); len(recs) != 1 || recs[0].Requester != "ops" || !strings.Contains(string(recs[0].Detail), `"participant":"inst"`) {
		t.Errorf("operator's record: %+v", recs)
	}
	// Ending a file retroactively is backdating too.
	to := now.Add(-time.Minute).Format(time.RFC3339)
	wantProblem(t, f.put("inst", fileBody(`,"from":"`+past+`","to":"`+to+`"`)), http.StatusBadRequest, ReasonBackdated)
	// Others may not act for a participant.
	wantProblem(t, f.call(f.api.putIntegration, "PUT", "/v1/integrations", "other", "x", fileBody(`,"participant":"inst"`)), http.StatusForbidden, "forbidden")

	// A start defaulted to now, within the current second, is not backdated.
	h := newFixture(t, func(c *Config) { c.Now = func() time.Time { return now.Add(700 * time.Millisecond) } })
	if r := h.put("inst", fileBody("")); r.status != http.StatusCreated {
		t.Fatalf("from defaulted to now: %d %s", r.status, r.raw)
	}
	// With a tolerance, a recent start is accepted.
	g := newFixture(t, func(c *Config) { c.IntegrationBackdate = 2 * time.Hour })
	if r := g.put("inst", fileBody(`,"from":"`+past+`"`)); r.status != http.StatusCreated {
		t.Fatalf("within the tolerance: %d %s", r.status, r.raw)
	}
	wantProblem(t, g.put("inst", fileBody(`,"from":"`+now.Add(-3*time.Hour).Format(time.RFC3339)+`"`)), http.StatusBadRequest, ReasonBackdated)
}

// TestIntegrationAuditOutage: if the trail cannot record the change, it is
// refused and nothing is written.
func TestIntegrationAuditOutage(t *testing.T) {
	f := newFixture(t, nil)
	f.audit.down = true
	wantProblem(t, f.put("inst", fileBody("")), http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable)
	if len(f.files(t)) != 0 || len(f.history(t)) != 0 || len(f.dir.Integrations(person, "inst")) != 0 {
		t.Fatal("a change was written without its record")
	}
	f.audit.down = false
	if r := f.put("inst", fileBody("")); r.status != http.StatusCreated {
		t.Fatal(r.raw)
	}
	f.audit.down = true
	f.api.cfg.Now = func() time.Time { return now.Add(time.Hour) }
	wantProblem(t, f.del("inst", fileBody(`,"from":"`+now.Format(time.RFC3339)+`"`)), http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable)
	if files := f.files(t); len(files) != 1 || !files[0].To.IsZero() {
		t.Fatalf("an end was written without its record: %+v", files)
	}
	// Without a trail at all, changes are refused.
	g := newFixture(t, func(c *Config) { c.Audit = nil })
	wantProblem(t, g.put("inst", fileBody("")), http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable)
}

// TestIntegrationWriteFailure: a change recorded but not written gets a
// second record, outcome failed, naming the first.
func TestIntegrationWriteFailure(t *testing.T) {
	f := newFixture(t, nil)
	f.store.Close()
	wantProblem(t, f.put("inst", fileBody("")), http.StatusServiceUnavailable, ReasonStoreUnavailable)
	recs := f.audit.records()
	if len(recs) != 2 || recs[0].Outcome != crossroads.OutcomeAllowed || recs[1].Outcome != crossroads.OutcomeFailed ||
		recs[1].CorrelationID != recs[0].ExchangeID || recs[1].Reason != ReasonStoreUnavailable {
		t.Errorf("records: %+v", recs)
	}
}

func TestIntegrationInput(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call(f.api.putIntegration, "PUT", "/v1/integrations", "inst", "", fileBody(""))
	wantProblem(t, r, http.StatusBadRequest, crossroads.ReasonMissingUser)
	r = f.call(f.api.putIntegration, "PUT", "/v1/integrations", "inst", "bad\x01user", fileBody(""))
	wantProblem(t, r, http.StatusBadRequest, crossroads.ReasonInvalidHeader)
	// A capacity none of the participant's authorisations names.
	r = f.put("inst", `{"person":"`+person+`","sector":"17","capacity":"applicant"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	if !strings.Contains(r.raw, "holds no authorisation naming capacity 17/applicant") {
		t.Errorf("problems: %s", r.raw)
	}
	wantProblem(t, f.put("inst", `{"person":"123","sector":"17","capacity":"beneficiary"}`), http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	// Enterprises: any spelling of a valid CBE number, in a capacity held for enterprises.
	r = f.put("inst", `{"kind":"enterprise","person":"BE 0403.170.701","sector":"17","capacity":"employer"}`)
	if r.status != http.StatusCreated || !strings.Contains(r.raw, `"person":"0403170701"`) || !strings.Contains(r.raw, `"kind":"enterprise"`) {
		t.Fatalf("enterprise: %d %s", r.status, r.raw)
	}
	if recs := f.audit.records(); recs[len(recs)-1].SubjectKind != crossroads.SubjectEnterprise || recs[len(recs)-1].Subject != "0403170701" {
		t.Errorf("enterprise record %+v", recs[len(recs)-1])
	}
	if got := f.dir.Integrations(crossroads.SubjectKey(crossroads.SubjectEnterprise, "0403170701"), "inst"); len(got) != 1 {
		t.Errorf("directory: %v", got)
	}
	wantProblem(t, f.put("inst", `{"kind":"enterprise","person":"0403.170.702","sector":"17","capacity":"employer"}`), http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	wantProblem(t, f.put("inst", `{"kind":"enterprise","person":"0403170701","sector":"17","capacity":"beneficiary"}`), http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	wantProblem(t, f.put("inst", `{"kind":"animal","person":"x","sector":"17","capacity":"beneficiary"}`), http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	// Listing by kind.
	l := f.call(f.api.listIntegrations, "GET", "/v1/integrations?kind=enterprise&person=BE0403170701", "inst", "", "")
	if l.status != 200 || len(l.body["integrations"].([]any)) != 1 {
		t.Errorf("list by kind: %s", l.raw)
	}
}

// TestIntegrationRateLimit: the API is rate-limited per participant.
func TestIntegrationRateLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.IntegrationLimits = &crossroads.Limits{RatePerSecond: 1, Burst: 2} })
	for i := range 2 {
		if r := f.put("inst", fileBody(`,"from":"`+now.Add(time.Duration(i+1)*time.Hour).Format(time.RFC3339)+`"`)); r.status != http.StatusCreated {
			t.Fatalf("call %d: %s", i, r.raw)
		}
	}
	r := f.put("inst", fileBody(`,"from":"`+now.Add(3*time.Hour).Format(time.RFC3339)+`"`))
	wantProblem(t, r, http.StatusTooManyRequests, crossroads.ReasonRateLimited)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Another participant has its own budget.
	if r := f.call(f.api.listIntegrations, "GET", "/v1/integrations", "other", "", ""); r.status != 200 {
		t.Error(r.raw)
	}
	if len(f.files(t)) != 2 || len(f.audit.records()) != 2 {
		t.Error("a limited call wrote or recorded")
	}
}

// raceStore applies a change to the registers through the store (as
// another hub node would) while the first integration change is between
// its validation and its write.
type raceStore struct {
	crossroads.RegisterStore
	once  sync.Once
	other func()
}

func (s *raceStore) ChangeIntegration(ctx context.Context, ev crossroads.IntegrationEvent, v int64) (crossroads.IntegrationEvent, error) {
	s.once.Do(func() {
		done := make(chan struct{})
		go func() { defer close(done); s.other() }()
		<-done
	})
	return s.RegisterStore.ChangeIntegration(ctx, ev, v)
}

// TestIntegrationRacesApply: an apply revoking the capacity commits while a
// registration validated against the old registers is about to be written:
// the write fails on the version, is validated again and refused; the
// registration's record is followed by a failed one.
func TestIntegrationRacesApply(t *testing.T) {
	store, err := sqlite.OpenRegisters(ctx, filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := apply.Apply(ctx, store, testNetwork(), nil, false); err != nil {
		t.Fatal(err)
	}
	rs := &raceStore{RegisterStore: store}
	rs.other = func() {
		a := testNetwork().Authorisations[0]
		a.Status = crossroads.StatusRevoked
		if _, err := apply.Apply(ctx, store, &crossroads.Network{Authorisations: []crossroads.Authorisation{a}}, nil, false); err != nil {
			t.Error(err)
		}
	}
	dir, err := directory.Open(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAudit{}
	f := &fixture{api: New(Config{Directory: dir, Scheme: personid.INSZ{}, Audit: fa, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}), dir: dir, store: store, audit: fa}
	wantProblem(t, f.put("inst", fileBody("")), http.StatusUnprocessableEntity, ReasonInvalidIntegration)
	if len(f.files(t)) != 0 {
		t.Fatal("an integration was written in a capacity no longer authorised")
	}
	if recs := fa.records(); len(recs) != 2 || recs[1].Outcome != crossroads.OutcomeFailed {
		t.Errorf("records: %+v", recs)
	}
}

// TestIntegrationHistoryAPI: auditors page through the history; the
// search is itself recorded.
func TestIntegrationHistoryAPI(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 3 {
		if r := f.put("inst", fileBody(`,"from":"`+now.Add(time.Duration(i+1)*time.Hour).Format(time.RFC3339)+`"`)); r.status != http.StatusCreated {
			t.Fatal(r.raw)
		}
	}
	h := f.api.integrationHistory
	r := f.call(h, "GET", "/v1/audit/integrations?person="+person+"&limit=2", "dpa", "auditor-1", "")
	if r.status != 200 || len(r.body["events"].([]any)) != 2 || r.body["next"] == nil {
		t.Fatalf("first page: %d %s", r.status, r.raw)
	}
	r = f.call(h, "GET", "/v1/audit/integrations?person="+person+"&limit=2&after="+r.body["next"].(string), "dpa", "auditor-1", "")
	if r.status != 200 || len(r.body["events"].([]any)) != 1 || r.body["next"] != nil {
		t.Fatalf("second page: %d %s", r.status, r.raw)
	}
	r = f.call(h, "GET", "/v1/audit/integrations?participant=other", "ops", "operator-1", "")
	if r.status != 200 || len(r.body["events"].([]any)) != 0 {
		t.Fatalf("another participant: %s", r.raw)
	}
	recs := f.audit.records()
	last := recs[len(recs)-1]
	if last.Kind != crossroads.RecordAuditSearch || last.Requester != "ops" || last.User != "operator-1" {
		t.Errorf("search record %+v", last)
	}
	if r := recs[len(recs)-2]; r.Subject != person || r.SubjectKind != crossroads.SubjectPerson {
		t.Errorf("search by person record %+v", r)
	}
	wantProblem(t, f.call(h, "GET", "/v1/audit/integrations?person=123", "dpa", "a", ""), http.StatusBadRequest, crossroads.ReasonInvalidSubject)
	wantProblem(t, f.call(h, "GET", "/v1/audit/integrations?limit=0", "dpa", "a", ""), http.StatusBadRequest, crossroads.ReasonInvalidParameter)
	wantProblem(t, f.call(h, "GET", "/v1/audit/integrations?after=x", "dpa", "a", ""), http.StatusBadRequest, crossroads.ReasonInvalidParameter)
	wantProblem(t, f.call(h, "GET", "/v1/audit/integrations", "dpa", "", ""), http.StatusBadRequest, crossroads.ReasonMissingUser)
	f.audit.down = true
	wantProblem(t, f.call(h, "GET", "/v1/audit/integrations", "dpa", "a", ""), http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable)
}

// TestApplyETag: the admin apply carries the registers' version; If-Match
// makes it conditional.
func TestApplyETag(t *testing.T) {
	f := newFixture(t, nil)
	g := f.call(f.api.getNetwork, "GET", "/v1/admin/network", "ops", "", "")
	tag := g.header.Get("ETag")
	if g.status != 200 || tag == "" {
		t.Fatalf("GET network: %d, ETag %q", g.status, tag)
	}
	file := "participants:\n  - {id: new, name: New, kind: institution, status: active}\n"
	post := func(ifMatch, body string) response {
		req := httptest.NewRequest("POST", "/v1/admin/apply", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/yaml")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		p, _ := f.dir.Participant("ops")
		req = req.WithContext(crossroads.WithCaller(req.Context(), p))
		w := httptest.NewRecorder()
		f.api.postApply(w, req)
		r := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
		json.Unmarshal(w.Body.Bytes(), &r.body)
		return r
	}
	r := post(tag, file)
	if r.status != 200 || r.header.Get("ETag") == tag || r.header.Get("ETag") == "" {
		t.Fatalf("apply with the current ETag: %d %s (ETag %q)", r.status, r.raw, r.header.Get("ETag"))
	}
	newTag := r.header.Get("ETag")
	r = post(tag, "participants:\n  - {id: late, name: Late, kind: institution, status: active}\n")
	wantProblem(t, r, http.StatusPreconditionFailed, ReasonVersionMismatch)
	if r.header.Get("ETag") != newTag {
		t.Errorf("412 carries ETag %q, want the current %q", r.header.Get("ETag"), newTag)
	}
	if _, ok := f.dir.Participant("late"); ok {
		t.Error("a refused apply wrote")
	}
	wantProblem(t, post(`W/"x"`, file), http.StatusBadRequest, crossroads.ReasonInvalidHeader)
	if r := post("*", file); r.status != 200 {
		t.Errorf("If-Match *: %d %s", r.status, r.raw)
	}
	// The last operator cannot be suspended.
	r = post("", "participants:\n  - {id: ops, name: Ops, kind: operator, status: suspended}\n")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.raw, "no active operator") {
		t.Errorf("suspending the last operator: %d %s", r.status, r.raw)
	}
	// Warnings are returned.
	r = post("", "services:\n  - {id: ref, provider: rr, baseUrl: \"https://rr.example/ref\", classification: 0, subject: none}\n")
	if r.status != 200 || !strings.Contains(r.raw, "declares no operations") {
		t.Errorf("warnings: %d %s", r.status, r.raw)
	}
}

// TestPublicRegisters: the public catalogue names each service's subject
// kind and operations; the public authorisations the operations granted.
func TestPublicRegisters(t *testing.T) {
	f := newFixture(t, nil)
	r := f.call(f.api.listServices, "GET", "/v1/services", "inst", "", "")
	if r.status != 200 || !strings.Contains(r.raw, `"subject":"person"`) || !strings.Contains(r.raw, `"operations":[{"id":"read","method":"GET","path":"/{subject}"}]`) ||
		strings.Contains(r.raw, "rr.example") {
		t.Errorf("services: %s", r.raw)
	}
	a := testNetwork().Authorisations[0]
	a.Operations = map[string][]string{"person": {"read"}}
	if err := f.dir.Store().Apply(ctx, &crossroads.Network{Authorisations: []crossroads.Authorisation{a}}); err != nil {
		t.Fatal(err)
	}
	r = f.call(f.api.listAuthorisations, "GET", "/v1/authorizations", "inst", "", "")
	if r.status != 200 || !strings.Contains(r.raw, `"operations":{"person":["read"]}`) {
		t.Errorf("authorisations: %s", r.raw)
	}
}

// FuzzIfMatch: the If-Match parser accepts exactly the entity tags etag
// writes (and * or nothing), never panics.
func FuzzIfMatch(f *testing.F) {
	for _, s := range []string{"", "*", `"1"`, `"42"`, ` "7" `, `W/"1"`, `"0"`, `"-1"`, `"x"`, `"`, `""`, `"9223372036854775808"`, `"1", "2"`, `"01"`, `"+1"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := ifMatch(s)
		if !ok {
			return
		}
		h := strings.TrimSpace(s)
		if v == 0 && h != "" && h != "*" || v != 0 && etag(v) != h {
			t.Fatalf("ifMatch(%q) = %d", s, v)
		}
	})
}

// TestApplyErrors: how the apply's failures are answered.
func TestApplyErrors(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct {
		err    error
		status int
		reason crossroads.Reason
	}{
		{apply.ErrPrecondition, http.StatusPreconditionFailed, ReasonVersionMismatch},
		{crossroads.ErrStale, http.StatusConflict, ReasonConcurrentChange},
		{apply.Problems{{Path: "participants[0].id", Message: "required"}}, http.StatusUnprocessableEntity, "invalid-network"},
		{errors.New("disk on fire"), http.StatusServiceUnavailable, ReasonStoreUnavailable},
	} {
		w := httptest.NewRecorder()
		f.api.applyError(w, c.err)
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != c.status || body["reason"] != string(c.reason) || strings.Contains(w.Body.String(), "disk on fire") {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
	}
}

// TestApplyETagFromAnotherNode: an If-Match naming a version another hub
// node wrote (this node's snapshot is behind) is judged against the store.
func TestApplyETagFromAnotherNode(t *testing.T) {
	f := newFixture(t, nil)
	// Another node applies straight to the shared store.
	if _, err := apply.Apply(ctx, f.store, &crossroads.Network{Participants: []crossroads.Participant{{ID: "n2", Name: "N2", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}}}, nil, false); err != nil {
		t.Fatal(err)
	}
	n, _ := f.store.Registers(ctx)
	if f.dir.Current().Version() == n.Version {
		t.Fatal("this node is not behind")
	}
	req := httptest.NewRequest("POST", "/v1/admin/apply", strings.NewReader("participants:\n  - {id: n3, name: N3, kind: institution, status: active}\n"))
	req.Header.Set("If-Match", etag(n.Version))
	p, _ := f.dir.Participant("ops")
	w := httptest.NewRecorder()
	f.api.postApply(w, req.WithContext(crossroads.WithCaller(req.Context(), p)))
	if w.Code != 200 {
		t.Errorf("If-Match of the other node's version: %d %s", w.Code, w.Body)
	}
}

// applyRaceStore lets another writer apply to the shared store just before
// the first write of the API's apply.
type applyRaceStore struct {
	crossroads.RegisterStore
	once  sync.Once
	other func()
}

func (s *applyRaceStore) Apply(ctx context.Context, n *crossroads.Network) error {
	s.once.Do(s.other)
	return s.RegisterStore.Apply(ctx, n)
}

// TestApplyRacesAnotherWriter: the admin apply loses the race to another
// node's apply: without If-Match it is planned and validated again (and,
// here, refused: together they would leave no operator); with If-Match it
// is 412.
func TestApplyRacesAnotherWriter(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		store, err := sqlite.OpenRegisters(ctx, filepath.Join(t.TempDir(), "registers.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		n := testNetwork()
		n.Participants = append(n.Participants, crossroads.Participant{ID: "ops2", Name: "Ops 2", Kind: crossroads.KindOperator, Status: crossroads.StatusActive})
		if _, err := apply.Apply(ctx, store, n, nil, false); err != nil {
			t.Fatal(err)
		}
		rs := &applyRaceStore{RegisterStore: store, other: func() {
			done := make(chan error)
			go func() {
				_, err := apply.Apply(ctx, store, parseFile(t, "participants:\n  - {id: ops2, name: Ops 2, kind: operator, status: suspended}\n"), nil, false)
				done <- err
			}()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}}
		dir, err := directory.Open(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		api := New(Config{Directory: dir, Scheme: personid.INSZ{}, Audit: &fakeAudit{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		req := httptest.NewRequest("POST", "/v1/admin/apply", strings.NewReader("participants:\n  - {id: ops, name: Ops, kind: operator, status: suspended}\n"))
		if pinned {
			req.Header.Set("If-Match", etag(dir.Current().Version()))
		}
		p, _ := dir.Participant("ops2")
		w := httptest.NewRecorder()
		api.postApply(w, req.WithContext(crossroads.WithCaller(req.Context(), p)))
		switch {
		case pinned && w.Code != http.StatusPreconditionFailed:
			t.Errorf("pinned: %d %s", w.Code, w.Body)
		case !pinned && (w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "no active operator")):
			t.Errorf("revalidated: %d %s", w.Code, w.Body)
		}
		regs, _ := store.Registers(ctx)
		for _, p := range regs.Participants {
			if p.ID == "ops" && p.Status != crossroads.StatusActive {
				t.Errorf("pinned=%v: the losing apply was written", pinned)
			}
		}
	}
}

func parseFile(t *testing.T, s string) *crossroads.Network {
	t.Helper()
	n, err := apply.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
