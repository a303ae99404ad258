package batch_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// fakeAudit records events; fail makes Commit fail.
type fakeAudit struct {
	mu   sync.Mutex
	recs []crossroads.AuditRecord
	fail atomic.Bool
}

func (a *fakeAudit) Commit(_ context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	if a.fail.Load() {
		return crossroads.Receipt{}, errors.New("audit down")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, *rec)
	return crossroads.Receipt{ExchangeID: rec.ExchangeID, Token: "receipt-" + rec.ExchangeID}, nil
}

func (a *fakeAudit) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		out = append(out, r.Action)
	}
	return out
}

// fakePipeline answers every item allowed, counting concurrency per
// requester and per service; notRecorded makes the first attempt of the
// items it names fail with ErrNotRecorded.
type fakePipeline struct {
	mu          sync.Mutex
	inFlight    map[string]int
	maxInFlight map[string]int
	calls       atomic.Int64
	notRecorded sync.Map // path → bool (first attempt)
	hold        chan struct{}
}

func (p *fakePipeline) Do(ctx context.Context, req exchange.Request) (exchange.Result, error) {
	p.calls.Add(1)
	if req.Caller == nil || req.TLS != nil {
		return exchange.Result{}, errors.New("no caller")
	}
	keys := []string{"caller:" + req.Caller.Subject.CommonName, "service:" + req.Service}
	p.mu.Lock()
	for _, k := range keys {
		p.inFlight[k]++
		p.maxInFlight[k] = max(p.maxInFlight[k], p.inFlight[k])
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for _, k := range keys {
			p.inFlight[k]--
		}
		p.mu.Unlock()
	}()
	if p.hold != nil {
		<-p.hold
	}
	if _, first := p.notRecorded.LoadAndDelete(req.Path); first {
		return exchange.Result{Status: 503, Reason: crossroads.ReasonAuditUnavailable, Outcome: crossroads.OutcomeFailed}, exchange.ErrNotRecorded
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(exchange.HeaderSeal, "seal")
	h.Set(exchange.HeaderReceipt, "receipt")
	return exchange.Result{Status: 200, Header: h, Body: []byte(`{"path":"` + req.Path + `","html":"<b>"}`), ExchangeID: "ex" + req.Path,
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}, nil
}

type directory map[string]*crossroads.Service

func (d directory) Service(id string) (*crossroads.Service, bool) { s, ok := d[id]; return s, ok }

var testDirectory = directory{
	"svc-a": {ID: "svc-a", Provider: "prov-a", Operations: []crossroads.Operation{{ID: "read", Method: "GET", Path: "/x/{subject}"}}},
	"svc-b": {ID: "svc-b", Provider: "prov-a", Operations: []crossroads.Operation{{ID: "read", Method: "GET", Path: "/y/{subject}/{year:int}"}}},
}

type env struct {
	svc   *batch.Service
	store *sqlite.BatchStore
	audit *fakeAudit
	pipe  *fakePipeline
	now   atomic.Int64 // the clock's offset from the real time
	certs map[string]*x509.Certificate
}

func newEnv(t *testing.T, o batch.Options) *env {
	t.Helper()
	st, err := sqlite.OpenBatch(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, audit: &fakeAudit{}, pipe: &fakePipeline{inFlight: map[string]int{}, maxInFlight: map[string]int{}}, certs: map[string]*x509.Certificate{}}
	if o.Poll == 0 {
		o.Poll = 10 * time.Millisecond
	}
	e.svc = batch.New(batch.Config{Store: st, Pipeline: e.pipe, Directory: testDirectory, Audit: e.audit, Options: o,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.now.Load())) }})
	t.Cleanup(func() { e.svc.Close() })
	return e
}

