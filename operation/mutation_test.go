package operation

import (
	"net/url"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

func TestMutationsAreNeverMatched(t *testing.T) {
	svc := &crossroads.Service{ID: "pop", Subject: crossroads.SubjectPerson, Fields: []string{"/a"}, Operations: []crossroads.Operation{
		{ID: "moved", Kind: crossroads.OperationMutation, Fields: []string{"/a"}},
		{ID: "read", Method: "GET", Path: "/p/{subject}"},
	}}
	m, err := Compile(svc)
	if err != nil {
		t.Fatal(err)
	}
	res, reason := m.Match("GET", "/p/85073003328", url.Values{})
	if reason != "" || res.Operation == nil || res.Operation.ID != "read" {
		t.Fatalf("read: %v %+v", reason, res)
	}
	if _, reason := m.Match("POST", "/p/85073003328", url.Values{}); reason != crossroads.ReasonMethodNotAllowed {
		t.Fatalf("POST: %v", reason)
	}
	bad := *svc
	bad.Operations = []crossroads.Operation{{ID: "moved", Kind: crossroads.OperationMutation, Method: "POST", Path: "/p/{subject}"}, {ID: "x", Kind: "event"},
		{ID: "y", Kind: crossroads.OperationMutation, Fields: []string{"/b"}}}
	if errs := CheckService(bad); len(errs) != 3 {
		t.Fatalf("errors %v, want 3 (a path, a kind, a field)", errs)
	}
}
