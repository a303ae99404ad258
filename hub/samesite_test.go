package hub_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
)

// send makes a request with the given headers.
func send(t *testing.T, cl *http.Client, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestAdminRefusesCrossSite: state-changing admin requests that a browser
// could send cross-site — a form post (text/plain, urlencoded, multipart),
// a request from another origin or site — change nothing.
func TestAdminRefusesCrossSite(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	apply := r.Base + "/v1/admin/apply"
	for name, c := range map[string]struct {
		headers map[string]string
		status  int
		reason  string
	}{
		"text/plain form":      {map[string]string{"Content-Type": "text/plain"}, 415, "unsupported-media-type"},
		"urlencoded form":      {map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"},
		"multipart form":       {map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported-media-type"},
		"no content type":      {map[string]string{}, 415, "unsupported-media-type"},
		"cross-site origin":    {map[string]string{"Content-Type": "application/yaml", "Origin": "https://evil.example"}, 403, "cross-site-request"},
		"null origin":          {map[string]string{"Content-Type": "application/yaml", "Origin": "null"}, 403, "cross-site-request"},
		"plain-http own host":  {map[string]string{"Content-Type": "application/yaml", "Origin": "http://" + strings.TrimPrefix(r.Base, "https://")}, 403, "cross-site-request"},
		"fetch cross-site":     {map[string]string{"Content-Type": "application/yaml", "Sec-Fetch-Site": "cross-site"}, 403, "cross-site-request"},
		"fetch same-site":      {map[string]string{"Content-Type": "application/yaml", "Sec-Fetch-Site": "same-site"}, 403, "cross-site-request"},
		"form, cross-site too": {map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403, "cross-site-request"},
	} {
		t.Run(name, func(t *testing.T) {
			st, b := send(t, ops, "POST", apply, newInstitution, c.headers)
			if st != c.status || !strings.Contains(b, c.reason) {
				t.Fatalf("status %d, want %d %s: %s", st, c.status, c.reason, b)
			}
			if _, ok := r.Hub.Directory.Participant("trail-test-inst"); ok {
				t.Fatal("applied")
			}
		})
	}
	if p := records(t, r, "kind=register-apply"); len(p.Records) != 0 {
		t.Fatalf("refused applies recorded as applied: %+v", p.Records)
	}
	// From the hub's own origin, as a browser console would send it, it passes.
	st, b := send(t, ops, "POST", apply, newInstitution, map[string]string{"Content-Type": "application/yaml; charset=utf-8", "Origin": r.Base, "Sec-Fetch-Site": "same-origin"})
	if st != 200 {
		t.Fatalf("same-origin apply: %d %s", st, b)
	}
	// The integrations API follows the same rules.
	body := `{"person":"` + r.People[0].INSZ + `","sector":"unemployment","capacity":"claimant"}`
	if st, b := send(t, r.Clients.Client(demo.ONEM), "PUT", r.Base+"/v1/integrations", body, map[string]string{"Content-Type": "text/plain"}); st != 415 {
		t.Fatalf("integration as text/plain: %d %s", st, b)
	}
	if st, b := send(t, r.Clients.Client(demo.ONEM), "DELETE", r.Base+"/v1/integrations", body, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}); st != 403 {
		t.Fatalf("cross-site delete: %d %s", st, b)
	}
	// A JSON route refuses YAML.
	if st, b := send(t, ops, "POST", r.Base+"/v1/admin/certificates", "participant: ocmw", map[string]string{"Content-Type": "application/yaml"}); st != 415 {
		t.Fatalf("CSR as YAML: %d %s", st, b)
	}
}

// TestRevokeRefusesEmptyPost: a revocation needs a JSON body ({} at least).
func TestRevokeRefusesEmptyPost(t *testing.T) {
	r := start(t)
	ops := r.Clients.Client(demo.Operator)
	csr := newCSR(t)
	st, b := do(t, ops, "POST", r.Base+"/v1/admin/certificates", "application/json", `{"participant":"`+demo.ONEM+`","csr":`+jsonString(csr)+`}`)
	if st != 201 {
		t.Fatalf("issue: %d %s", st, b)
	}
	serial := between(string(b), `"serial":"`, `"`)
	url := r.Base + "/v1/admin/certificates/" + serial + "/revoke"
	if st, b := send(t, ops, "POST", url, "", nil); st != 415 {
		t.Fatalf("empty POST: %d %s", st, b)
	}
	if st, b := send(t, ops, "POST", url, "", map[string]string{"Content-Type": "application/json"}); st != 400 {
		t.Fatalf("empty JSON POST: %d %s", st, b)
	}
	if r.Hub.Revs.IsRevoked(serial) {
		t.Fatal("revoked by an empty POST")
	}
	if st, b := send(t, ops, "POST", url, "{}", map[string]string{"Content-Type": "application/json"}); st != 200 {
		t.Fatalf("revoke with {}: %d %s", st, b)
	}
	if !r.Hub.Revs.IsRevoked(serial) {
		t.Fatal("not revoked")
	}
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func between(s, start, end string) string {
	_, after, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(after, end)
	return v
}