func (e *env) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *env) cert(t *testing.T, who string) *x509.Certificate {
	if c, ok := e.certs[who]; ok {
		return c
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(int64(len(e.certs) + 1)), Subject: pkixName(who), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	e.certs[who] = c
	return c
}

// call serves one request as participant who (kind institution, or the
// kind given after a colon: "dpa:auditor") through the service's routes.
func (e *env) call(t *testing.T, who, method, path, ctype string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	id, kind, ok := strings.Cut(who, ":")
	if !ok {
		kind = crossroads.KindInstitution
	}
	mux := http.NewServeMux()
	for _, r := range e.svc.Routes() {
		if r.Access != httpapi.Participant {
			t.Fatalf("route %s %s: access %v", r.Method, r.Pattern, r.Access)
		}
		mux.Handle(r.Method+" "+r.Pattern, r.Handler)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{e.cert(t, id)}}}
	req = req.WithContext(crossroads.WithCaller(req.Context(), &crossroads.Participant{ID: id, Kind: kind, Status: crossroads.StatusActive}))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func items(n int, f func(i int) string) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func readItem(i int) string {
	return fmt.Sprintf(`{"operation":"svc-a/read","parameters":{"subject":"p%d"},"purpose":"social-aid","user":"u"}`, i)
}

func reason(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var p struct {
		Status   int
		Reason   string
		Problems []struct{ Path, Message string }
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q: %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code {
		t.Fatalf("problem %s: %v", w.Body, err)
	}
	return p.Reason
}

func submit(t *testing.T, e *env, who string, body []byte) batch.Progress {
	t.Helper()
	w := e.call(t, who, "POST", "/v1/batches", batch.ContentType, body)
	if w.Code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", w.Code, w.Body)
	}
	var p batch.Progress
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Location") != "/v1/batches/"+p.ID || p.State != crossroads.BatchRunning || w.Header().Get(exchange.HeaderReceipt) == "" {
		t.Fatalf("submit answer: %v %+v", w.Header(), p)
	}
	return p
}

