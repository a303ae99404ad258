package load

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const mixJSON = `{"requests": [
  {"name": "allowed", "weight": 9, "path": "/v1/exchange/population/persons/85073003328?fields=name",
   "header": {"crossroads-purpose": "unemployment-benefit", "Crossroads-User": "u1"}, "expect": 200},
  {"name": "denied", "weight": 1, "method": "post", "path": "/v1/exchange/population/search",
   "bodyJson": {"subjects": ["85073003328"]}, "expect": 403}
]}`

const mixYAML = `
requests:
  - name: allowed
    weight: 9
    path: /v1/exchange/population/persons/85073003328?fields=name
    header:
      crossroads-purpose: unemployment-benefit
      Crossroads-User: u1
    expect: 200
  - name: denied
    weight: 1
    method: post
    path: /v1/exchange/population/search
    bodyJson:
      subjects: ["85073003328"]
    expect: 403
`

func TestParseMix(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"mix.json": mixJSON, "mix.yaml": mixYAML} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		reqs, err := LoadMix(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(reqs) != 2 {
			t.Fatalf("%s: %d requests", name, len(reqs))
		}
		a, d := reqs[0], reqs[1]
		if a.Method != "GET" || a.Weight != 9 || a.Expect != 200 || a.Header.Get("Crossroads-Purpose") != "unemployment-benefit" || a.Body != nil {
			t.Errorf("%s: allowed = %+v", name, a)
		}
		if d.Method != "POST" || string(d.Body) != `{"subjects":["85073003328"]}` || d.Header.Get("Content-Type") != "application/json" || d.Expect != 403 {
			t.Errorf("%s: denied = %+v body %s", name, d, d.Body)
		}
	}
	for name, bad := range map[string]string{
		"unknown field": `{"requests":[{"path":"/x","bogus":1}]}`,
		"relative path": `{"requests":[{"path":"x"}]}`,
		"empty":         `{"requests":[]}`,
		"both bodies":   `{"requests":[{"path":"/x","body":"a","bodyJson":{}}]}`,
		"not json":      `requests: []`,
	} {
		if _, err := ParseMix([]byte(bad), "json"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseMix([]byte(mixJSON), "toml"); err == nil {
		t.Error("unknown format accepted")
	}
	if _, err := ParseMix([]byte("requests:\n  - path: /x\n    bogus: 1\n"), "yaml"); err == nil {
		t.Error("unknown YAML field accepted")
	}
}

func TestBaselineMix(t *testing.T) {
	reqs, err := ParseMix([]byte(mixJSON), "json")
	if err != nil {
		t.Fatal(err)
	}
	direct := Baseline(reqs, true)
	if direct[0].Path != "/persons/85073003328?fields=name" || direct[1].Path != "/search" || direct[0].Expect != 0 || direct[1].Expect != 0 {
		t.Fatalf("direct = %+v", direct)
	}
	proxied := Baseline(reqs, false)
	if proxied[0].Path != reqs[0].Path || proxied[0].Expect != 0 || reqs[0].Expect != 200 {
		t.Fatalf("proxied = %+v (original %+v)", proxied[0], reqs[0])
	}
	proxied[0].Header.Set("X", "y")
	if reqs[0].Header.Get("X") != "" || !strings.HasPrefix(reqs[1].Path, ExchangePrefix) {
		t.Fatal("Baseline changed its input")
	}
}

func TestClientTLSFromFiles(t *testing.T) {
	p := newPKI(t)
	srv, _ := exchangeServer(t, p, 0)
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key, err := x509.MarshalPKCS8PrivateKey(p.Client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := write("client.pem", "CERTIFICATE", p.Client.Certificate[0])
	keyFile := write("client.key", "PRIVATE KEY", key)
	caFile := write("ca.pem", "CERTIFICATE", p.ca.Raw)

	tc, err := ClientTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Target: srv.URL, TLS: tc, Requests: mix()[:1], Duration: 5 * time.Second, MaxRequests: 5})
	if err != nil || rep.Status[200] != 5 {
		t.Fatalf("err %v, status %v, errors %v", err, rep.Status, rep.Errors)
	}
	if _, err := ClientTLS(certFile, keyFile, keyFile); err == nil {
		t.Error("a key accepted as CA")
	}
	if _, err := ClientTLS(certFile, filepath.Join(dir, "absent"), caFile); err == nil {
		t.Error("missing key accepted")
	}
}
