package demo_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
)

// hubCall sends a request to a demo source as the hub does: over mutual
// TLS with the hub's certificate, signed (unless sign is false).
type hubCall struct {
	r  *demo.Running
	cl *http.Client
}

func newHubCall(r *demo.Running) *hubCall {
	return &hubCall{r: r, cl: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Hub.Cert)}}}
}

func (c *hubCall) do(t *testing.T, method, url, subject, ctype, body string, sign bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header.Set(pki.HeaderExchangeID, uuid.Must(uuid.NewV7()).String())
	req.Header.Set(pki.HeaderRequester, demo.OCMW)
	req.Header.Set(pki.HeaderUser, "test@ocmw")
	req.Header.Set(pki.HeaderPurpose, "social-aid")
	req.Header.Set(pki.HeaderAuthorisation, "ocmw-social-aid")
	if subject != "" {
		req.Header.Set(pki.HeaderSubject, subject)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if sign {
		if err := pki.SignRequest(c.r.Hub.Signer, req, []byte(body), pki.RequestClaims{Service: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

// TestSourcesOwnCertificates: every demo source serves its own
// participant's server certificate (what the hub's transport requires).
func TestSourcesOwnCertificates(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 10})
	for id, url := range map[string]string{
		demo.PopulationRegister: r.URLs.Population, demo.EmploymentRegister: r.URLs.Employment,
		demo.RetiredRegister: r.URLs.Retired, demo.EnterpriseRegister: r.URLs.Enterprise,
	} {
		host := strings.TrimPrefix(url, "https://")
		conn, err := tls.Dial("tcp", host, pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Hub.Cert))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got, err := pki.ParticipantID(conn.ConnectionState().PeerCertificates[0])
		conn.Close()
		if err != nil || got != id {
			t.Errorf("%s serves the certificate of %q (%v)", id, got, err)
		}
		if r.Sources[id] == nil {
			t.Errorf("%s not in Running.Sources", id)
		}
	}
}

// TestSourcesRefuseUnsigned: the sources answer only signed hub requests.
func TestSourcesRefuseUnsigned(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 10})
	c := newHubCall(r)
	p := r.People[0]
	for _, url := range []string{r.URLs.Population + "/persons/" + p.INSZ, r.URLs.Enterprise + "/enterprises/" + r.Companies[0].Number} {
		if st, v := c.do(t, http.MethodGet, url, "", "", "", false); st != http.StatusUnauthorized || v["reason"] != "invalid-hub-signature" {
			t.Errorf("%s unsigned: %d %v", url, st, v)
		}
	}
}

