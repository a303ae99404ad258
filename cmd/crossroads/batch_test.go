package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/personid"
)

// TestBatchCommands submits a batch from a file and from standard input
// with the participant's certificate, follows it (plain lines: not a
// terminal), shows its status and fetches its results; a malformed file
// is refused with the lines named, and another participant cannot read.
func TestBatchCommands(t *testing.T) {
	wd := t.TempDir()
	ok(t, wd, nil, "init", "--dir", "data", "--operator", "crossroads-ops")
	ok(t, wd, nil, "apply", "--dir", "data", "-f", networkFile(t))
	ok(t, wd, nil, "ca", "issue", "--dir", "data", "--participant", "ocmw-gent", "--out", "certs")
	ok(t, wd, nil, "ca", "issue", "--dir", "data", "--participant", "rva", "--out", "certs")
	_, base := runningHub(t, wd, backend{name: "sqlite"}, hub.Config{})
	as := func(who string) []string {
		return []string{"--hub", base, "--cert", "certs/" + who + ".crt", "--key", "certs/" + who + ".key", "--ca", "certs/ca.crt", "--user", "jan"}
	}
	subject := personid.Make("850731", 1, false)
	items := `{"operation":"rr.person/read","parameters":{"subject":"` + subject + `"},"purpose":"social-integration.eligibility","user":"jan"}
{"service":"tax-returns","path":"/x","purpose":"p","user":"jan"}
{"operation":"rr.person/write","parameters":{"subject":"` + subject + `"},"purpose":"p","user":"jan"}
`
	if err := os.WriteFile(filepath.Join(wd, "items.ndjson"), []byte(items), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, wd, nil, append([]string{"batch", "submit", "-f", "items.ndjson", "--wait"}, as("ocmw-gent")...)...)
	if r.code != 0 {
		t.Fatalf("submit: %d %s %s", r.code, r.stdout, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "batch "+id+": 3/3 done (0 allowed, 3 denied, 0 failed)") || strings.Contains(r.stderr, "\r") {
		t.Fatalf("progress lines:\n%s", r.stderr)
	}
	st := ok(t, wd, nil, append([]string{"batch", "status", id}, as("ocmw-gent")...)...)
	if !strings.Contains(st, "done, 3 of 3 done: 0 allowed, 3 denied, 0 failed") {
		t.Fatalf("status: %s", st)
	}
	var p batch.Progress
	if err := json.Unmarshal([]byte(ok(t, wd, nil, append([]string{"batch", "status", id, "-o", "json"}, as("ocmw-gent")...)...)), &p); err != nil || p.Total != 3 {
		t.Fatalf("status -o json: %+v %v", p, err)
	}
	ok(t, wd, nil, append([]string{"batch", "fetch", id, "-o", "results.ndjson"}, as("ocmw-gent")...)...)
	b, err := os.ReadFile(filepath.Join(wd, "results.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []crossroads.Reason{crossroads.ReasonNoIntegration, crossroads.ReasonUnknownService, crossroads.ReasonUnknownOperation}
	if len(lines) != 3 {
		t.Fatalf("results:\n%s", b)
	}
	for i, l := range lines {
		var res crossroads.BatchResult
		if err := json.Unmarshal([]byte(l), &res); err != nil || res.Reason != want[i] || res.Receipt == "" {
			t.Fatalf("line %d: %s (%v)", i+1, l, err)
		}
	}
	if out := ok(t, wd, nil, append([]string{"batch", "fetch", id, "--after", "2"}, as("ocmw-gent")...)...); strings.Count(out, "\n") != 1 {
		t.Fatalf("fetch --after 2: %s", out)
	}
	// Another participant: not found.
	if r := fails(t, wd, nil, append([]string{"batch", "status", id}, as("rva")...)...); !strings.Contains(r.stderr, "batch-not-found") {
		t.Fatalf("rva reads ocmw's batch: %s", r.stderr)
	}
	// From standard input.
	cmd := exec.Command(bin, append([]string{"batch", "submit"}, as("ocmw-gent")...)...)
	cmd.Dir, cmd.Env, cmd.Stdin = wd, cleanEnv(), strings.NewReader(items)
	out, err := cmd.Output()
	if err != nil || len(strings.TrimSpace(string(out))) != 36 {
		t.Fatalf("submit from stdin: %v %s", err, out)
	}
	// Malformed: refused, lines named.
	os.WriteFile(filepath.Join(wd, "bad.ndjson"), []byte(items+"{oops\n"), 0o600)
	if r := fails(t, wd, nil, append([]string{"batch", "submit", "-f", "bad.ndjson"}, as("ocmw-gent")...)...); !strings.Contains(r.stderr, "batch-invalid-item") || !strings.Contains(r.stderr, "line 4") {
		t.Fatalf("malformed: %s", r.stderr)
	}
	if r := fails(t, wd, nil, "batch", "submit", "-f", "items.ndjson"); !strings.Contains(r.stderr, "--hub, --cert, --key and --ca are required") {
		t.Fatalf("no flags: %s", r.stderr)
	}
}

func TestProgressBar(t *testing.T) {
	p := batch.Progress{Batch: crossroads.Batch{Total: 10, Done: 5, Allowed: 3, Denied: 1, Failed: 1}}
	if got := progressBar(p, 10); got != "[#####-----] 5/10  allowed 3  denied 1  failed 1" {
		t.Fatalf("bar %q", got)
	}
	if got := progressBar(batch.Progress{}, 4); got != "[----] 0/0  allowed 0  denied 0  failed 0" {
		t.Fatalf("empty bar %q", got)
	}
}

func TestBatchServeFlags(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	opts := addBatchServeFlags(fs)
	if err := fs.Parse([]string{"--batch-retention", "48h", "--batch-per-participant", "2", "--batch-max-items", "500"}); err != nil {
		t.Fatal(err)
	}
	o := opts()
	if o.Retention != 48*time.Hour || o.PerParticipant != 2 || o.MaxItems != 500 || o.Workers != batch.DefaultWorkers || o.PerProvider != batch.DefaultPerProvider {
		t.Fatalf("options %+v", o)
	}
}
