package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
)

func do(t *testing.T, cl *http.Client, method, url, ctype, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if strings.Contains(url, "/v1/integrations") || strings.Contains(url, "/v1/audit/integrations") {
		req.Header.Set("Crossroads-User", "agent-7") // changes to the directory name the natural person
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestIntegrationsAPI: a participant registers, lists and removes its own
// files on persons, only in capacities its authorisations name, and the
// decision follows at once.
func TestIntegrationsAPI(t *testing.T) {
	r := start(t)
	cl := r.Clients.Client(demo.ONEM)
	person := personid.Make("770312", 123, false)
	ctx := context.Background()

	resp, _, err := r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEmployment, "employments/"+person, "unemployment-benefit", person)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("before registering: %v %v", resp, err)
	}
	body := `{"person":"` + person + `","sector":"unemployment","capacity":"claimant"}`
	if st, b := do(t, cl, "PUT", r.Base+"/v1/integrations", "application/json", body); st != 201 {
		t.Fatalf("PUT: %d %s", st, b)
	}
	// The decision now passes the directory (the provider has no such person: 404 from the source).
	resp, b, err := r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEmployment, "employments/"+person, "unemployment-benefit", person)
	if err != nil || resp.StatusCode != 404 || !strings.Contains(string(b), "not-found-at-provider") {
		t.Fatalf("after registering: %v %s %v", resp.StatusCode, b, err)
	}
	st, b := do(t, cl, "GET", r.Base+"/v1/integrations?person="+person, "", "")
	var list struct {
		Integrations []struct{ Person, Participant string }
	}
	json.Unmarshal(b, &list)
	if st != 200 || len(list.Integrations) != 1 || list.Integrations[0].Participant != demo.ONEM {
		t.Fatalf("GET: %d %s", st, b)
	}
	// Another participant does not see ONEM's files.
	_, b = do(t, r.Clients.Client(demo.OCMW), "GET", r.Base+"/v1/integrations?person="+person, "", "")
	json.Unmarshal(b, &list)
	if len(list.Integrations) != 0 {
		t.Fatalf("OCMW sees ONEM's integrations: %s", b)
	}
	// A capacity none of ONEM's authorisations names is refused, with every problem listed.
	bad := `{"person":"` + person + `","sector":"social-welfare","capacity":"beneficiary"}`
	if st, b := do(t, cl, "PUT", r.Base+"/v1/integrations", "application/json", bad); st != 422 || !strings.Contains(string(b), "problems") {
		t.Fatalf("PUT foreign capacity: %d %s", st, b)
	}
	if st, b := do(t, cl, "PUT", r.Base+"/v1/integrations", "application/json", `{"person":"123","sector":"unemployment","capacity":"claimant"}`); st != 422 && st != 400 {
		t.Fatalf("PUT invalid person: %d %s", st, b)
	}
	if st, b := do(t, cl, "PUT", r.Base+"/v1/integrations", "application/json", `{"person":`); st != 400 {
		t.Fatalf("PUT bad JSON: %d %s", st, b)
	}
	// End it: the decision denies at once; the file stays, its period closed.
	var got struct{ Integrations []json.RawMessage }
	_, b = do(t, cl, "GET", r.Base+"/v1/integrations?person="+person, "", "")
	json.Unmarshal(b, &got)
	time.Sleep(1100 * time.Millisecond) // from defaults to now (whole seconds): a file is ended once started
	if st, b := do(t, cl, "DELETE", r.Base+"/v1/integrations", "application/json", string(got.Integrations[0])); st != 200 {
		t.Fatalf("DELETE: %d %s", st, b)
	}
	resp, _, _ = r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEmployment, "employments/"+person, "unemployment-benefit", person)
	if resp.StatusCode != 403 {
		t.Fatalf("after delete: %d", resp.StatusCode)
	}
	if st, _ := do(t, cl, "DELETE", r.Base+"/v1/integrations", "application/json", string(got.Integrations[0])); st != 409 {
		t.Fatalf("second DELETE: %d", st)
	}
	// Auditors see the history.
	if st, b := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/integrations?person="+person, "", ""); st != 200 ||
		!strings.Contains(string(b), `"action":"register"`) || !strings.Contains(string(b), `"action":"end"`) {
		t.Fatalf("history: %d %s", st, b)
	}
}

