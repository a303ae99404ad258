package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/pki"
)

// naive is a deliberately naive provider: it answers any path, method and
// body it is given, without checking anything, echoing what it received
// beside a secret. Whatever the hub must stop, it would serve.
type naive struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Method, Target, Subject, ContentType, Body string
	Headers                                    []string
}

// statuses and content types the provider answers on /status/{s}/{code}
// and /ctype/{s}/{n}.
var naiveTypes = []string{
	"application/json; charset=utf-8; leak=SECRET",
	"text/plain; charset=UTF-8; leak=SECRET",
	"text/plain; charset=\"utf-8; leak=SECRET\"",
	"application/vnd.leak+json; profile=SECRET",
	"",
	"not a media type",
}

func (n *naive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var hdrs []string
	for k := range r.Header {
		hdrs = append(hdrs, k)
	}
	n.mu.Lock()
	n.seen = append(n.seen, seenRequest{r.Method, r.URL.RequestURI(), r.Header.Get(pki.HeaderSubject), r.Header.Get("Content-Type"), string(body), hdrs})
	n.mu.Unlock()
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/api"), "/")
	status, ctype := http.StatusOK, "application/json"
	if len(segs) == 4 && segs[1] == "status" {
		status, _ = strconv.Atoi(segs[3])
	}
	if len(segs) == 4 && segs[1] == "ctype" {
		i, _ := strconv.Atoi(segs[3])
		ctype = naiveTypes[i%len(naiveTypes)]
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	} else {
		w.Header()["Content-Type"] = nil // no sniffing: no content type at all
	}
	w.Header().Set("X-Provider-Secret", "SECRET")
	if status == http.StatusMovedPermanently {
		w.Header().Set("Location", "https://elsewhere.example/SECRET")
	}
	w.WriteHeader(status)
	if status == http.StatusNoContent || status == http.StatusNotModified {
		return
	}
	if strings.HasPrefix(ctype, "application/") && strings.Contains(ctype, "json") {
		json.NewEncoder(w).Encode(map[string]any{"name": "N", "target": r.URL.RequestURI(), "secret": "SECRET"})
		return
	}
	io.WriteString(w, "plain answer, SECRET inside")
}

func (n *naive) requests() []seenRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]seenRequest(nil), n.seen...)
}

func (n *naive) reset() {
	n.mu.Lock()
	n.seen = nil
	n.mu.Unlock()
}

// startNaive registers three services on one naive provider base URL:
// "naive" (about a person: read with ?lang, a write with a JSON body,
// statuses and content types), "naive-doc" (whole payload, plain text) and
// "naive-other" (its own path, granted to no one).
func startNaive(t *testing.T) (*demo.Running, *naive) {
	t.Helper()
	r := start(t)
	n := &naive{}
	url := demotest.Serve(t, r, n)
	person := func(id string, fields []string, ops ...crossroads.Operation) crossroads.Service {
		return crossroads.Service{ID: id, Provider: demo.PopulationRegister, BaseURL: url + "/api", Classification: 1, Fields: fields, Subject: crossroads.SubjectPerson, Operations: ops}
	}
	demotest.RegisterService(t, r, person("naive", []string{"/name", "/target"},
		crossroads.Operation{ID: "read", Method: "GET", Path: "/persons/{subject}", Query: []string{"lang"}},
		crossroads.Operation{ID: "write", Method: "PUT", Path: "/persons/{subject}/note", Body: "application/json"},
		crossroads.Operation{ID: "status", Method: "GET", Path: "/status/{subject}/{code:int}", Fields: []string{"/name"}},
		crossroads.Operation{ID: "ctype", Method: "GET", Path: "/ctype/{subject}/{n:int}", Fields: []string{"/name"}},
	), []string{"/name", "/target"}, []string{"read", "write", "status", "ctype"})
	demotest.RegisterService(t, r, person("naive-doc", []string{""},
		crossroads.Operation{ID: "ctype", Method: "GET", Path: "/ctype/{subject}/{n:int}"},
	), []string{""}, nil)
	svcOther := person("naive-other", []string{"/secret"}, crossroads.Operation{ID: "secrets", Method: "GET", Path: "/secrets/{subject}"})
	if err := r.Hub.Directory.Store().Apply(context.Background(), &crossroads.Network{Services: []crossroads.Service{svcOther}}); err != nil {
		t.Fatal(err)
	}
	return r, n
}

