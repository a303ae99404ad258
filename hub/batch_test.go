package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

func submitBatch(t *testing.T, r *demo.Running, as string, items []crossroads.BatchItem) batch.Progress {
	t.Helper()
	resp, body, err := r.Clients.SubmitBatch(context.Background(), as, demo.NDJSON(items))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var p batch.Progress
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	claims, err := audit.VerifyReceipt(resp.Header.Get(pki.HeaderReceipt), r.Hub.Trail.VerifierKey())
	if err != nil || claims.ExchangeID == "" {
		t.Fatalf("submission receipt: %v", err)
	}
	return p
}

func fetchResults(t *testing.T, r *demo.Running, as, id string) []crossroads.BatchResult {
	t.Helper()
	resp, body, err := r.Clients.BatchGet(context.Background(), as, "/v1/batches/"+id+"/results")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("results: %d %s", resp.StatusCode, body)
	}
	rs, err := demo.ReadResults(body)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestBatchMixedOutcomes runs one batch over the demo network, over mTLS
// with real providers: allowed items, denials for no authorisation, no
// file on the person, an unknown operation (both forms) and an unknown
// service, and a provider that is down (failed) — each item decided,
// sealed and recorded on its own, none stopping the others; every receipt
// verifies against the log and names the item's record.
func TestBatchMixedOutcomes(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	deadLn, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "https://" + deadLn.Addr().String()
	deadLn.Close()
	demotest.Register(t, r, "dead", deadURL, []string{""})
	p0, p1 := r.People[0], r.People[1]
	unknown := demo.People(len(r.People) + 1)[len(r.People)]
	company := demo.Companies(demo.DemoCompanies)[0]
	read := func(op, subject, purpose string) crossroads.BatchItem {
		return crossroads.BatchItem{Operation: op, Parameters: map[string]string{"subject": subject}, Purpose: purpose, User: "batch@ocmw"}
	}
	items := []crossroads.BatchItem{
		read("person-identity/read", p0.INSZ, "social-aid"),
		read("enterprise-identification/read", company.Number, "social-aid"),
		read("person-identity/read", unknown.INSZ, "social-aid"),
		read("person-identity/salary", p0.INSZ, "social-aid"),
		{Service: "person-identity", Path: "/persons/" + p0.INSZ + "/salary", Purpose: "social-aid", User: "batch@ocmw"},
		read("dead/read", p0.INSZ, "social-aid"),
		read("tax-returns/read", p0.INSZ, "social-aid"),
		read("person-identity/read", p0.INSZ, "marketing"),
		read("employment-status/read", p1.INSZ, "social-aid"),
	}
	want := []struct {
		outcome string
		reason  crossroads.Reason
		status  int
	}{
		{crossroads.OutcomeAllowed, crossroads.ReasonAllowed, 200},
		{crossroads.OutcomeDenied, crossroads.ReasonNoAuthorisation, 403},
		{crossroads.OutcomeDenied, crossroads.ReasonNoIntegration, 403},
		{crossroads.OutcomeDenied, crossroads.ReasonUnknownOperation, 404},
		{crossroads.OutcomeDenied, crossroads.ReasonUnknownOperation, 404},
		{crossroads.OutcomeFailed, crossroads.ReasonProviderUnreachable, 502},
		{crossroads.OutcomeDenied, crossroads.ReasonUnknownService, 404},
		{crossroads.OutcomeDenied, crossroads.ReasonPurposeNotCovered, 403},
		{crossroads.OutcomeAllowed, crossroads.ReasonAllowed, 200},
	}
	p := submitBatch(t, r, demo.OCMW, items)
	got, err := r.Clients.AwaitBatch(ctx, demo.OCMW, p.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != 9 || got.Done != 9 || got.Allowed != 2 || got.Denied != 6 || got.Failed != 1 {
		t.Fatalf("progress %+v", got)
	}
	rs := fetchResults(t, r, demo.OCMW, p.ID)
	counts, err := demo.CheckResults(rs, len(items), r.Hub.CA.Pool())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcomes: %v", counts)
	vkey := r.Hub.Trail.VerifierKey()
	for i, res := range rs {
		w := want[i]
		if res.Outcome != w.outcome || res.Reason != w.reason || res.Status != w.status {
			t.Errorf("item %d: %s %s %d, want %s %s %d", i+1, res.Outcome, res.Reason, res.Status, w.outcome, w.reason, w.status)
		}
		claims, err := audit.VerifyReceipt(res.Receipt, vkey)
		if err != nil || claims.ExchangeID != res.ExchangeID {
			t.Errorf("item %d: receipt %v (names %v)", i+1, err, claims)
		}
		if res.Outcome == crossroads.OutcomeAllowed {
			if body := string(batch.Released(res)); strings.Contains(body, "Salary") || strings.Contains(body, "jobTitle") {
				t.Errorf("item %d: not minimised: %s", i+1, body)
			}
		}
	}
	if !strings.Contains(string(batch.Released(rs[0])), p0.City) {
		t.Errorf("item 1 body: %s", batch.Released(rs[0]))
	}
	// The items' records are exchanges by the submitter, one each.
	page, err := r.Hub.Trail.Search(ctx, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]crossroads.AuditRecord{}
	for _, rec := range page.Records {
		byID[rec.ExchangeID] = rec.AuditRecord
	}
	for i, res := range rs {
		rec, ok := byID[res.ExchangeID]
		if !ok {
			t.Errorf("item %d: no record %s", i+1, res.ExchangeID)
			continue
		}
		if rec.Requester != demo.OCMW || rec.Outcome != res.Outcome {
			t.Errorf("item %d: record %s by %s, %s", i+1, rec.ExchangeID, rec.Requester, rec.Outcome)
		}
		if rec.CorrelationID != "batch:"+p.ID+":"+fmt.Sprint(i+1) {
			t.Errorf("item %d: correlation id %q", i+1, rec.CorrelationID)
		}
	}
}

// TestBatchAccessOverTLS: another participant cannot see the batch; an
// auditor sees it without the released bodies; without a certificate the
// API is refused.
func TestBatchAccessOverTLS(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	p := submitBatch(t, r, demo.OCMW, demo.BatchItems(r.People, 5))
	if _, err := r.Clients.AwaitBatch(ctx, demo.OCMW, p.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/batches/" + p.ID, "/v1/batches/" + p.ID + "/results"} {
		resp, body, err := r.Clients.BatchGet(ctx, demo.ONEM, path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusNotFound || problemReason(t, resp, body) != string(crossroads.ReasonBatchNotFound) {
			t.Fatalf("ONEM reads %s: %d %s", path, resp.StatusCode, body)
		}
	}
	rs := fetchResults(t, r, demo.Operator, p.ID)
	if len(rs) != 5 {
		t.Fatalf("operator: %d results", len(rs))
	}
	for _, res := range rs {
		if len(batch.Released(res)) != 0 {
			t.Fatalf("operator got a body: %+v", res)
		}
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.Hub.CA.Pool(), MinVersion: tls.VersionTLS13}}}
	resp, err := cl.Get(r.Base + "/v1/batches/" + p.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no certificate: %d", resp.StatusCode)
	}
}

