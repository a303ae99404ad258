package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
)

// records searches the trail as the operator.
func records(t *testing.T, r *demo.Running, query string) audit.Page {
	t.Helper()
	st, b := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/records?"+query, "", "")
	if st != 200 {
		t.Fatalf("search %s: %d %s", query, st, b)
	}
	var p audit.Page
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

const newInstitution = "participants:\n  - id: trail-test-inst\n    name: Trail test\n    kind: institution\n    status: active\n"

// TestApplyIsRecorded: a register apply through the admin API leaves a
// register-apply record naming the operator, whose detail holds the diff
// and its digest.
func TestApplyIsRecorded(t *testing.T) {
	r := start(t)
	st, b := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/apply", "application/yaml", newInstitution)
	if st != 200 {
		t.Fatalf("apply: %d %s", st, b)
	}
	var res struct{ Diff string }
	json.Unmarshal(b, &res)
	p := records(t, r, "kind=register-apply")
	if len(p.Records) != 1 {
		t.Fatalf("%d apply records, want 1", len(p.Records))
	}
	rec := p.Records[0]
	var d struct {
		Changed    bool
		Diff       string
		DiffDigest string
	}
	if err := json.Unmarshal(rec.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if rec.Requester != demo.Operator || rec.Action != "apply" || !d.Changed || d.Diff != res.Diff ||
		!strings.Contains(d.Diff, "trail-test-inst") || d.DiffDigest != audit.Digest([]byte(d.Diff)) {
		t.Fatalf("apply record %+v, detail %+v", rec, d)
	}
	// A dry run changes nothing and leaves no record.
	do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/apply?dry-run=true", "application/yaml", newInstitution)
	if p := records(t, r, "kind=register-apply"); len(p.Records) != 1 {
		t.Fatalf("%d apply records after a dry run", len(p.Records))
	}
}

// TestApplyRefusedWithoutTrail: when the trail cannot record the apply,
// the apply is refused with 503 and nothing is written.
func TestApplyRefusedWithoutTrail(t *testing.T) {
	r := start(t)
	r.Hub.CloseAuditStoreForTest()
	st, b := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/apply", "application/yaml", newInstitution)
	if st != http.StatusServiceUnavailable || !strings.Contains(string(b), "audit-unavailable") {
		t.Fatalf("apply with the trail down: %d %s", st, b)
	}
	if _, ok := r.Hub.Directory.Participant("trail-test-inst"); ok {
		t.Fatal("applied although not recorded")
	}
	n, err := r.Hub.Registers.Registers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range n.Participants {
		if p.ID == "trail-test-inst" {
			t.Fatal("written to the store although not recorded")
		}
	}
	// Certificates are neither revoked nor issued either.
	st, b = do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/admin/certificates", "", "")
	var list struct {
		Certificates []struct{ Serial, Participant string }
	}
	json.Unmarshal(b, &list)
	serial := ""
	for _, c := range list.Certificates {
		if c.Participant == demo.OCMW {
			serial = c.Serial
		}
	}
	if st != 200 || serial == "" {
		t.Fatalf("certificates: %d %s", st, b)
	}
	if st, b := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/certificates/"+serial+"/revoke", "application/json", `{}`); st != 503 {
		t.Fatalf("revoke with the trail down: %d %s", st, b)
	}
	if r.Hub.Revs.IsRevoked(serial) {
		t.Fatal("revoked although not recorded")
	}
}

// TestCertificateEventsRecorded: issuing and revoking through the admin
// API leave certificate records.
func TestCertificateEventsRecorded(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	csr := newCSR(t)
	body, _ := json.Marshal(map[string]any{"participant": demo.ONEM, "csr": csr})
	st, b := do(t, ops, "POST", r.Base+"/v1/admin/certificates", "application/json", string(body))
	if st != 201 {
		t.Fatalf("issue: %d %s", st, b)
	}
	var issued struct{ Serial string }
	json.Unmarshal(b, &issued)
	if st, b := do(t, ops, "POST", r.Base+"/v1/admin/certificates/"+issued.Serial+"/revoke", "application/json", `{"reason":"test"}`); st != 200 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	p := records(t, r, "kind=certificate")
	if len(p.Records) != 2 {
		t.Fatalf("%d certificate records, want 2", len(p.Records))
	}
	for i, action := range []string{"revoke", "issue"} { // newest first
		rec := p.Records[i]
		var d struct{ Serial, Participant, Reason string }
		json.Unmarshal(rec.Detail, &d)
		if rec.Action != action || rec.Requester != demo.Operator || d.Serial != issued.Serial || d.Participant != demo.ONEM {
			t.Errorf("record %d: %+v %s", i, rec.AuditRecord, rec.Detail)
		}
	}
}

// TestSearchIsRecorded: an auditor's search leaves an audit-search record
// naming the searcher, with the query in its detail and the subject
// searched for as its subject.
func TestSearchIsRecorded(t *testing.T) {
	r := start(t)
	p := r.People[0]
	records(t, r, "subject="+url.QueryEscape(p.INSZ)+"&purpose=social-aid")
	got := records(t, r, "kind=audit-search&subject="+p.INSZ)
	if len(got.Records) != 2 { // the first search, and this one
		t.Fatalf("%d search records, want 2: %+v", len(got.Records), got.Records)
	}
	rec := got.Records[1]
	var d struct{ Purpose string }
	json.Unmarshal(rec.Detail, &d)
	if rec.Kind != "audit-search" || rec.Action != "search" || rec.Requester != demo.Operator || rec.Subject != p.INSZ ||
		rec.SubjectKind != "person" || d.Purpose != "social-aid" {
		t.Fatalf("search record %+v %s", rec.AuditRecord, rec.Detail)
	}
	// When the search cannot be recorded, it is not run.
	r.Hub.CloseAuditStoreForTest()
	if st, b := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/records?subject="+p.INSZ, "", ""); st != 503 || strings.Contains(string(b), p.INSZ) {
		t.Fatalf("search with the trail down: %d %s", st, b)
	}
}

