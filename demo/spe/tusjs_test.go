package spedemo_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
	"github.com/crossroads-hub/crossroads/spe"
)

// tusJSClient is the version of the npm tus-js-client the test installs.
const tusJSClient = "tus-js-client@4.3.1"

// nodeModules installs tus-js-client into a cache directory once and
// returns its node_modules. Without node and npm the test is skipped,
// except in CI (CI=true), where they are required (.ci/run installs them).
func nodeModules(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI for the tus-js-client test (install nodejs and npm)", tool)
			}
			t.Skipf("%s not installed: skipping the upload with tus-js-client (CI installs it)", tool)
		}
	}
	dir := filepath.Join(os.TempDir(), "crossroads-"+tusJSClient)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "tus-js-client", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true}`), 0o644)
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, tusJSClient)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install %s: %v\n%s", tusJSClient, err, out)
		}
	}
	return filepath.Join(dir, "node_modules")
}

// TestTusJSClientResumes uploads with the npm tus-js-client, which aborts
// the upload mid-way through its PATCH and resumes it from the offset the
// hub reports; what the workspace holds is byte-identical to the file.
func TestTusJSClientResumes(t *testing.T) {
	modules := nodeModules(t)
	g := newGate()
	w := world(t, g.configure, spedemo.Options{})
	// Larger than what the loopback socket buffers hold, so that the
	// abort cuts the PATCH short.
	data := spedemo.Admissions(11, 300_000, false, false)
	file := filepath.Join(t.TempDir(), "admissions.csv")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("testdata/tus-upload.js")
	cmd := exec.Command("node", script, w.Base()+"/uploads/", file,
		filepath.Join(w.Dir, spedemo.HolderA+".crt"), filepath.Join(w.Dir, spedemo.HolderA+".key"), filepath.Join(w.Dir, "ca.crt"), spedemo.DatasetA)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	g.arm("upload") // the hub stops reading after the first segments
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				lines <- ev
			}
		}
		close(lines)
	}()
	next := func(want string) map[string]any {
		t.Helper()
		for ev := range lines {
			t.Logf("tus-js-client: %v", ev)
			if ev["event"] == "error" {
				t.Fatalf("tus-js-client: %v\n%s", ev, stderr.String())
			}
			if ev["event"] == want {
				return ev
			}
		}
		t.Fatalf("tus-js-client ended before %q: %s", want, stderr.String())
		return nil
	}
	url := next("created")["url"].(string)
	<-g.reached
	stdin.Write([]byte("abort\n"))
	next("aborted")
	close(g.release)
	// The hub keeps what arrived of the cut PATCH: some, not all.
	var offset int64
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest(http.MethodHead, url, nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		resp, err := w.Clients[spedemo.HolderA].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		offset, _ = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
		if resp.StatusCode == 200 && offset > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if offset <= 0 || offset >= int64(len(data)) {
		t.Fatalf("offset after the interruption: %d of %d", offset, len(data))
	}
	stdin.Write([]byte("resume\n"))
	if r := next("resumed"); r["sent"].(float64) < float64(offset) {
		t.Fatalf("resumed at %v, before the offset %d", r["sent"], offset)
	}
	next("done")

	var ws spe.WorkspaceView
	if st, _, err := w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, &ws); err != nil || st != 200 || len(ws.Uploads) != 1 {
		t.Fatalf("workspace: %d %v %+v", st, err, ws.Uploads)
	}
	sum := sha256.Sum256(data)
	if u := ws.Uploads[0]; u.Size != int64(len(data)) || u.SHA256 != hex.EncodeToString(sum[:]) || u.Filename != "admissions.csv" {
		t.Fatalf("upload %+v, want %d bytes of sha256 %x", u, len(data), sum)
	}
	// And it queries: 300 000 rows in three regions.
	st, _, v, err := w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", "")})
	if err != nil || st != 200 || v.Status != spe.ReleasePass || v.Result.Cells[0].N != 100_000 {
		t.Fatalf("query of the resumed upload: %d %v %+v", st, err, v)
	}
	t.Logf("interrupted at %d of %d bytes, resumed, byte-identical", offset, len(data))
}