func await(t *testing.T, e *env, who, id string) batch.Progress {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w := e.call(t, who, "GET", "/v1/batches/"+id, "", nil)
		var p batch.Progress
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != 200 {
			t.Fatalf("status: %d %s", w.Code, w.Body)
		}
		if p.State == crossroads.BatchDone {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done: %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func results(t *testing.T, e *env, who, id string) []crossroads.BatchResult {
	t.Helper()
	w := e.call(t, who, "GET", "/v1/batches/"+id+"/results", "", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != batch.ContentType {
		t.Fatalf("results: %d %s", w.Code, w.Body)
	}
	var out []crossroads.BatchResult
	for _, l := range bytes.Split(bytes.TrimSpace(w.Body.Bytes()), []byte("\n")) {
		var r crossroads.BatchResult
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("result line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// TestRunAndFetch: every item runs once as its submitter, in its own
// exchange, and comes back with its released bytes unchanged; an item
// whose record failed is run again, and still has one result; the fetch is
// recorded first.
func TestRunAndFetch(t *testing.T) {
	e := newEnv(t, batch.Options{})
	e.pipe.notRecorded.Store("/x/p3", true)
	e.run(t)
	p := submit(t, e, "ocmw", items(20, readItem))
	if p.Total != 20 {
		t.Fatalf("total %d", p.Total)
	}
	got := await(t, e, "ocmw", p.ID)
	if got.Done != 20 || got.Allowed != 20 || got.Finished.IsZero() || !got.Expires.Equal(got.Finished.Add(batch.DefaultRetention)) {
		t.Fatalf("progress: %+v", got)
	}
	rs := results(t, e, "ocmw", p.ID)
	if len(rs) != 20 {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		want := fmt.Sprintf(`{"path":"/x/p%d","html":"<b>"}`, i)
		if r.Seq != i+1 || string(r.Body) != want || r.Seal != "seal" || r.Receipt != "receipt" || r.ExchangeID != "ex/x/p"+fmt.Sprint(i) {
			t.Fatalf("result %d: %+v (body %s)", i, r, r.Body)
		}
		if wantAttempts := 1 + btoi(i == 3); r.Attempts != wantAttempts {
			t.Fatalf("result %d: %d attempts, want %d", i, r.Attempts, wantAttempts)
		}
	}
	if n := e.pipe.calls.Load(); n != 21 {
		t.Fatalf("%d pipeline calls for 20 items and one retry", n)
	}
	if a := e.audit.actions(); strings.Join(a, ",") != "submit,fetch" {
		t.Fatalf("audit events %v", a)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAccess: only the submitter reads a batch with its bodies; an auditor
// or operator reads it without them; another participant is told it does
// not exist.
func TestAccess(t *testing.T) {
	e := newEnv(t, batch.Options{})
	e.run(t)
	p := submit(t, e, "ocmw", items(3, readItem))
	await(t, e, "ocmw", p.ID)
	for _, path := range []string{"/v1/batches/" + p.ID, "/v1/batches/" + p.ID + "/results"} {
		w := e.call(t, "onem", "GET", path, "", nil)
		if w.Code != 404 || reason(t, w) != string(crossroads.ReasonBatchNotFound) {
			t.Fatalf("another participant reads %s: %d %s", path, w.Code, w.Body)
		}
	}
	for _, who := range []string{"dpa:auditor", "ops:operator"} {
		rs := results(t, e, who, p.ID)
		if len(rs) != 3 || rs[0].Body != nil || rs[0].BodyBase64 != nil || rs[0].Seal == "" {
			t.Fatalf("%s: %+v", who, rs)
		}
	}
	if w := e.call(t, "ocmw", "GET", "/v1/batches/not-a-uuid", "", nil); w.Code != 404 {
		t.Fatalf("bad id: %d", w.Code)
	}
	if w := e.call(t, "ocmw", "GET", "/v1/batches/"+p.ID+"/results?after=x", "", nil); w.Code != 400 {
		t.Fatalf("bad after: %d", w.Code)
	}
	if rs := e.call(t, "ocmw", "GET", "/v1/batches/"+p.ID+"/results?after=2", "", nil); strings.Count(rs.Body.String(), "\n") != 1 {
		t.Fatalf("after=2: %s", rs.Body)
	}
}

// TestRetention: results are erased after the retention period, the
// erasure recorded, and readers get 410.
func TestRetention(t *testing.T) {
	e := newEnv(t, batch.Options{Retention: time.Hour})
	e.run(t)
	p := submit(t, e, "ocmw", items(2, readItem))
	await(t, e, "ocmw", p.ID)
	e.svc.Expire(context.Background())
	if w := e.call(t, "ocmw", "GET", "/v1/batches/"+p.ID, "", nil); w.Code != 200 {
		t.Fatalf("before expiry: %d", w.Code)
	}
	e.now.Add(int64(time.Hour + time.Second))
	e.svc.Expire(context.Background())
	for _, path := range []string{"/v1/batches/" + p.ID, "/v1/batches/" + p.ID + "/results"} {
		w := e.call(t, "ocmw", "GET", path, "", nil)
		if w.Code != http.StatusGone || reason(t, w) != string(crossroads.ReasonBatchExpired) {
			t.Fatalf("%s after expiry: %d %s", path, w.Code, w.Body)
		}
	}
	if rs, _ := e.store.Results(context.Background(), p.ID, 0, 10); len(rs) != 0 {
		t.Fatalf("results kept after expiry: %d", len(rs))
	}
	if a := e.audit.actions(); a[len(a)-1] != "expire" {
		t.Fatalf("expiry not recorded: %v", a)
	}
	// The erasure refuses to run without its record.
	p2 := submit(t, e, "ocmw", items(1, readItem))
	await(t, e, "ocmw", p2.ID)
	e.now.Add(int64(2 * time.Hour))
	e.audit.fail.Store(true)
	e.svc.Expire(context.Background())
	e.audit.fail.Store(false)
	if rs, _ := e.store.Results(context.Background(), p2.ID, 0, 10); len(rs) != 1 {
		t.Fatal("results erased without a record")
	}
}

// TestBadSubmissions: each refusal is a documented problem and stores
// nothing (no batch runnable, no submission recorded).
func TestBadSubmissions(t *testing.T) {
	e := newEnv(t, batch.Options{MaxItems: 5, MaxBytes: 4096})
	ok := readItem(1)
	tests := []struct {
		name, ctype string
		body        []byte
		status      int
		reason      crossroads.Reason
	}{
		{"not JSON", batch.ContentType, []byte(ok + "\n{not json\n"), 400, crossroads.ReasonBatchInvalidItem},
		{"unknown member", batch.ContentType, []byte(`{"operation":"svc-a/read","purpose":"p","user":"u","extra":1}`), 400, crossroads.ReasonBatchInvalidItem},
		{"no purpose", batch.ContentType, []byte(`{"operation":"svc-a/read","user":"u"}`), 400, crossroads.ReasonBatchInvalidItem},
		{"both forms", batch.ContentType, []byte(`{"operation":"svc-a/read","service":"svc-a","path":"/x","purpose":"p","user":"u"}`), 400, crossroads.ReasonBatchInvalidItem},
		{"bad operation", batch.ContentType, []byte(`{"operation":"svc-a","purpose":"p","user":"u"}`), 400, crossroads.ReasonBatchInvalidItem},
		{"two values on a line", batch.ContentType, []byte(ok + ok), 400, crossroads.ReasonBatchInvalidItem},
		{"empty", batch.ContentType, []byte("\n\n"), 400, crossroads.ReasonBatchEmpty},
		{"too many items", batch.ContentType, items(6, readItem), 413, crossroads.ReasonBatchTooLarge},
		{"too many bytes", batch.ContentType, []byte(strings.Repeat(" ", 5000) + ok), 413, crossroads.ReasonBatchTooLarge},
		{"wrong media type", "application/json", []byte(ok), 415, crossroads.ReasonUnsupportedMedia},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.call(t, "ocmw", "POST", "/v1/batches", tc.ctype, tc.body)
			if w.Code != tc.status || reason(t, w) != string(tc.reason) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.reason)
			}
		})
	}
	w := e.call(t, "ocmw", "POST", "/v1/batches", batch.ContentType, []byte(ok+"\n{\n"+ok+"\n[]\n"))
	if !strings.Contains(w.Body.String(), `"line 2"`) || !strings.Contains(w.Body.String(), `"line 4"`) {
		t.Fatalf("problems do not name the lines: %s", w.Body)
	}
	// The submission's record fails: 503, nothing runs.
	e.audit.fail.Store(true)
	if w := e.call(t, "ocmw", "POST", "/v1/batches", batch.ContentType, []byte(ok)); w.Code != 503 || reason(t, w) != string(crossroads.ReasonAuditUnavailable) {
		t.Fatalf("audit down: %d %s", w.Code, w.Body)
	}
	e.audit.fail.Store(false)
	if ps, _ := e.store.Runnable(context.Background(), time.Now().Add(time.Hour), 10); len(ps) != 0 {
		t.Fatalf("refused submissions left runnable items: %v", ps)
	}
	if a := e.audit.actions(); len(a) != 0 {
		t.Fatalf("refused submissions recorded: %v", a)
	}
}

// TestConcurrencyBounds: items in flight never exceed the per-participant
// and per-provider bounds, and several participants' batches share the
// node (none waits for another's to finish).
func TestConcurrencyBounds(t *testing.T) {
	e := newEnv(t, batch.Options{Workers: 6, PerParticipant: 2, PerProvider: 3})
	e.pipe.hold = make(chan struct{})
	e.run(t)
	var ids []string
	for _, who := range []string{"a", "b", "c"} {
		ids = append(ids, submit(t, e, who, items(10, func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf(`{"operation":"svc-b/read","parameters":{"subject":"p%d","year":"2024"},"purpose":"p","user":"u"}`, i)
			}
			return readItem(i)
		})).ID)
	}
	// Let the items through one at a time while the bounds are watched.
	go func() {
		for range 30 {
			e.pipe.hold <- struct{}{}
		}
	}()
	for i, who := range []string{"a", "b", "c"} {
		p := await(t, e, who, ids[i])
		if p.Allowed != 10 {
			t.Fatalf("%s: %+v", who, p)
		}
	}
	e.pipe.mu.Lock()
	defer e.pipe.mu.Unlock()
	for k, v := range e.pipe.maxInFlight {
		limit := 2
		if strings.HasPrefix(k, "service:") {
			limit = 3 // both services are prov-a's
		}
		if v > limit {
			t.Errorf("%s: %d in flight, bound %d", k, v, limit)
		}
	}
	if e.pipe.maxInFlight["service:svc-a"]+e.pipe.maxInFlight["service:svc-b"] < 2 {
		t.Errorf("items never ran concurrently: %v", e.pipe.maxInFlight)
	}
}

// TestItemRefusals: an item naming an operation the service lacks, or
// lacking a parameter, is refused and recorded on its own; the others run.
func TestItemRefusals(t *testing.T) {
	e := newEnv(t, batch.Options{})
	e.run(t)
	body := []byte(readItem(0) + "\n" +
		`{"operation":"svc-a/write","parameters":{"subject":"p"},"purpose":"p","user":"u"}` + "\n" +
		`{"operation":"svc-b/read","parameters":{"subject":"p"},"purpose":"p","user":"u"}` + "\n" +
		`{"operation":"svc-a/read","parameters":{"subject":"p","extra":"x"},"purpose":"p","user":"u"}` + "\n" +
		`{"service":"svc-a","path":"/x/p%2F1","purpose":"p","user":"u","query":{"a":["1","2"]}}` + "\n")
	p := submit(t, e, "ocmw", body)
	got := await(t, e, "ocmw", p.ID)
	if got.Allowed != 2 || got.Denied != 3 {
		t.Fatalf("progress %+v", got)
	}
	rs := results(t, e, "ocmw", p.ID)
	want := []crossroads.Reason{crossroads.ReasonAllowed, crossroads.ReasonUnknownOperation, crossroads.ReasonInvalidParameter, crossroads.ReasonUnknownParameter, crossroads.ReasonAllowed}
	for i, r := range rs {
		if r.Reason != want[i] || r.Receipt == "" || r.ExchangeID == "" {
			t.Errorf("item %d: %+v", i+1, r)
		}
	}
	if string(rs[4].Body) != `{"path":"/x/p%2F1","html":"<b>"}` {
		t.Errorf("path form: %s", rs[4].Body)
	}
	refused := 0
	for _, a := range e.audit.actions() {
		if a == "item-refused" {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refusals recorded, want 3", refused)
	}
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		ctype, body string
		asJSON      bool
	}{
		{"application/json", `{"a":1}`, true},
		{"application/json", `{"a": 1}`, false}, // not compact: sent as base64 so the seal verifies
		{"application/json", `{"a":"<&>"}`, true},
		{"text/plain", `hello`, false},
		{"application/problem+json", `{"status":403}`, true},
	} {
		l := batch.Line(crossroads.BatchResult{ContentType: tc.ctype, Released: []byte(tc.body)}, true)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // as the results are written
		enc.Encode(&l)
		b := buf.Bytes()
		var back crossroads.BatchResult
		json.Unmarshal(b, &back)
		if string(batch.Released(back)) != tc.body || (back.Body != nil) != tc.asJSON {
			t.Errorf("%s %q: line %s", tc.ctype, tc.body, b)
		}
	}
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }
