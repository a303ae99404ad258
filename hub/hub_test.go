package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// start runs the demo network on a free port for one test.
func start(t *testing.T) *demo.Running {
	return demotest.Start(t, demo.Options{People: 30, ProviderTimeout: time.Second})
}

func startB(b *testing.B) *demo.Running { return demotest.Start(b, demo.Options{People: 2000}) }

func problemReason(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want problem+json; body %s", ct, body)
	}
	var p struct {
		Type, Title, Reason string
		Status              int
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body: %v", err)
	}
	if p.Status != resp.StatusCode || p.Type == "" || p.Title == "" {
		t.Fatalf("incomplete problem details: %s", body)
	}
	return p.Reason
}

// TestScenario runs the demo scenario: allowed exchanges, minimisation
// (nested, arrays), seal verification, every denial reason and revocation,
// all over real mTLS with real providers.
func TestScenario(t *testing.T) {
	r := start(t)
	results := r.Clients.Run(context.Background(), demo.Scenario(r.People, r.Revoke, r.Hub.CA.Pool()))
	var out bytes.Buffer
	if !demo.Print(&out, results) {
		t.Fatalf("scenario failed:\n%s", out.String())
	}
	reasons := map[string]bool{}
	for _, res := range results {
		reasons[res.Reason] = true
	}
	for _, want := range []crossroads.Reason{
		crossroads.ReasonUnknownService, crossroads.ReasonNoAuthorisation, crossroads.ReasonPurposeNotCovered,
		crossroads.ReasonAuthorisationNotActive, crossroads.ReasonNoIntegration, crossroads.ReasonCapacityNotCovered,
		crossroads.ReasonParticipantSuspended, crossroads.ReasonProviderSuspended, crossroads.ReasonInvalidSubject,
		"backdated-integration",
	} {
		if !reasons[string(want)] {
			t.Errorf("scenario never produced %s", want)
		}
	}
}

