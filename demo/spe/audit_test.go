package spedemo_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
	"github.com/crossroads-hub/crossroads/spe"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// flakyTrail is the hub's real trail, made to fail on demand.
type flakyTrail struct {
	next crossroads.AuditLog
	down atomic.Bool
}

func (f *flakyTrail) Commit(ctx context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	if f.down.Load() {
		return crossroads.Receipt{}, errors.New("audit store unreachable")
	}
	return f.next.Commit(ctx, rec)
}

// TestNoRecordNoRelease: with the trail down, a completed upload does not
// become part of the workspace, a query releases nothing, and a halt takes
// effect all the same (and says it was not recorded).
func TestNoRecordNoRelease(t *testing.T) {
	w := world(t, nil, spedemo.Options{})
	h := w.Run.Hub
	st, err := sqlite.OpenSPE(ctx, filepath.Join(t.TempDir(), "spe.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	trail := &flakyTrail{next: h.Trail}
	svc, err := spe.New(spe.Config{Dir: t.TempDir(), Store: st, Audit: trail, Keys: h.Keys, Permit: h.Directory.Authorisation})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	// The caller, as the hub's API would have authenticated it.
	mux := http.NewServeMux()
	for _, r := range svc.Routes() {
		mux.Handle(r.Method+" "+r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p, _ := h.Directory.Participant(r.Header.Get("X-Test-Caller"))
		mux.ServeHTTP(rw, r.WithContext(crossroads.WithCaller(r.Context(), p)))
	}))
	t.Cleanup(srv.Close)
	base := srv.URL + "/v1/spe/permits/" + spedemo.Permit
	do := func(as, method, url string, body []byte, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("X-Test-Caller", as)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	upload := func() int {
		data := spedemo.Admissions(1, 200, false, false)
		resp := do(spedemo.HolderA, http.MethodPost, base+"/uploads/", nil, map[string]string{"Tus-Resumable": "1.0.0",
			"Upload-Length": strconv.Itoa(len(data)), "Upload-Metadata": "dataset " + base64.StdEncoding.EncodeToString([]byte(spedemo.DatasetA))})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d", resp.StatusCode)
		}
		return do(spedemo.HolderA, http.MethodPatch, resp.Header.Get("Location"), data, map[string]string{"Tus-Resumable": "1.0.0",
			"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}).StatusCode
	}
	if got := upload(); got != http.StatusNoContent { // opens the workspace (recorded) and uploads
		t.Fatalf("upload with the trail up: %d", got)
	}
	trail.down.Store(true)
	if got := upload(); got != http.StatusServiceUnavailable {
		t.Fatalf("upload with the trail down: %d, want 503", got)
	}
	if ups, _ := st.Uploads(ctx, spedemo.Permit); len(ups) != 1 {
		t.Fatalf("an unrecorded upload joined the workspace: %+v", ups)
	}
	q, _ := json.Marshal(spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", "")})
	if resp := do(spedemo.Researcher, http.MethodPost, base+"/queries", q, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("query with the trail down: %d, want 503", resp.StatusCode)
	}
	if rs, _ := st.Releases(ctx, spedemo.Permit); len(rs) != 0 {
		t.Fatalf("an unrecorded release: %+v", rs)
	}
	halt, _ := json.Marshal(map[string]string{"reason": "breach"})
	if resp := do(demo.Operator, http.MethodPost, base+"/halt", halt, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("halt with the trail down: %d, want 503 (halted, not recorded)", resp.StatusCode)
	}
	trail.down.Store(false)
	if resp := do(spedemo.Researcher, http.MethodGet, base, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after an unrecorded halt: %d, want 403 (the halt holds)", resp.StatusCode)
	}
}
