package problem

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, 403, crossroads.ReasonNoIntegration, "no file")
	if rec.Code != 403 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var d Details
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Type != "urn:crossroads:problem:no-integration" || d.Title != "No file on this person" || d.Status != 403 || d.Reason != crossroads.ReasonNoIntegration || d.Detail != "no file" {
		t.Fatalf("%+v", d)
	}
}

func TestEveryReasonHasATitle(t *testing.T) {
	for _, r := range Reasons() {
		if Title(400, r) == "" {
			t.Errorf("%s has no title", r)
		}
	}
	if TypeURI("") != "about:blank" {
		t.Error("empty reason should be about:blank")
	}
}