func TestBadInput(t *testing.T) {
	r := start(t)
	p := r.People[0]
	cl := r.Clients.Client(demo.OCMW)
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		status  int
		reason  string
	}{
		{"missing purpose", "/v1/exchange/person-identity/persons/" + p.INSZ, map[string]string{"Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 400, "missing-purpose"},
		{"missing user", "/v1/exchange/person-identity/persons/" + p.INSZ, map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-Subject": p.INSZ}, "", 400, "missing-user"},
		{"no subject in the path", "/v1/exchange/person-identity/persons/", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 404, "unknown-operation"},
		{"bad purpose", "/v1/exchange/person-identity/persons/" + p.INSZ, map[string]string{"Crossroads-Purpose": "Social Aid!", "Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 400, "invalid-header"},
		{"encoded slash", "/v1/exchange/person-identity/persons%2F..%2Fadmin", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 404, "unknown-operation"},
		{"encoded slash in the subject", "/v1/exchange/person-identity/persons/" + p.INSZ + "%2F..%2Fadmin", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u"}, "", 400, "invalid-parameter"},
		{"dot segment", "/v1/exchange/person-identity/persons/%2e%2e/x", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 404, "unknown-operation"},
		{"dot segment as the subject", "/v1/exchange/person-identity/persons/%2e%2e", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u"}, "", 400, "invalid-parameter"},
		{"bad service id", "/v1/exchange/Person_Identity!/x", map[string]string{"Crossroads-Purpose": "social-aid", "Crossroads-User": "u", "Crossroads-Subject": p.INSZ}, "", 400, "invalid-path"},
		{"body too large", "/v1/exchange/person-identity/persons/" + p.INSZ + "/address", map[string]string{"Crossroads-Purpose": "address-correction", "Crossroads-User": "u", "Content-Type": "application/json"}, strings.Repeat("x", 2<<20), 413, "body-too-large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			var body io.Reader
			if tc.body != "" {
				method, body = http.MethodPut, strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(method, r.Base+tc.path, body)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if got := problemReason(t, resp, b); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			if resp.Header.Get("Crossroads-Exchange-Id") == "" {
				t.Fatal("no exchange id")
			}
		})
	}
}

// TestNoClientCertificate: the exchange API needs a certificate; the public
// routes do not.
func TestNoClientCertificate(t *testing.T) {
	r := start(t)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.Hub.CA.Pool(), MinVersion: tls.VersionTLS13}}}
	for path, want := range map[string]int{
		"/healthz": 200, "/readyz": 200, "/openapi.json": 200, "/v1/authorizations": 200,
		"/v1/exchange/person-identity/persons/x": 401, "/v1/integrations": 401, "/v1/admin/network": 401,
	} {
		resp, err := cl.Get(r.Base + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestAdminNeedsOperator: an institution cannot use the admin API.
func TestAdminNeedsOperator(t *testing.T) {
	r := start(t)
	resp, err := r.Clients.Client(demo.OCMW).Get(r.Base + "/v1/admin/network")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	resp, err = r.Clients.Client(demo.Operator).Get(r.Base + "/v1/admin/network")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("operator: status %d", resp.StatusCode)
	}
}

// TestRevocationClosesOpenConnections: an open keep-alive connection using a
// revoked certificate is closed within a second, and a new one is refused.
func TestRevocationClosesOpenConnections(t *testing.T) {
	r := start(t)
	p := r.People[0]
	conn, err := tls.Dial("tcp", strings.TrimPrefix(r.Base, "https://"), pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.ONEM]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /v1/exchange/employment-status/employments/" + p.INSZ + " HTTP/1.1\r\nHost: hub\r\nCrossroads-Purpose: unemployment-benefit\r\nCrossroads-User: u\r\nCrossroads-Subject: " + p.INSZ + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("before revocation: %d", resp.StatusCode)
	}
	// Revoke with the CLI's path: straight into the store; the hub polls.
	serial := pki.SerialHex(r.Certs[demo.ONEM].Leaf)
	if err := r.Hub.Registers.RevokeCertificate(context.Background(), serial, time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection still open after revocation")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed within 1.5 s of revocation")
	}
	resp2, _, err := r.Clients.Exchange(context.Background(), demo.ONEM, demo.ServiceEmployment, "employments/"+p.INSZ, "unemployment-benefit", p.INSZ)
	if err == nil && resp2.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked certificate accepted: %d", resp2.StatusCode)
	}
}

// TestAuditFailureReleasesNothing: when the audit store cannot be written,
// the hub answers 503 and releases nothing.
func TestAuditFailureReleasesNothing(t *testing.T) {
	r := start(t)
	p := r.People[0]
	r.Hub.CloseAuditStoreForTest()
	resp, body, err := r.Clients.Exchange(context.Background(), demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
	}
	if got := problemReason(t, resp, body); got != "audit-unavailable" {
		t.Fatalf("reason %s", got)
	}
	if bytes.Contains(body, []byte(p.Last)) || bytes.Contains(body, []byte(p.City)) || resp.Header.Get("Crossroads-Seal") != "" {
		t.Fatalf("data released without a record: %s", body)
	}
}

// TestProviderDownAndSlow: provider failures are 502/504 problems without
// the provider's internals.
func TestProviderDownAndSlow(t *testing.T) {
	r := start(t)
	p := r.People[0]
	// A slow provider, a dead one and one that crashes with internals.
	demotest.AddProvider(t, r, "slow", []string{""}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-time.After(30 * time.Second): // only the hub giving up ends it sooner
		case <-req.Context().Done():
		}
		io.WriteString(w, `{"secret":"internal stack trace"}`)
	}))
	deadLn, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "https://" + deadLn.Addr().String()
	deadLn.Close()
	demotest.Register(t, r, "dead", deadURL, []string{""})
	demotest.AddProvider(t, r, "crashing", []string{""}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "panic: nil pointer at /srv/app/main.go:42", 500)
	}))
	for svc, want := range map[string]struct {
		status int
		reason string
	}{"slow": {504, "provider-timeout"}, "dead": {502, "provider-unreachable"}, "crashing": {502, "provider-error"}} {
		resp, body, err := r.Clients.Exchange(context.Background(), demo.OCMW, svc, "x/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want.status {
			t.Errorf("%s: status %d, want %d: %s", svc, resp.StatusCode, want.status, body)
			continue
		}
		if got := problemReason(t, resp, body); got != want.reason {
			t.Errorf("%s: reason %s, want %s", svc, got, want.reason)
		}
		if bytes.Contains(body, []byte("internal")) || bytes.Contains(body, []byte("main.go")) {
			t.Errorf("%s: provider internals leaked: %s", svc, body)
		}
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// TestScenarioOnPostgres runs the whole scenario with the registers and the
// audit records in PostgreSQL (a fresh database for this run).
func TestScenarioOnPostgres(t *testing.T) {
	db := pgtest.New(t)
	r := demotest.Start(t, demo.Options{DatabaseURL: db.DSN})
	ctx := context.Background()
	results := r.Clients.Run(ctx, demo.Scenario(r.People, r.Revoke, r.Hub.CA.Pool()))
	var out bytes.Buffer
	if !demo.Print(&out, results) {
		t.Fatalf("scenario on PostgreSQL failed:\n%s", out.String())
	}
	page, err := r.Hub.Trail.Search(ctx, audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Every step is recorded but the revoked certificate's (refused at the
	// handshake), the suspended requester's (summarised per window), the
	// backdated file's (refused before any change) and the citizen's read.
	if len(page.Records) < len(results)-4 {
		t.Fatalf("%d audit records in PostgreSQL for %d steps", len(page.Records), len(results))
	}
}