// TestCorrectAddress: PUT /persons/{insz}/address changes the person's
// address in the population register; bad bodies are refused.
func TestCorrectAddress(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 10})
	c := newHubCall(r)
	p := r.People[1]
	url := r.URLs.Population + "/persons/" + p.INSZ + "/address"
	for _, tc := range []struct {
		name, subject, ctype, body string
		status                     int
		reason                     string
	}{
		{"not JSON", p.INSZ, "text/plain", `street=x`, 415, "unsupported-media-type"},
		{"malformed", p.INSZ, "application/json", `{"street":`, 400, "invalid-body"},
		{"unknown member", p.INSZ, "application/json", `{"street":"a","postalCode":"9000","city":"Gent","floor":3}`, 400, "invalid-body"},
		{"two objects", p.INSZ, "application/json", `{"street":"a","postalCode":"9000","city":"Gent"} {}`, 400, "invalid-body"},
		{"missing city", p.INSZ, "application/json", `{"street":"a","postalCode":"9000"}`, 422, "invalid-address"},
		{"bad postal code", p.INSZ, "application/json", `{"street":"a","postalCode":"90000","city":"Gent"}`, 422, "invalid-address"},
		{"another subject", r.People[2].INSZ, "application/json", `{"street":"a","postalCode":"9000","city":"Gent"}`, 400, "subject-mismatch"},
	} {
		if st, v := c.do(t, http.MethodPut, url, tc.subject, tc.ctype, tc.body, true); st != tc.status || v["reason"] != tc.reason {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, v, tc.status, tc.reason)
		}
	}
	if got, _ := r.Sources[demo.PopulationRegister].Person(p.INSZ); got.Street != p.Street {
		t.Fatalf("a refused PUT changed the address: %+v", got)
	}
	if st, v := c.do(t, http.MethodPut, r.URLs.Population+"/persons/00000000000/address", "", "application/json", `{"street":"a","postalCode":"9000","city":"Gent"}`, true); st != 404 {
		t.Errorf("unknown person: %d %v", st, v)
	}

	st, v := c.do(t, http.MethodPut, url, p.INSZ, "application/json; charset=utf-8", `{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`, true)
	if st != http.StatusOK {
		t.Fatalf("PUT: %d %v", st, v)
	}
	want := map[string]any{"street": "Veldstraat 1", "postalCode": "9000", "city": "Gent"}
	if a, _ := v["address"].(map[string]any); v["insz"] != p.INSZ || a["street"] != want["street"] || a["postalCode"] != want["postalCode"] || a["city"] != want["city"] {
		t.Errorf("PUT answered %v", v)
	}
	if got, _ := r.Sources[demo.PopulationRegister].Person(p.INSZ); got.Street != "Veldstraat 1" || got.City != "Gent" {
		t.Errorf("the in-memory person was not changed: %+v", got)
	}
	if st, v := c.do(t, http.MethodGet, r.URLs.Population+"/persons/"+p.INSZ, p.INSZ, "", "", true); st != 200 || v["address"].(map[string]any)["street"] != "Veldstraat 1" {
		t.Errorf("GET after PUT: %d %v", st, v)
	}
	if r.People[1].Street != p.Street {
		t.Error("the PUT changed the caller's slice of people")
	}
}

// TestEnterpriseRegister: GET /enterprises/{cbe} serves the companies of
// demo.Companies; unknown numbers are 404.
func TestEnterpriseRegister(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 10})
	c := newHubCall(r)
	co := r.Companies[len(r.Companies)-1]
	st, v := c.do(t, http.MethodGet, r.URLs.Enterprise+"/enterprises/"+co.Number, co.Number, "", "", true)
	if st != http.StatusOK {
		t.Fatalf("GET: %d %v", st, v)
	}
	for k, want := range map[string]string{"enterpriseNumber": co.Number, "name": co.Name, "legalForm": co.LegalForm, "status": co.Status, "startDate": co.StartDate} {
		if v[k] != want {
			t.Errorf("%s = %v, want %q", k, v[k], want)
		}
	}
	if a, _ := v["address"].(map[string]any); a["street"] != co.Street || a["postalCode"] != co.PostalCode || a["city"] != co.City {
		t.Errorf("address %v", v["address"])
	}
	if e, _ := v["establishments"].([]any); len(e) != len(co.Establishments) || e[0] != co.Establishments[0] {
		t.Errorf("establishments %v, want %v", v["establishments"], co.Establishments)
	}
	dotted := co.Number[:4] + "." + co.Number[4:7] + "." + co.Number[7:]
	if st, v := c.do(t, http.MethodGet, r.URLs.Enterprise+"/enterprises/"+dotted, co.Number, "", "", true); st != 200 || v["enterpriseNumber"] != co.Number {
		t.Errorf("dotted form: %d %v", st, v)
	}
	for _, num := range []string{personid.MakeEnterprise(12_345_678), "0123456789", "x"} { // valid but unknown; bad check digits; not a number
		if st, v := c.do(t, http.MethodGet, r.URLs.Enterprise+"/enterprises/"+num, "", "", "", true); st != http.StatusNotFound || v["reason"] != "not-found" {
			t.Errorf("%s: %d %v", num, st, v)
		}
	}
	if st, v := c.do(t, http.MethodGet, r.URLs.Enterprise+"/enterprises/"+co.Number, r.Companies[0].Number, "", "", true); st != 400 || v["reason"] != "subject-mismatch" {
		t.Errorf("subject mismatch: %d %v", st, v)
	}
}