type call struct {
	method, path, subject, ctype, body string
	purpose                            string
}

func (c call) do(t *testing.T, r *demo.Running) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if c.body != "" {
		rd = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, r.Base+"/v1/exchange/"+c.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	purpose := c.purpose
	if purpose == "" {
		purpose = "social-aid"
	}
	req.Header.Set(pki.HeaderPurpose, purpose)
	req.Header.Set(pki.HeaderUser, "tester@ocmw")
	if c.subject != "" {
		req.Header.Set(pki.HeaderSubject, c.subject)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	resp, err := r.Clients.Client(demo.OCMW).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// record returns the audit record of an exchange.
func record(t *testing.T, r *demo.Running, service, exchangeID string) audit.Entry {
	t.Helper()
	page, err := r.Hub.Trail.Search(context.Background(), audit.Query{Service: service, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Records {
		if e.ExchangeID == exchangeID {
			return e
		}
	}
	t.Fatalf("no audit record for exchange %s", exchangeID)
	return audit.Entry{}
}

// TestNaiveProviderRefusals: every call the hub must refuse is refused,
// audited with its reason, and never reaches the provider, which would
// have answered it.
func TestNaiveProviderRefusals(t *testing.T) {
	r, n := startNaive(t)
	p0, p1 := r.People[0], r.People[1]
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	for _, tc := range []struct {
		name   string
		call   call
		status int
		reason crossroads.Reason
		allow  string
	}{
		{"subject in the path is not the declared one", call{method: "GET", path: "naive/persons/" + p1.INSZ, subject: p0.INSZ}, 400, crossroads.ReasonSubjectMismatch, ""},
		{"declared subject malformed", call{method: "GET", path: "naive/persons/" + p0.INSZ, subject: "85073003329"}, 400, crossroads.ReasonInvalidSubject, ""},
		{"subject in the path malformed", call{method: "GET", path: "naive/persons/85073003329"}, 400, crossroads.ReasonInvalidSubject, ""},
		{"another service's path", call{method: "GET", path: "naive/secrets/" + p0.INSZ}, 404, crossroads.ReasonUnknownOperation, ""},
		{"another service's path, encoded", call{method: "GET", path: "naive/persons/" + p0.INSZ + "%2F..%2F..%2Fsecrets%2F" + p0.INSZ}, 400, crossroads.ReasonInvalidParameter, ""},
		{"another service, not granted", call{method: "GET", path: "naive-other/secrets/" + p0.INSZ}, 403, crossroads.ReasonNoAuthorisation, ""},
		{"a path below the operation's", call{method: "GET", path: "naive/persons/" + p0.INSZ + "/salary"}, 404, crossroads.ReasonUnknownOperation, ""},
		{"undeclared query parameter", call{method: "GET", path: "naive/persons/" + p0.INSZ + "?lang=nl&debug=1"}, 400, crossroads.ReasonUnknownParameter, ""},
		{"repeated query parameter", call{method: "GET", path: "naive/persons/" + p0.INSZ + "?lang=nl&lang=fr"}, 400, crossroads.ReasonInvalidParameter, ""},
		{"POST to a GET operation", call{method: "POST", path: "naive/persons/" + p0.INSZ, ctype: "application/json", body: `{}`}, 405, crossroads.ReasonMethodNotAllowed, "GET, HEAD, OPTIONS"},
		{"DELETE to a PUT operation", call{method: "DELETE", path: "naive/persons/" + p0.INSZ + "/note"}, 405, crossroads.ReasonMethodNotAllowed, "PUT, OPTIONS"},
		{"body to an operation without body", call{method: "GET", path: "naive/persons/" + p0.INSZ, ctype: "application/json", body: `{"x":1}`}, 415, crossroads.ReasonUnsupportedMedia, ""},
		{"wrong content type", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "text/plain", body: `{"x":1}`}, 415, crossroads.ReasonUnsupportedMedia, ""},
		{"no content type", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", body: `{"x":1}`}, 415, crossroads.ReasonUnsupportedMedia, ""},
		{"malformed JSON body", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "application/json", body: `{"x":`}, 400, crossroads.ReasonInvalidBody, ""},
		{"JSON body too deep", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "application/json", body: deep}, 400, crossroads.ReasonInvalidBody, ""},
		{"two JSON values", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "application/json", body: `{} {}`}, 400, crossroads.ReasonInvalidBody, ""},
		{"missing body", call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "application/json"}, 400, crossroads.ReasonInvalidBody, ""},
		{"typed parameter invalid", call{method: "GET", path: "naive/status/" + p0.INSZ + "/2xx"}, 400, crossroads.ReasonInvalidParameter, ""},
		{"write of a service granted GET only", call{method: "PUT", path: "naive-doc/ctype/" + p0.INSZ + "/1"}, 405, crossroads.ReasonMethodNotAllowed, "GET, HEAD, OPTIONS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.reset()
			resp, b := tc.call.do(t, r)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if got := problemReason(t, resp, b); got != string(tc.reason) {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
				t.Fatalf("Allow %q, want %q", resp.Header.Get("Allow"), tc.allow)
			}
			if got := n.requests(); len(got) != 0 {
				t.Fatalf("the provider was called: %+v", got)
			}
			if strings.Contains(string(b), "SECRET") {
				t.Fatalf("provider data in the refusal: %s", b)
			}
			rec := record(t, r, strings.SplitN(tc.call.path, "/", 2)[0], resp.Header.Get(pki.HeaderExchangeID))
			if rec.Outcome != crossroads.OutcomeDenied || rec.Reason != tc.reason || rec.Status != tc.status || resp.Header.Get(pki.HeaderReceipt) == "" {
				t.Fatalf("record %+v", rec.AuditRecord)
			}
			if len(rec.Target) > 512 {
				t.Fatalf("recorded target of %d bytes", len(rec.Target))
			}
		})
	}
}