func newCSR(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestConditionalApply: an apply with If-Match applies only if the
// registers have not changed since that ETag; an apply that would leave no
// active operator is refused.
func TestConditionalApply(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	get := func() string {
		resp, err := ops.Get(r.Base + "/v1/admin/network")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
			t.Fatalf("GET network: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
		}
		return resp.Header.Get("ETag")
	}
	tag := get()
	if again := get(); again != tag {
		t.Fatalf("ETag changed without a change: %s %s", tag, again)
	}
	other := strings.ReplaceAll(newInstitution, "trail-test-inst", "trail-other-inst")
	if st, b := send(t, ops, "POST", r.Base+"/v1/admin/apply", other, map[string]string{"Content-Type": "application/yaml", "If-Match": tag}); st != 200 {
		t.Fatalf("apply with a current ETag: %d %s", st, b)
	}
	// The ETag sent is now stale.
	st, b := send(t, ops, "POST", r.Base+"/v1/admin/apply", newInstitution, map[string]string{"Content-Type": "application/yaml", "If-Match": tag})
	if st != http.StatusPreconditionFailed || !strings.Contains(b, "version-mismatch") {
		t.Fatalf("apply with a stale ETag: %d %s", st, b)
	}
	if _, ok := r.Hub.Directory.Participant("trail-test-inst"); ok {
		t.Fatal("applied with a stale ETag")
	}
	if st, b := send(t, ops, "POST", r.Base+"/v1/admin/apply", newInstitution, map[string]string{"Content-Type": "application/yaml", "If-Match": get()}); st != 200 {
		t.Fatalf("apply with the new ETag: %d %s", st, b)
	}
	// Suspending the only operator is refused, dry run or not.
	suspend := "participants:\n  - id: " + demo.Operator + "\n    name: Operator\n    kind: operator\n    status: suspended\n"
	for _, q := range []string{"", "?dry-run=true"} {
		if st, b := do(t, ops, "POST", r.Base+"/v1/admin/apply"+q, "application/yaml", suspend); st != 422 || !strings.Contains(b2s(b), "no active operator") {
			t.Fatalf("suspending the last operator%s: %d %s", q, st, b)
		}
	}
	if p, _ := r.Hub.Directory.Participant(demo.Operator); p == nil || p.Status != "active" {
		t.Fatal("the last operator was suspended")
	}
}

func b2s(b []byte) string { return string(b) }
