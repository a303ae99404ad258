package spedemo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
	"github.com/crossroads-hub/crossroads/dp"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/spe"
)

var ctx = context.Background()

func world(t *testing.T, configure func(*hub.Config), o spedemo.Options) *spedemo.World {
	t.Helper()
	r := demotest.Start(t, demo.Options{People: 5, Configure: configure})
	w, err := spedemo.Setup(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustUpload(t *testing.T, w *spedemo.World, as, dataset string, data []byte) string {
	t.Helper()
	loc, status, err := w.Upload(ctx, as, dataset, data)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("upload %s as %s: %d %v", dataset, as, status, err)
	}
	return loc
}

// spe returns the audit records of the secure-processing kind.
func speRecords(t *testing.T, w *spedemo.World) []audit.Entry {
	t.Helper()
	p, err := w.Run.Hub.Trail.Search(ctx, audit.Query{Kinds: []string{crossroads.RecordSPE}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return p.Records
}

func actions(es []audit.Entry) map[string]int {
	out := map[string]int{}
	for _, e := range es {
		out[e.Action]++
	}
	return out
}

func TestUploadRules(t *testing.T) {
	w := world(t, nil, spedemo.Options{})
	data := spedemo.Admissions(1, 300, false, false)
	loc := mustUpload(t, w, spedemo.HolderA, spedemo.DatasetA, data)

	var ws spe.WorkspaceView
	if st, _, err := w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, &ws); err != nil || st != 200 {
		t.Fatalf("workspace: %d %v", st, err)
	}
	sum := sha256.Sum256(data)
	if len(ws.Uploads) != 1 || ws.Uploads[0].SHA256 != hex.EncodeToString(sum[:]) || ws.Uploads[0].Type != spe.TypeCSV || ws.Uploads[0].Holder != spedemo.HolderA {
		t.Fatalf("uploads %+v", ws.Uploads)
	}
	// Contents are sealed at rest: no row of the CSV is on disk in clear.
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(w.Run.Dir), "spe", spedemo.Permit, "uploads", "*.data"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("region,sex")) || bytes.Contains(b, data[30:60]) {
			t.Fatalf("%s holds plaintext", f)
		}
	}
	if len(files) != 1 {
		t.Fatalf("sealed files %v", files)
	}

	for _, tc := range []struct {
		name, as, dataset string
		data              []byte
		want              int
	}{
		{"researcher uploads", spedemo.Researcher, spedemo.DatasetA, data, http.StatusForbidden},
		{"reviewer uploads", spedemo.Reviewer1, spedemo.DatasetA, data, http.StatusForbidden},
		{"outsider", spedemo.Outsider, spedemo.DatasetA, data, http.StatusNotFound},
		{"operator", demo.Operator, spedemo.DatasetA, data, http.StatusForbidden},
		{"other holder's dataset", spedemo.HolderB, spedemo.DatasetA, data, http.StatusBadRequest},
		{"unknown dataset", spedemo.HolderA, "other", data, http.StatusBadRequest},
		{"binary named csv", spedemo.HolderA, spedemo.DatasetA, append([]byte("MZ\x90\x00\x03"), make([]byte, 200)...), http.StatusUnsupportedMediaType},
		{"parquet not permitted", spedemo.HolderA, spedemo.DatasetA, append([]byte("PAR1"), make([]byte, 64)...), http.StatusUnsupportedMediaType},
		{"free text", spedemo.HolderA, spedemo.DatasetA, []byte("Dear colleague,\nhere is the list of patients.\n"), http.StatusUnsupportedMediaType},
		{"ragged from the start", spedemo.HolderA, spedemo.DatasetA, []byte("a,b\n1,2\n3\n"), http.StatusUnsupportedMediaType},
		{"ragged past the sniffed head", spedemo.HolderA, spedemo.DatasetA, append(bytes.Clone(data), "East,F\n"...), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, status, err := w.Upload(ctx, tc.as, tc.dataset, tc.data)
			if err != nil || status != tc.want {
				t.Fatalf("status %d (%v), want %d", status, err, tc.want)
			}
		})
	}

	t.Run("checksum", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, w.Base()+"/uploads/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "16")
		req.Header.Set("Upload-Metadata", "dataset YWRtaXNzaW9ucy1h") // admissions-a
		resp, err := w.Clients[spedemo.HolderA].Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %v %v", resp, err)
		}
		resp.Body.Close()
		up := resp.Header.Get("Location")
		body := []byte("x,y\n1,2\n3,4\n5,6\n")
		bad, _ := http.NewRequest(http.MethodPatch, up, bytes.NewReader(body))
		bad.Header.Set("Tus-Resumable", "1.0.0")
		bad.Header.Set("Content-Type", "application/offset+octet-stream")
		bad.Header.Set("Upload-Offset", "0")
		bad.Header.Set("Upload-Checksum", "sha256 "+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		resp, err = w.Clients[spedemo.HolderA].Do(bad)
		if err != nil || resp.StatusCode != 460 {
			t.Fatalf("mismatching checksum: %v %v, want 460", resp.StatusCode, err)
		}
		resp.Body.Close()
		head, _ := http.NewRequest(http.MethodHead, up, nil)
		head.Header.Set("Tus-Resumable", "1.0.0")
		resp, _ = w.Clients[spedemo.HolderA].Do(head)
		if resp.Header.Get("Upload-Offset") != "0" {
			t.Fatalf("offset after a refused chunk: %q", resp.Header.Get("Upload-Offset"))
		}
		if st, err := w.Patch(ctx, spedemo.HolderA, up, 0, body, true); err != nil || st != http.StatusNoContent {
			t.Fatalf("matching checksum: %d %v", st, err)
		}
	})
	t.Run("options announce checksum", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, w.Base()+"/uploads/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		resp, err := w.Clients[spedemo.HolderA].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Tus-Extension"), "checksum") || !strings.Contains(resp.Header.Get("Tus-Checksum-Algorithm"), "sha256") {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	t.Run("raw data never downloads", func(t *testing.T) {
		for _, as := range []string{spedemo.Researcher, spedemo.HolderA} {
			req, _ := http.NewRequest(http.MethodGet, loc, nil)
			resp, err := w.Clients[as].Do(req)
			if err != nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("GET of an upload as %s: %v %v", as, resp.StatusCode, err)
			}
			resp.Body.Close()
		}
	})
	t.Run("another holder cannot continue an upload", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, w.Base()+"/uploads/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "16")
		req.Header.Set("Upload-Metadata", "dataset YWRtaXNzaW9ucy1h")
		resp, _ := w.Clients[spedemo.HolderA].Do(req)
		resp.Body.Close()
		if st, _ := w.Patch(ctx, spedemo.HolderB, resp.Header.Get("Location"), 0, []byte("x,y\n1,2\n3,4\n5,6\n"), false); st != http.StatusForbidden {
			t.Fatalf("PATCH by the other holder: %d", st)
		}
	})
	acts := actions(speRecords(t, w))
	if acts["workspace-open"] != 1 || acts["upload"] != 2 || acts["upload-refused"] < 4 {
		t.Fatalf("audit actions %v", acts)
	}
}