// TestAdminApply: an invalid network file changes nothing and lists every
// problem; a dry run writes nothing; a valid one applies.
func TestAdminApply(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	before := len(r.Hub.Directory.Snapshot().Participants)
	invalid := `participants:
  - {id: new-inst, name: New, kind: institution, status: active}
  - {id: Bad Id, name: X, kind: spaceship, status: active}
authorisations:
  - {id: a-new, reference: "CSSS/26/001", grantee: nobody, services: [nope], purposes: [x], validFrom: 2026-01-01, status: active}
`
	st, b := do(t, ops, "POST", r.Base+"/v1/admin/apply", "application/yaml", invalid)
	if st != 422 {
		t.Fatalf("invalid file: %d %s", st, b)
	}
	var p struct {
		Problems []struct{ Path, Message string }
	}
	json.Unmarshal(b, &p)
	if len(p.Problems) < 3 {
		t.Fatalf("want every problem listed, got %s", b)
	}
	if n := len(r.Hub.Directory.Snapshot().Participants); n != before {
		t.Fatalf("invalid file changed the registers: %d → %d participants", before, n)
	}
	valid := "participants:\n  - {id: new-inst, name: New institution, kind: institution, status: active}\n"
	st, b = do(t, ops, "POST", r.Base+"/v1/admin/apply?dry-run=true", "application/yaml", valid)
	if st != 200 || !strings.Contains(string(b), "new-inst") {
		t.Fatalf("dry run: %d %s", st, b)
	}
	if _, ok := r.Hub.Directory.Participant("new-inst"); ok {
		t.Fatal("dry run wrote")
	}
	if st, b = do(t, ops, "POST", r.Base+"/v1/admin/apply", "application/yaml", valid); st != 200 {
		t.Fatalf("apply: %d %s", st, b)
	}
	if _, ok := r.Hub.Directory.Participant("new-inst"); !ok {
		t.Fatal("apply did not reach the directory")
	}
	// Idempotent.
	st, b = do(t, ops, "POST", r.Base+"/v1/admin/apply", "application/yaml", valid)
	if st != 200 || !strings.Contains(string(b), `"changed":false`) {
		t.Fatalf("second apply: %d %s", st, b)
	}
	if st, _ := do(t, ops, "POST", r.Base+"/v1/admin/apply", "application/yaml", "participants: [[[["); st != 400 {
		t.Fatalf("unparsable file: %d", st)
	}
}

// TestCSRIssuance: an operator issues a certificate from a CSR; the key
// never leaves the institution, and the certificate names the participant
// given by the operator, not the CSR's subject.
func TestCSRIssuance(t *testing.T) {
	r := start(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ops"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	reqBody, _ := json.Marshal(map[string]string{"participant": demo.OCMW, "csr": csr})
	st, b := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/certificates", "application/json", string(reqBody))
	if st != 201 {
		t.Fatalf("issue: %d %s", st, b)
	}
	var out struct{ Certificate string }
	json.Unmarshal(b, &out)
	blk, _ := pem.Decode([]byte(out.Certificate))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != demo.OCMW {
		t.Fatalf("certificate names %q", cert.Subject.CommonName)
	}
	// Institutions cannot issue certificates.
	if st, _ := do(t, r.Clients.Client(demo.OCMW), "POST", r.Base+"/v1/admin/certificates", "application/json", string(reqBody)); st != 403 {
		t.Fatalf("institution issued a certificate: %d", st)
	}
	if st, _ := do(t, r.Clients.Client(demo.Operator), "POST", r.Base+"/v1/admin/certificates", "application/json", `{"participant":"ocmw-gent","csr":"garbage"}`); st != 422 {
		t.Fatalf("garbage CSR: %d", st)
	}
}

// TestHubIdentityIsReserved: nobody gets a certificate naming the hub, so
// nobody can sign requests or seals as the hub.
func TestHubIdentityIsReserved(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	if st, b := do(t, ops, "POST", r.Base+"/v1/admin/apply", "application/yaml", "participants:\n  - {id: hub, name: Fake hub, kind: institution, status: active}\n"); st != 422 {
		t.Fatalf("registering participant hub: %d %s", st, b)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	body, _ := json.Marshal(map[string]string{"participant": "hub", "csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if st, b := do(t, ops, "POST", r.Base+"/v1/admin/certificates", "application/json", string(body)); st != 403 {
		t.Fatalf("issuing a hub certificate: %d %s", st, b)
	}
}

// TestExpiryCheckedPerRequest: a keep-alive connection does not outlive its
// certificate.
func TestExpiryCheckedPerRequest(t *testing.T) {
	r := start(t)
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: demo.OCMW, Validity: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Hub.Registers.RecordCertificate(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	pair, _ := pki.LoadKeyPair(certPEM, keyPEM)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig(r.Hub.CA.Pool(), pair), MaxIdleConnsPerHost: 1}}
	if st, _ := do(t, cl, "GET", r.Base+"/v1/integrations", "", ""); st != 200 {
		t.Fatalf("fresh certificate: %d", st)
	}
	time.Sleep(time.Until(pair.Leaf.NotAfter) + 200*time.Millisecond)
	req, _ := http.NewRequest("GET", r.Base+"/v1/integrations", nil)
	resp, err := cl.Do(req) // same connection, kept alive
	if err != nil {
		t.Fatalf("the kept-alive connection was not reused: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("expired certificate on a kept-alive connection: %d", resp.StatusCode)
	}
}

// TestAuditorSearchBySubject: an auditor finds a person's exchanges however
// the identifier is written, and a malformed one is refused.
func TestAuditorSearchBySubject(t *testing.T) {
	r := start(t)
	p := r.People[0]
	if resp, _, err := r.Clients.Exchange(context.Background(), demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ); err != nil || resp.StatusCode != 200 {
		t.Fatalf("exchange: %v", err)
	}
	dotted := p.INSZ[:2] + "." + p.INSZ[2:4] + "." + p.INSZ[4:6] + "-" + p.INSZ[6:9] + "." + p.INSZ[9:]
	st, b := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/records?subject="+dotted, "", "")
	if st != 200 || !strings.Contains(string(b), p.INSZ) {
		t.Fatalf("search by %s: %d %s", dotted, st, b)
	}
	if st, _ := do(t, r.Clients.Client(demo.Operator), "GET", r.Base+"/v1/audit/records?subject=123", "", ""); st != 400 {
		t.Fatalf("malformed subject: %d", st)
	}
}