// TestNaiveProviderGetsTheCanonicalCall: what the provider receives is the
// hub's own request — the canonical target with the validated subject and
// declared query, only the contract's headers — and the record and seal
// name the same act.
func TestNaiveProviderGetsTheCanonicalCall(t *testing.T) {
	r, n := startNaive(t)
	p0 := r.People[0]
	dotted := p0.INSZ[:2] + "." + p0.INSZ[2:4] + "." + p0.INSZ[4:6] + "-" + p0.INSZ[6:9] + "." + p0.INSZ[9:]
	resp, b := call{method: "GET", path: "naive/persons/" + dotted + "?lang=nl"}.do(t, r)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	seen := n.requests()
	if len(seen) != 1 || seen[0].Method != "GET" || seen[0].Target != "/api/persons/"+p0.INSZ+"?lang=nl" || seen[0].Subject != p0.INSZ {
		t.Fatalf("provider saw %+v", seen)
	}
	allowed := map[string]bool{"Crossroads-Exchange-Id": true, "Crossroads-Requester": true, "Crossroads-User": true, "Crossroads-Purpose": true,
		"Crossroads-Subject": true, "Crossroads-Authorisation": true, "Crossroads-Hub-Signature": true, "Accept": true, "Accept-Encoding": true, "User-Agent": true}
	for _, h := range seen[0].Headers {
		if !allowed[h] {
			t.Errorf("header %s forwarded", h)
		}
	}
	if strings.Contains(string(b), "SECRET") || resp.Header.Get("X-Provider-Secret") != "" {
		t.Fatalf("ungranted data released: %s %v", b, resp.Header)
	}
	var got map[string]string
	json.Unmarshal(b, &got)
	if got["target"] != "/api/persons/"+p0.INSZ+"?lang=nl" {
		t.Fatalf("released %s", b)
	}
	seal, err := pki.VerifySeal(resp.Header.Get(pki.HeaderSeal), b, r.Hub.CA.Pool(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if seal.Operation != "read" || seal.Method != "GET" || seal.Target != "/persons/"+p0.INSZ+"?lang=nl" || seal.Subject != p0.INSZ ||
		seal.SubjectKind != "" || seal.AuthorisationID != "ocmw-social-aid" || seal.Status != 200 || seal.ContentType != "application/json" {
		t.Fatalf("seal %+v", seal)
	}
	rec := record(t, r, "naive", resp.Header.Get(pki.HeaderExchangeID))
	if rec.Operation != "read" || rec.Target != seal.Target || rec.Subject != p0.INSZ || rec.Method != "GET" || rec.Status != 200 ||
		rec.ContentType != "application/json" || rec.ProviderStatus != 200 || rec.AuthorisationID != "ocmw-social-aid" || rec.ResponseDigest != seal.ResponseDigest {
		t.Fatalf("record %+v", rec.AuditRecord)
	}

	// The write: the declared media type, the body as sent, its digest sealed.
	n.reset()
	body := `{"note":"moved"}`
	resp, b = call{method: "PUT", path: "naive/persons/" + p0.INSZ + "/note", ctype: "application/json; charset=utf-8", body: body}.do(t, r)
	if resp.StatusCode != 200 {
		t.Fatalf("write: %d %s", resp.StatusCode, b)
	}
	seen = n.requests()
	if len(seen) != 1 || seen[0].Method != "PUT" || seen[0].Body != body || seen[0].ContentType != "application/json" || seen[0].Target != "/api/persons/"+p0.INSZ+"/note" {
		t.Fatalf("provider saw %+v", seen)
	}
	seal, err = pki.VerifySeal(resp.Header.Get(pki.HeaderSeal), b, r.Hub.CA.Pool(), time.Now())
	if err != nil || seal.Operation != "write" || seal.Method != "PUT" || seal.RequestDigest != pki.Digest([]byte(body)) {
		t.Fatalf("write seal %+v %v", seal, err)
	}
}

// TestNaiveProviderResponsesShaped: content-type parameters and odd
// statuses from the provider do not reach the requester.
func TestNaiveProviderResponsesShaped(t *testing.T) {
	r, _ := startNaive(t)
	p0 := r.People[0]
	for _, tc := range []struct {
		path   string
		status int
		reason crossroads.Reason
		ctype  string
	}{
		{"naive/ctype/" + p0.INSZ + "/0", 200, "", "application/json"},
		{"naive/ctype/" + p0.INSZ + "/3", 200, "", "application/vnd.leak+json"},
		{"naive/ctype/" + p0.INSZ + "/1", 502, crossroads.ReasonResponseNotGranted, ""},
		{"naive-doc/ctype/" + p0.INSZ + "/1", 200, "", "text/plain; charset=utf-8"},
		{"naive-doc/ctype/" + p0.INSZ + "/2", 200, "", "text/plain"},
		{"naive-doc/ctype/" + p0.INSZ + "/4", 200, "", "application/octet-stream"},
		{"naive-doc/ctype/" + p0.INSZ + "/5", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/201", 201, "", "application/json"},
		{"naive/status/" + p0.INSZ + "/204", 204, "", ""},
		{"naive/status/" + p0.INSZ + "/404", 404, crossroads.ReasonNotFoundAtProvider, ""},
		{"naive/status/" + p0.INSZ + "/409", 409, crossroads.ReasonProviderConflict, ""},
		{"naive/status/" + p0.INSZ + "/422", 422, crossroads.ReasonProviderUnprocessable, ""},
		{"naive/status/" + p0.INSZ + "/202", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/301", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/304", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/400", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/418", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/500", 502, crossroads.ReasonProviderError, ""},
		{"naive/status/" + p0.INSZ + "/503", 502, crossroads.ReasonProviderError, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, b := call{method: "GET", path: tc.path}.do(t, r)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			whole := strings.HasPrefix(tc.path, "naive-doc/") && tc.reason == "" // granted whole: the body passes as is
			if !whole && strings.Contains(string(b), "SECRET") || strings.Contains(resp.Header.Get("Content-Type"), "SECRET") ||
				resp.Header.Get("X-Provider-Secret") != "" || resp.Header.Get("Location") != "" {
				t.Fatalf("provider data passed: %v %s", resp.Header, b)
			}
			if tc.reason != "" {
				if got := problemReason(t, resp, b); got != string(tc.reason) {
					t.Fatalf("reason %q, want %q", got, tc.reason)
				}
				rec := record(t, r, strings.SplitN(tc.path, "/", 2)[0], resp.Header.Get(pki.HeaderExchangeID))
				if rec.Outcome != crossroads.OutcomeFailed || rec.Reason != tc.reason || rec.Status != tc.status {
					t.Fatalf("record %+v", rec.AuditRecord)
				}
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Fatalf("content type %q, want %q", got, tc.ctype)
			}
			seal, err := pki.VerifySeal(resp.Header.Get(pki.HeaderSeal), b, r.Hub.CA.Pool(), time.Now())
			if err != nil || seal.Status != tc.status || seal.ContentType != tc.ctype {
				t.Fatalf("seal %+v %v", seal, err)
			}
		})
	}
}

// TestHeadAndOptions: HEAD answers the GET's headers without a body;
// OPTIONS answers Allow from the catalogue without calling the provider or
// recording anything.
func TestHeadAndOptions(t *testing.T) {
	r, n := startNaive(t)
	p0 := r.People[0]
	get, gb := call{method: "GET", path: "naive/persons/" + p0.INSZ}.do(t, r)
	n.reset()
	head, hb := call{method: "HEAD", path: "naive/persons/" + p0.INSZ}.do(t, r)
	if head.StatusCode != 200 || len(hb) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(gb)) ||
		head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || head.Header.Get(pki.HeaderSeal) == "" {
		t.Fatalf("HEAD: %d %v (GET: %v, %d bytes)", head.StatusCode, head.Header, get.Header, len(gb))
	}
	if seen := n.requests(); len(seen) != 1 || seen[0].Method != "GET" {
		t.Fatalf("HEAD reached the provider as %+v", seen)
	}
	rec := record(t, r, "naive", head.Header.Get(pki.HeaderExchangeID))
	if rec.Method != "HEAD" || rec.Operation != "read" || rec.Outcome != crossroads.OutcomeAllowed {
		t.Fatalf("HEAD record %+v", rec.AuditRecord)
	}

	n.reset()
	before, _ := r.Hub.Trail.Search(context.Background(), audit.Query{Service: "naive", Limit: 1000})
	for path, allow := range map[string]string{
		"naive/persons/" + p0.INSZ:           "GET, HEAD, OPTIONS",
		"naive/persons/" + p0.INSZ + "/note": "PUT, OPTIONS",
	} {
		resp, b := call{method: "OPTIONS", path: path}.do(t, r)
		if resp.StatusCode != 204 || resp.Header.Get("Allow") != allow || len(b) != 0 {
			t.Fatalf("OPTIONS %s: %d %q %s", path, resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	}
	resp, b := call{method: "OPTIONS", path: "naive/nothing/here"}.do(t, r)
	if resp.StatusCode != 404 || problemReason(t, resp, b) != string(crossroads.ReasonUnknownOperation) {
		t.Fatalf("OPTIONS of no operation: %d %s", resp.StatusCode, b)
	}
	if seen := n.requests(); len(seen) != 0 {
		t.Fatalf("OPTIONS reached the provider: %+v", seen)
	}
	after, _ := r.Hub.Trail.Search(context.Background(), audit.Query{Service: "naive", Limit: 1000})
	if len(after.Records) != len(before.Records)+1 { // the refused OPTIONS only
		t.Fatalf("OPTIONS recorded: %d records before, %d after", len(before.Records), len(after.Records))
	}
}

// TestRefusedParticipantsSummarised: a suspended or unknown participant is
// refused before any work on a person, counted, and recorded as one
// abuse-summary record per actor and window, not one per request.
func TestRefusedParticipantsSummarised(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	certPEM, keyPEM, _, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	ghost, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clients := demo.NewClients(r.Base, r.Hub.CA.Pool(), map[string]tls.Certificate{"ghost": ghost, demo.Suspended: r.Certs[demo.Suspended]})
	const flood = 40
	for i := 0; i < flood; i++ {
		for as, reason := range map[string]crossroads.Reason{"ghost": crossroads.ReasonUnknownParticipant, demo.Suspended: crossroads.ReasonParticipantSuspended} {
			// a malformed subject: refused for who asks, before the subject is looked at
			resp, b, err := clients.Exchange(ctx, as, demo.ServicePerson, "persons/not-a-person", "health-insurance", "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 403 || problemReason(t, resp, b) != string(reason) {
				t.Fatalf("%s: %d %s", as, resp.StatusCode, b)
			}
			if resp.Header.Get(pki.HeaderReceipt) != "" || resp.Header.Get(pki.HeaderExchangeID) != "" {
				t.Fatalf("%s: a refusal summarised has no record of its own: %v", as, resp.Header)
			}
		}
	}
	page, err := r.Hub.Trail.Search(ctx, audit.Query{Participant: demo.Suspended, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 0 {
		t.Fatalf("%d records before the window closed", len(page.Records))
	}
	r.Hub.Exchange.FlushAbuse(ctx, true)
	for as, reason := range map[string]crossroads.Reason{"ghost": crossroads.ReasonUnknownParticipant, demo.Suspended: crossroads.ReasonParticipantSuspended} {
		page, err := r.Hub.Trail.Search(ctx, audit.Query{Participant: as, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Records) != 1 {
			t.Fatalf("%s: %d records, want one summary", as, len(page.Records))
		}
		rec := page.Records[0]
		var detail struct{ Count int }
		json.Unmarshal(rec.Detail, &detail)
		if rec.Kind != crossroads.RecordAbuseSummary || rec.Reason != reason || rec.Subject != "" || detail.Count != flood {
			t.Fatalf("%s: summary %+v (detail %s)", as, rec.AuditRecord, rec.Detail)
		}
	}
	mfs, err := r.Hub.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, mf := range mfs {
		if mf.GetName() == "crossroads_refused_participants_total" {
			for _, m := range mf.GetMetric() {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	if counted != 2*flood {
		t.Fatalf("counted %v refusals, want %d", counted, 2*flood)
	}
}

// TestEnterpriseExchange: a service about enterprises takes every written
// form of an enterprise number in the path and in Crossroads-Subject, binds
// the canonical one, and refuses malformed numbers as invalid-subject.
func TestEnterpriseExchange(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	c := demo.Companies(demo.DemoCompanies)[1]
	for _, tc := range []struct {
		path, subject string
		status        int
		reason        string
	}{
		{"enterprises/" + c.Number, "", 200, ""},
		{"enterprises/BE" + c.Number, "BE " + c.Number[:4] + "." + c.Number[4:7] + "." + c.Number[7:], 200, ""},
		{"enterprises/" + c.Number, demo.Companies(0)[2].Number, 400, "subject-mismatch"},
		{"enterprises/0123.456.748", "", 400, "invalid-subject"},
		{"enterprises/" + c.Number, "85073003328", 400, "invalid-subject"},
		{"enterprises/" + demo.Companies(demo.DemoCompanies)[demo.DemoCompanies+4].Number, "", 403, "no-integration"},
	} {
		resp, b, err := r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEnterprise, tc.path, "employer-check", tc.subject)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status {
			t.Fatalf("%s (%s): %d %s", tc.path, tc.subject, resp.StatusCode, b)
		}
		if tc.reason != "" {
			if got := problemReason(t, resp, b); got != tc.reason {
				t.Fatalf("%s: reason %s, want %s", tc.path, got, tc.reason)
			}
			continue
		}
		seal, err := pki.VerifySeal(resp.Header.Get(pki.HeaderSeal), b, r.Hub.CA.Pool(), time.Now())
		if err != nil || seal.Subject != c.Number || seal.SubjectKind != crossroads.SubjectEnterprise || seal.Target != "/enterprises/"+c.Number {
			t.Fatalf("seal %+v %v", seal, err)
		}
		rec := record(t, r, demo.ServiceEnterprise, resp.Header.Get(pki.HeaderExchangeID))
		if rec.Subject != c.Number || rec.SubjectKind != crossroads.SubjectEnterprise || rec.AuthorisationID != "onem-employer-check" {
			t.Fatalf("record %+v", rec.AuditRecord)
		}
		var got map[string]any
		json.Unmarshal(b, &got)
		if got["name"] != c.Name || got["establishments"] != nil || got["startDate"] != nil {
			t.Fatalf("released %s", b)
		}
	}
}

// TestRecordedTargetCapped: the target an audit record names is capped.
func TestRecordedTargetCapped(t *testing.T) {
	r := start(t)
	long := "persons/" + strings.Repeat("a", 1500)
	resp, b, err := r.Clients.Exchange(context.Background(), demo.OCMW, demo.ServicePerson, long, "social-aid", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	rec := record(t, r, demo.ServicePerson, resp.Header.Get(pki.HeaderExchangeID))
	if len(rec.Target) != exchange.MaxRecordedTarget {
		t.Fatalf("recorded target of %d bytes", len(rec.Target))
	}
}

// TestConcurrentExchangeSeals: the pipeline seals through the hub's
// SealSigner (v2 seals, counted), concurrent exchanges each get a seal
// that verifies on its own, with no more signatures than seals.
func TestConcurrentExchangeSeals(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	c := demo.Companies(demo.DemoCompanies)[1]
	seals0, sigs0 := r.Hub.Sealer.Counts()
	const n = 24
	var wg sync.WaitGroup
	jws := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			resp, b, err := r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEnterprise, "enterprises/"+c.Number, "employer-check", "")
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%d %s", resp.StatusCode, b)
			}
			if err != nil {
				errs[i] = err
				return
			}
			tok := resp.Header.Get(pki.HeaderSeal)
			seal, err := pki.VerifySeal(tok, b, r.Hub.CA.Pool(), time.Now())
			if err == nil && seal.ExchangeID != resp.Header.Get(pki.HeaderExchangeID) {
				err = fmt.Errorf("seal names exchange %s", seal.ExchangeID)
			}
			if err == nil && strings.Count(tok, pki.SealSeparator) != 2 {
				err = fmt.Errorf("not a v2 seal: %.40s…", tok)
			}
			jws[i], _, _ = strings.Cut(tok, pki.SealSeparator)
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	distinct := map[string]bool{}
	for _, j := range jws {
		distinct[j] = true
	}
	seals, sigs := r.Hub.Sealer.Counts()
	if seals-seals0 < n || sigs-sigs0 > seals-seals0 || uint64(len(distinct)) > sigs-sigs0 {
		t.Fatalf("%d seals, %d signatures, %d distinct signatures for %d exchanges", seals-seals0, sigs-sigs0, len(distinct), n)
	}
	t.Logf("%d exchanges sealed with %d signatures", n, len(distinct))
}