func TestQueriesAndReleases(t *testing.T) {
	w := world(t, nil, spedemo.Options{})
	mustUpload(t, w, spedemo.HolderA, spedemo.DatasetA, spedemo.Admissions(1, 300, true, true))
	mustUpload(t, w, spedemo.HolderB, spedemo.DatasetB, spedemo.Admissions(2, 240, false, false))

	// With the island: its 3 rows fail the threshold; nothing is released.
	st, _, v, err := w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", "")})
	if err != nil || st != 200 || v.Status != spe.ReleaseFail || v.Result != nil || len(v.Cells) != 1 || v.Cells[0].Index[0] != "Island" || v.Cells[0].Fails[0] != "threshold" {
		t.Fatalf("threshold: %d %v %+v", st, err, v)
	}
	failID := v.ID

	// A count by region without the island: every cell has 100 rows or more.
	st, _, v, err = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", "",
		map[string]any{"column": "region", "op": "ne", "value": "Island"})})
	if err != nil || st != 200 || v.Status != spe.ReleasePass || v.Result == nil || len(v.Result.Cells) != 3 {
		t.Fatalf("passing query: %d %v %+v", st, err, v)
	}
	for _, c := range v.Result.Cells {
		if len(c.Top) != 0 || c.N < 100 {
			t.Fatalf("released cell %+v (individual contributions, or a wrong count)", c)
		}
	}
	passID := v.ID

	// Cost by region: one stay dominates the West.
	st, _, v, err = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "sum", "cost",
		map[string]any{"column": "region", "op": "ne", "value": "Island"})})
	if err != nil || st != 200 || v.Status != spe.ReleaseFail || len(v.Cells) != 1 || v.Cells[0].Index[0] != "West" {
		t.Fatalf("dominance: %d %v %+v", st, err, v)
	}
	found := false
	for _, f := range v.Cells[0].Fails {
		found = found || f == "dominance"
	}
	if !found {
		t.Fatalf("West fails %v, want dominance", v.Cells[0].Fails)
	}

	// Differencing: the count by sex of all rows, after the count by sex
	// of all but the island's: each cell of the two differs by the
	// island's rows of that sex (3 in all), which the checker refuses to
	// isolate.
	st, _, v, err = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"sex"}, "count", "",
		map[string]any{"column": "region", "op": "ne", "value": "Island"})})
	if err != nil || st != 200 || v.Status != spe.ReleasePass {
		t.Fatalf("count by sex but the island: %d %v %+v", st, err, v)
	}
	st, _, v, err = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"sex"}, "count", "")})
	if err != nil || st != 200 || v.Status != spe.ReleaseRefused || len(v.Differencing) == 0 || v.Result != nil {
		t.Fatalf("differencing: %d %v %+v", st, err, v)
	}

	// A noisy count, charged to the budget, until it is spent.
	st, _, v, err = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetB, []string{"region"}, "count", ""),
		Noise: &dp.Params{Mechanism: dp.Laplace, Epsilon: 0.6}})
	if err != nil || st != 200 || v.Status != spe.ReleasePass || v.Noisy == nil || len(v.Noisy.Cells) != 3 || v.Noisy.Epsilon != 0.6 {
		t.Fatalf("DP release: %d %v %+v", st, err, v)
	}
	st, reason, _, _ := w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetB, []string{"region"}, "count", ""),
		Noise: &dp.Params{Mechanism: dp.Laplace, Epsilon: 0.6}})
	if st != http.StatusForbidden || reason != string(crossroads.ReasonBudgetExhausted) {
		t.Fatalf("spent budget: %d %s", st, reason)
	}
	var ws spe.WorkspaceView
	w.Call(ctx, spedemo.Researcher, http.MethodGet, "", nil, &ws)
	if ws.Spent.Epsilon != 0.6 {
		t.Fatalf("budget spent %+v", ws.Spent)
	}

	// Only released results download; the others are refused.
	req, _ := http.NewRequest(http.MethodGet, w.Base()+"/releases/"+passID+"/result", nil)
	req.Header.Set("Range", "bytes=0-9")
	resp, err := w.Clients[spedemo.Researcher].Do(req)
	if err != nil || resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Repr-Digest") == "" {
		t.Fatalf("ranged download: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if st, reason, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "/releases/"+failID+"/result", nil, nil); st != 403 || reason != string(crossroads.ReasonNotReleased) {
		t.Fatalf("download of a failed result: %d %s", st, reason)
	}
	if st, _, _ := w.Call(ctx, spedemo.Reviewer1, http.MethodGet, "/releases/"+passID+"/result", nil, nil); st != 403 {
		t.Fatalf("download by a reviewer: %d", st)
	}
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "/releases/../../x/result", nil, nil); st == 200 {
		t.Fatalf("traversal: %d", st)
	}

	// Queries the permit does not allow.
	for name, q := range map[string]spe.QueryRequest{
		"statistic":   {Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "quantile", "cost")},
		"dataset":     {Query: spedemo.Q("elsewhere", []string{"region"}, "count", "")},
		"column":      {Query: spedemo.Q(spedemo.DatasetA, []string{"nope"}, "count", "")},
		"not a query": {Query: []byte(`"count everything"`)},
	} {
		if st, _, _, _ := w.Query(ctx, q); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, st)
		}
	}
	acts := actions(speRecords(t, w))
	if acts["query"] < 6 || acts["download"] != 1 {
		t.Fatalf("audit actions %v", acts)
	}
}

