package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks the served OpenAPI document against the
// real routing table, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	r := start(t)
	resp, err := r.Clients.Client("ops").Get(r.Base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	routes := r.Hub.API.Routes()
	covers := func(pattern, method, path, opMethod string) bool {
		if method != "" && !strings.EqualFold(method, opMethod) {
			return false
		}
		if strings.HasSuffix(pattern, "/") {
			return strings.HasPrefix(path, pattern)
		}
		return pattern == path
	}
	for _, rt := range routes {
		found := false
		for path, ops := range doc.Paths {
			for m := range ops {
				if m == "parameters" {
					continue
				}
				if covers(rt.Pattern, rt.Method, path, m) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("route %s %s is not in openapi.json", rt.Method, rt.Pattern)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			found := false
			for _, rt := range routes {
				if covers(rt.Pattern, rt.Method, path, m) {
					found = true
				}
			}
			if !found {
				t.Errorf("openapi.json documents %s %s, which no route serves", strings.ToUpper(m), path)
			}
		}
	}
	// Every public GET without parameters answers.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/authorizations", "/v1/services", "/v1/log/checkpoint", "/v1/log/key"} {
		resp, err := r.Clients.Client("ops").Get(r.Base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}