// TestBatchSubmitterRevoked: the submitter's certificate is revoked while
// its batch runs; the items that run afterwards are denied
// (certificate-revoked), each recorded, and a new certificate of the same
// participant reads the results.
func TestBatchSubmitterRevoked(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 30, ProviderTimeout: 5 * time.Second, Configure: func(c *hub.Config) {
		c.Batch = batch.Options{PerParticipant: 1}
	}})
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{}, 16)
	demotest.AddProvider(t, r, "slow", []string{""}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	var items []crossroads.BatchItem
	for i := range 5 {
		items = append(items, crossroads.BatchItem{Operation: "slow/read", Parameters: map[string]string{"subject": r.People[i].INSZ}, Purpose: "social-aid", User: "u"})
	}
	p := submitBatch(t, r, demo.OCMW, items)
	<-entered // item 1 is at the provider
	serial := pki.SerialHex(r.Certs[demo.OCMW].Leaf)
	if err := r.Hub.Registers.RevokeCertificate(ctx, serial, time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !r.Hub.Revs.IsRevoked(serial); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("revocation not seen by the hub")
		}
	}
	close(release)
	// A new certificate of the OCMW reads the results.
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: demo.OCMW})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Hub.Registers.RecordCertificate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fresh := demo.NewClients(r.Base, r.Hub.CA.Pool(), map[string]tls.Certificate{demo.OCMW: cert})
	if _, err := fresh.AwaitBatch(ctx, demo.OCMW, p.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	resp, body, err := fresh.BatchGet(ctx, demo.OCMW, "/v1/batches/"+p.ID+"/results")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("results: %v %d %s", err, resp.StatusCode, body)
	}
	rs, err := demo.ReadResults(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 5 || rs[0].Outcome != crossroads.OutcomeAllowed {
		t.Fatalf("results %+v", rs)
	}
	for _, res := range rs[1:] {
		if res.Outcome != crossroads.OutcomeDenied || res.Reason != crossroads.ReasonCertificateRevoked || res.Receipt == "" || len(res.Seal) != 0 {
			t.Fatalf("item %d after revocation: %+v", res.Seq, res)
		}
	}
}