func TestReview(t *testing.T) {
	w := world(t, nil, spedemo.Options{})
	// Missing values in the value column are for review by default.
	data := append(spedemo.Admissions(3, 120, false, false), []byte("East,F,50,3,\nWest,M,61,4,\n")...)
	mustUpload(t, w, spedemo.HolderA, spedemo.DatasetA, data)
	st, _, v, err := w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "mean", "cost")})
	if err != nil || st != 200 || v.Status != spe.ReleaseReview || v.Result != nil {
		t.Fatalf("held for review: %d %v %+v", st, err, v)
	}
	id := v.ID
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "/releases/"+id+"/result", nil, nil); st != 403 {
		t.Fatalf("download before review: %d", st)
	}
	var seen spe.ReleaseView
	if st, _, _ := w.Call(ctx, spedemo.Reviewer1, http.MethodGet, "/releases/"+id, nil, &seen); st != 200 || seen.Result == nil {
		t.Fatalf("reviewer's view: %d %+v", st, seen)
	}
	approve := spe.ReviewRequest{Decision: spe.DecisionApprove, Note: "missing costs are two late invoices"}
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodPost, "/releases/"+id+"/reviews", approve, nil); st != 403 {
		t.Fatalf("the requester reviews: %d", st)
	}
	var after spe.ReleaseView
	if st, _, _ := w.Call(ctx, spedemo.Reviewer1, http.MethodPost, "/releases/"+id+"/reviews", approve, &after); st != 200 || after.Status != spe.ReleaseReview {
		t.Fatalf("first approval: %d %+v", st, after)
	}
	if st, reason, _ := w.Call(ctx, spedemo.Reviewer1, http.MethodPost, "/releases/"+id+"/reviews", approve, nil); st != 409 || reason != string(crossroads.ReasonReviewConflict) {
		t.Fatalf("second decision of one reviewer: %d %s", st, reason)
	}
	if st, _, _ := w.Call(ctx, spedemo.Reviewer2, http.MethodPost, "/releases/"+id+"/reviews", approve, &after); st != 200 || after.Status != spe.ReleaseReleased {
		t.Fatalf("second approval: %d %+v", st, after)
	}
	if st, _, _ := w.Call(ctx, spedemo.Researcher, http.MethodGet, "/releases/"+id+"/result", nil, nil); st != 200 {
		t.Fatalf("download after review: %d", st)
	}
	// A rejection by one reviewer is final.
	_, _, v, _ = w.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"sex"}, "mean", "cost")})
	if v.Status != spe.ReleaseReview {
		t.Fatalf("second held result: %+v", v)
	}
	w.Call(ctx, spedemo.Reviewer2, http.MethodPost, "/releases/"+v.ID+"/reviews", spe.ReviewRequest{Decision: spe.DecisionReject}, &after)
	if after.Status != spe.ReleaseRejected {
		t.Fatalf("rejected: %+v", after)
	}
	if st, _, _ := w.Call(ctx, spedemo.Reviewer1, http.MethodPost, "/releases/"+v.ID+"/reviews", approve, nil); st != 409 {
		t.Fatalf("review of a rejected result: %d", st)
	}
	if acts := actions(speRecords(t, w)); acts["review"] != 3 {
		t.Fatalf("audit actions %v", acts)
	}
}

var _ = time.Second
