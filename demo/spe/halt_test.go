package spedemo_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/spe"
)

// gate stops a transfer or a query at its second segment until the test
// has acted (halted the workspace, ended the permit).
type gate struct {
	mu      sync.Mutex
	stage   string
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) arm(stage string) {
	g.mu.Lock()
	g.stage, g.armed = stage, true
	g.mu.Unlock()
}

func (g *gate) progress(permit, stage string, n int64) {
	g.mu.Lock()
	hit := g.armed && stage == g.stage && n >= spe.SegmentSize
	if hit {
		g.armed = false
	}
	g.mu.Unlock()
	if hit {
		close(g.reached)
		<-g.release
	}
}

func (g *gate) configure(c *hub.Config) { c.SPE.Progress = g.progress }

// inFlight runs fn in the background and returns its outcome later.
func inFlight(fn func() (int, error)) func() (int, error) {
	type res struct {
		st  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := fn()
		ch <- res{st, err}
	}()
	return func() (int, error) {
		select {
		case r := <-ch:
			return r.st, r.err
		case <-time.After(30 * time.Second):
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func TestHaltStopsUploadAndQueryInProgress(t *testing.T) {
	g := newGate()
	w := world(t, g.configure, spedemo.Options{})
	big := spedemo.Admissions(7, 8000, false, false) // several segments
	mustUpload(t, w, spedemo.HolderB, spedemo.DatasetB, big)

	// An upload in progress, halted between two segments.
	g.arm("upload")
	wait := inFlight(func() (int, error) {
		_, st, err := w.Upload(ctx, spedemo.HolderA, spedemo.DatasetA, big)
		return st, err
	})
	<-g.reached
	if st, reason, err := w.Call(ctx, demo.Operator, http.MethodPost, "/halt", map[string]string{"reason": "suspected re-identification attempt"}, nil); err != nil || st != 200 {
		t.Fatalf("halt: %d %s %v", st, reason, err)
	}
	close(g.release)
	if st, err := wait(); err == nil && st == http.StatusNoContent {
		t.Fatal("the upload in progress completed after the halt")
	}
	for _, as := range []string{spedemo.Researcher, spedemo.HolderA, spedemo.Reviewer1} {
		if st, reason, _ := w.Call(ctx, as, http.MethodGet, "", nil, nil); st != 403 || reason != string(crossroads.ReasonWorkspaceHalted) {
			t.Fatalf("%s after the halt: %d %s", as, st, reason)
		}
	}
	if st, _, _ := w.Call(ctx, spedemo.AccessBody, http.MethodGet, "/releases", nil, nil); st != 403 {
		t.Fatalf("the access body reads releases of a halted workspace: %d", st)
	}
	if st, _, _ := w.Call(ctx, spedemo.AccessBody, http.MethodGet, "", nil, nil); st != 200 {
		t.Fatalf("the access body's view of the halted workspace: %d", st)
	}
	if _, st, _ := w.Upload(ctx, spedemo.HolderA, spedemo.DatasetA, big); st != 403 {
		t.Fatalf("a new upload after the halt: %d", st)
	}
	var ws spe.WorkspaceView
	if st, _, _ := w.Call(ctx, demo.Operator, http.MethodGet, "", nil, &ws); st != 200 || ws.State != spe.StateHalted || ws.Actor != demo.Operator || len(ws.Uploads) != 1 {
		t.Fatalf("operator's view: %d %+v", st, ws)
	}
	acts := actions(speRecords(t, w))
	if acts["halt"] != 1 {
		t.Fatalf("audit actions %v", acts)
	}

	// Resumed by the operator; then a query in progress, halted.
	if st, _, _ := w.Call(ctx, demo.Operator, http.MethodPost, "/resume", nil, nil); st != 200 {
		t.Fatalf("resume: %d", st)
	}
	g.reached, g.release = make(chan struct{}), make(chan struct{})
	g.arm("query")
	wait = inFlight(func() (int, error) {
		st, _, _, err := w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetB, []string{"region"}, "count", "")})
		return st, err
	})
	<-g.reached
	if st, _, _ := w.Call(ctx, spedemo.AccessBody, http.MethodPost, "/halt", map[string]string{"reason": "permit under investigation"}, nil); st != 200 {
		t.Fatalf("halt by the access body: %d", st)
	}
	close(g.release)
	if st, err := wait(); err == nil && st == http.StatusOK {
		t.Fatal("the query in progress completed after the halt")
	}
	if st, reason, _ := w.Call(ctx, spedemo.Researcher, http.MethodPost, "/queries",
		spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetB, []string{"region"}, "count", "")}, nil); st != 403 || reason != string(crossroads.ReasonWorkspaceHalted) {
		t.Fatalf("a query after the halt: %d %s", st, reason)
	}
	if acts := actions(speRecords(t, w)); acts["halt"] != 2 || acts["resume"] != 1 || acts["query"] != 0 {
		t.Fatalf("audit actions %v", acts)
	}
	// Members may not halt or resume.
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodPost, "/resume", nil, nil); st != 403 {
		t.Fatalf("resume by the researcher: %d", st)
	}
}

