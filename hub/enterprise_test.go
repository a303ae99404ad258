package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/citizen"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// TestEnterpriseRepresentative: a participant of kind
// enterprise-representative, over mTLS, sees the exchanges and files about
// its enterprise with proofs, and only those; others are refused. On both
// backends.
func TestEnterpriseRepresentative(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testEnterpriseRepresentative(t, start(t)) })
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.New(t)
		testEnterpriseRepresentative(t, demotest.Start(t, demo.Options{DatabaseURL: db.DSN}))
	})
}

func testEnterpriseRepresentative(t *testing.T, r *demo.Running) {
	ctx := context.Background()
	number := personid.MakeEnterprise(4242424)
	typed := "BE" + number[:4] + "." + number[4:7] + "." + number[7:]
	file := "participants:\n  - id: acme-rep\n    name: ACME representative\n    kind: enterprise-representative\n    status: active\n    enterprise: " + typed + "\n"
	if st, b := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/apply", "application/yaml", file); st != 200 {
		t.Fatalf("apply: %d %s", st, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, ok := r.Hub.Directory.Participant("acme-rep"); ok {
			if p.Enterprise != number {
				t.Fatalf("enterprise stored as %q, want %q", p.Enterprise, number)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("representative not in the directory")
		}
		time.Sleep(50 * time.Millisecond)
	}
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: "acme-rep"})
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
	rep := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: r.Hub.CA.Pool(), Certificates: []tls.Certificate{cert}}}}

	ent := crossroads.SubjectEnterprise
	recs := []*crossroads.AuditRecord{
		{ExchangeID: "acme-ex", Requester: demo.ONEM, Service: "employer-id", SubjectKind: ent, Subject: number, Purpose: "contributions",
			Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed},
		{ExchangeID: "other-ex", Requester: demo.ONEM, Service: "employer-id", SubjectKind: ent, Subject: personid.MakeEnterprise(1111111),
			Purpose: "contributions", Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed},
	}
	fe, err := audit.IntegrationEvent("register", demo.ONEM, "", crossroads.Integration{Kind: ent, Person: number, Participant: demo.ONEM,
		Sector: "employers", Capacity: "employer", From: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, fe)
	for _, rc := range recs {
		if _, err := r.Hub.Trail.Commit(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the records are in a published checkpoint (proofs).
	var resp citizen.Response
	for deadline := time.Now().Add(15 * time.Second); ; {
		st, b := do(t, rep, "GET", r.Base+citizen.EnterpriseExchangesPath, "", "")
		if st != 200 {
			t.Fatalf("exchanges: %d %s", st, b)
		}
		resp = citizen.Response{}
		json.Unmarshal(b, &resp)
		if len(resp.Exchanges) == 1 && resp.Exchanges[0].Proof != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exchanges %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.Enterprise != number || resp.Exchanges[0].ExchangeID != "acme-ex" || resp.Exchanges[0].Institution != demo.ONEM {
		t.Fatalf("exchanges %+v", resp)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		st, b := do(t, rep, "GET", r.Base+citizen.EnterpriseFilesPath, "", "")
		var files citizen.FilesResponse
		json.Unmarshal(b, &files)
		if st != 200 || len(files.Files) != 1 || files.Files[0].File == nil || files.Files[0].File.Capacity != "employer" {
			t.Fatalf("files: %d %s", st, b)
		}
		if files.Files[0].Proof != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files without proof: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Auditors find the enterprise's records by any spelling of its number.
	p := records(t, r, "subjectKind=enterprise&kind=exchange&subject="+url.QueryEscape(typed))
	if len(p.Records) != 1 || p.Records[0].ExchangeID != "acme-ex" {
		t.Fatalf("auditor search: %+v", p.Records)
	}
	if st, _ := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/records?subjectKind=enterprise&subject=0123456789", "", ""); st != 400 {
		t.Fatalf("invalid enterprise number: %d", st)
	}
	// An institution's certificate does not open the view; nothing at all is 401.
	if st, _ := do(t, r.Clients.Client(demo.OCMW), "GET", r.Base+citizen.EnterpriseExchangesPath, "", ""); st != 403 {
		t.Fatalf("institution: %d", st)
	}
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: r.Hub.CA.Pool()}}}
	if st, _ := do(t, anon, "GET", r.Base+citizen.EnterpriseExchangesPath, "", ""); st != 401 {
		t.Fatalf("anonymous: %d", st)
	}
}
