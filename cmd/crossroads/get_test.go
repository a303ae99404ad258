package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads/hub"
)

// TestGet reads every register with 'crossroads get' from the stores
// (both backends) and through a running hub's admin API with an operator
// and an auditor certificate, in the three output formats; the answers
// agree.
func TestGet(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		wd := t.TempDir()
		ok(t, wd, b.env, "init", "--dir", "data", "--operator", "crossroads-ops")
		ok(t, wd, b.env, "apply", "--dir", "data", "-f", networkFile(t))
		ok(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "dpa", "--out", "certs")
		ok(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "ocmw-gent", "--out", "certs")
		_, base := runningHub(t, wd, b, hub.Config{})
		remote := func(who string) []string {
			return []string{"--hub", base, "--cert", "certs/" + who + ".crt", "--key", "certs/" + who + ".key", "--ca", "certs/ca.crt"}
		}
		for _, kind := range []string{"participants", "services", "authorisations", "integrations", "certificates"} {
			local := ok(t, wd, b.env, "get", kind, "-o", "json", "--dir", "data")
			filter, want := []string{}, local
			if kind == "integrations" { // through the hub, the person directory only by participant or subject
				filter = []string{"--participant", "ocmw-gent"}
				fails(t, wd, nil, append([]string{"get", kind}, remote("crossroads-ops")...)...)
				want = ok(t, wd, b.env, "get", kind, "-o", "json", "--dir", "data", "--participant", "ocmw-gent")
			}
			for _, who := range []string{"crossroads-ops", "dpa"} {
				if got := ok(t, wd, nil, append(append([]string{"get", kind, "-o", "json"}, filter...), remote(who)...)...); got != want {
					t.Fatalf("get %s through the hub as %s:\n%s\nfrom the stores:\n%s", kind, who, got, want)
				}
			}
			var list []map[string]any
			if err := json.Unmarshal([]byte(local), &list); err != nil || len(list) == 0 {
				t.Fatalf("get %s -o json: %v (%d entries)", kind, err, len(list))
			}
			var fromYAML []map[string]any
			if err := yaml.Unmarshal([]byte(ok(t, wd, b.env, "get", kind, "-o", "yaml", "--dir", "data")), &fromYAML); err != nil || len(fromYAML) != len(list) {
				t.Fatalf("get %s -o yaml: %v, %d entries", kind, err, len(fromYAML))
			}
			tbl := ok(t, wd, b.env, "get", kind, "--dir", "data")
			if lines := strings.Count(strings.TrimSpace(tbl), "\n"); lines != len(list) {
				t.Fatalf("get %s: %d table rows for %d entries:\n%s", kind, lines, len(list), tbl)
			}
		}
		// One entry by id; a certificate by serial as openssl writes it.
		if out := ok(t, wd, b.env, "get", "participants", "rr", "-o", "json"); !strings.Contains(out, `"id": "rr"`) {
			t.Fatalf("get participants rr: %s", out)
		}
		serial := certSerial(t, filepath.Join(wd, "certs", "dpa.crt"))
		for _, args := range [][]string{{"--dir", "data"}, remote("dpa")} {
			out := ok(t, wd, b.env, append([]string{"get", "certificates", opensslSerial(serial), "-o", "json"}, args...)...)
			if !strings.Contains(out, `"serial": "`+serial+`"`) || !strings.Contains(out, "BEGIN CERTIFICATE") {
				t.Fatalf("get certificates %s: %s", opensslSerial(serial), out)
			}
			fails(t, wd, b.env, append([]string{"get", "participants", "nobody"}, args...)...)
			fails(t, wd, b.env, append([]string{"get", "certificates", "not-a-serial"}, args...)...)
			fails(t, wd, b.env, append([]string{"get", "spaceships"}, args...)...)
		}
		if out := ok(t, wd, b.env, "get", "integrations", "85.07.30-033.28", "--dir", "data"); !strings.Contains(out, "85073003328") {
			t.Fatalf("get integrations by subject: %s", out)
		}
		// A participant that is neither operator nor auditor is refused.
		if r := cli(t, wd, nil, append([]string{"get", "participants"}, remote("ocmw-gent")...)...); r.code == 0 || !strings.Contains(r.stderr, "403") {
			t.Fatalf("an institution read the registers: %+v", r)
		}
		// The admin API: a malformed serial is 400, not 503; any spelling revokes.
		ops := client(t, wd, "crossroads-ops")
		for path, want := range map[string]int{
			"/v1/admin/certificates/zz:zz/revoke":                            400,
			"/v1/admin/certificates/" + strings.Repeat("a", 200) + "/revoke": 400,
			"/v1/admin/certificates/" + opensslSerial(serial) + "/revoke":    200,
			"/v1/admin/registers/spaceships":                                 400,
			"/v1/admin/registers/certificates/xyz":                           400,
		} {
			method := http.MethodPost
			if strings.Contains(path, "registers") {
				method = http.MethodGet
			}
			var body []byte
			if method == http.MethodPost {
				body = []byte("{}") // a state-changing admin call sends JSON (else 415)
			}
			req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := ops.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
			}
		}
		if out := ok(t, wd, b.env, "get", "certificates", serial, "--dir", "data"); !strings.Contains(out, "T") || strings.HasSuffix(strings.TrimSpace(out), "-") {
			t.Fatalf("revoked through the API with an openssl-style serial, but:\n%s", out)
		}
	})
}