func TestExpiryTerminatesAtOnce(t *testing.T) {
	g := newGate()
	w := world(t, g.configure, spedemo.Options{})
	big := spedemo.Admissions(8, 8000, false, false)
	g.arm("upload")
	wait := inFlight(func() (int, error) {
		_, st, err := w.Upload(ctx, spedemo.HolderA, spedemo.DatasetA, big)
		return st, err
	})
	<-g.reached
	// The access body revokes the permit (an expiry acts the same: the
	// permit is no longer in force).
	p := w.Permit
	p.Status = crossroads.StatusRevoked
	if err := w.SetPermit(ctx, p); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	if st, err := wait(); err == nil && st == http.StatusNoContent {
		t.Fatal("the upload in progress completed after the permit ended")
	}
	if st, reason, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, nil); st != 403 || reason != string(crossroads.ReasonPermitNotActive) {
		t.Fatalf("after revocation: %d %s", st, reason)
	}
	deadline := time.Now().Add(10 * time.Second)
	for actions(speRecords(t, w))["terminate"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no terminate record: %v", actions(speRecords(t, w)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Even back in force, a terminated workspace stays closed.
	p.Status = crossroads.StatusActive
	w.SetPermit(ctx, p)
	if st, _, _ := w.Call(ctx, demo.Operator, http.MethodPost, "/resume", nil, nil); st != 409 {
		t.Fatalf("resume of a terminated workspace: %d", st)
	}
	if st, reason, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, nil); st != 403 || reason != string(crossroads.ReasonWorkspaceHalted) {
		t.Fatalf("terminated workspace: %d %s", st, reason)
	}

	// Expiry by time: the watcher terminates an idle workspace whose
	// permit's validity ends.
	o := spedemo.NewPermit(spedemo.Options{PermitID: "permit-short"})
	o.ValidTo = time.Now().Add(1500 * time.Millisecond)
	if err := w.SetPermit(ctx, o); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, nil); st != 200 {
		t.Fatalf("short permit in force: %d", st)
	}
	deadline = time.Now().Add(10 * time.Second)
	for actions(speRecords(t, w))["terminate"] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not terminate the expired workspace: %v", actions(speRecords(t, w)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWorkspacesIsolated(t *testing.T) {
	w := world(t, nil, spedemo.Options{})
	data := spedemo.Admissions(9, 200, false, false)
	loc := mustUpload(t, w, spedemo.HolderA, spedemo.DatasetA, data)
	id := filepath.Base(loc)
	other := spedemo.NewPermit(spedemo.Options{PermitID: "permit-other"})
	if err := w.SetPermit(ctx, other); err != nil {
		t.Fatal(err)
	}
	mustUpload(t, w, spedemo.HolderA, spedemo.DatasetA, spedemo.Admissions(10, 200, false, false))

	head := func(url string) int {
		req, _ := http.NewRequest(http.MethodHead, url, nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		resp, err := w.Clients[spedemo.HolderA].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := head(loc); st != 200 {
		t.Fatalf("own upload: %d", st)
	}
	otherBase := w.Run.Base + "/v1/spe/permits/permit-other/uploads/"
	if st := head(otherBase + id); st != 404 {
		t.Fatalf("another permit's upload id: %d", st)
	}
	for _, p := range []string{"..%2Fpermit-cardio%2Fuploads%2F" + id, "..%2F..%2F..%2Fspe.db", id + "%00", "%2e%2e"} {
		if st := head(otherBase + p); st == 200 {
			t.Fatalf("traversal %s: %d", p, st)
		}
	}
	// A link planted in one workspace towards another's file leads nowhere.
	dataDir := filepath.Dir(w.Run.Dir)
	fake := "0123456789abcdef0123456789abcdef"
	if err := os.Symlink(filepath.Join(dataDir, "spe", "permit-cardio", "uploads", id+".info"),
		filepath.Join(dataDir, "spe", "permit-other", "uploads", fake+".info")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../permit-cardio/uploads/"+id+".data", filepath.Join(dataDir, "spe", "permit-other", "uploads", fake+".data")); err != nil {
		t.Fatal(err)
	}
	if st := head(otherBase + fake); st != 404 {
		t.Fatalf("symlinked upload: %d", st)
	}
	// Each workspace has a key of its own in the key ring.
	a, err1 := w.Run.Hub.Keys.Secret(ctx, spe.KeyKind("permit-cardio"))
	b, err2 := w.Run.Hub.Keys.Secret(ctx, spe.KeyKind("permit-other"))
	if err1 != nil || err2 != nil || len(a.Key) != 32 || bytes.Equal(a.Key, b.Key) {
		t.Fatalf("workspace keys: %v %v", err1, err2)
	}
	// The operator lists the permits but reads no contents.
	if st, _, _ := w.Call(ctx, demo.Operator, http.MethodPost, "/queries", spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", "")}, nil); st != 403 {
		t.Fatalf("operator query: %d", st)
	}
	if st, _, _ := w.Call(ctx, demo.Operator, http.MethodGet, "/releases", nil, nil); st != 403 {
		t.Fatalf("operator releases: %d", st)
	}
}
