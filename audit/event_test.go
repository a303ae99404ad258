package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

func TestCanonicalJSON(t *testing.T) {
	type s struct {
		Z string `json:"z"`
		A int    `json:"a"`
	}
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"b": 1, "a": []any{"x", 2.5}}, `{"a":["x",2.5],"b":1}`},
		{s{Z: "<&>", A: 12345678901234567}, `{"a":12345678901234567,"z":"<&>"}`},
		{nil, ``},
	} {
		got, err := audit.CanonicalJSON(c.in)
		if err != nil || string(got) != c.want {
			t.Errorf("CanonicalJSON(%v) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := audit.CanonicalJSON(func() {}); err == nil {
		t.Error("a function encoded")
	}
}

func TestEvent(t *testing.T) {
	rec, err := audit.Event(crossroads.RecordKey, "rotate", "hub", "alice", map[string]string{"key": "kek"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != crossroads.RecordKey || rec.Action != "rotate" || rec.Requester != "hub" || rec.User != "alice" ||
		!strings.HasPrefix(rec.ExchangeID, "ev-") || rec.Outcome != crossroads.OutcomeAllowed || string(rec.Detail) != `{"key":"kek"}` ||
		time.Since(rec.Time) > time.Minute {
		t.Fatalf("event %+v", rec)
	}
	for _, bad := range [][3]string{{"", "rotate", "hub"}, {crossroads.RecordKey, "", "hub"}, {crossroads.RecordKey, "rotate", ""}} {
		if _, err := audit.Event(bad[0], bad[1], bad[2], "", nil); !errors.Is(err, crossroads.ErrInvalid) {
			t.Errorf("Event%v: %v", bad, err)
		}
	}
	// Committed, it is found by kind; its detail is decrypted with it.
	e := open(t, t.TempDir())
	ctx := context.Background()
	commitN(t, e.trail, 0, 3)
	if _, err := e.trail.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	in := crossroads.Integration{Kind: crossroads.SubjectEnterprise, Person: "0123456749", Participant: "inst-a", Sector: "17", Capacity: "employer", From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ie, err := audit.IntegrationEvent("register", "inst-a", "", in)
	if err != nil || ie.Subject != in.Person || ie.SubjectKind != crossroads.SubjectEnterprise {
		t.Fatalf("integration event %+v %v", ie, err)
	}
	if _, err := e.trail.Commit(ctx, ie); err != nil {
		t.Fatal(err)
	}
	p, err := e.trail.Search(ctx, audit.Query{Kinds: []string{crossroads.RecordKey}})
	if err != nil || len(p.Records) != 1 || p.Records[0].ExchangeID != rec.ExchangeID || string(p.Records[0].Detail) != `{"key":"kek"}` {
		t.Fatalf("by kind: %+v %v", p, err)
	}
	p, _ = e.trail.Search(ctx, audit.Query{Kinds: []string{crossroads.RecordExchange}})
	if len(p.Records) != 3 {
		t.Fatalf("%d exchanges, want 3", len(p.Records))
	}
	p, _ = e.trail.Search(ctx, audit.Query{SubjectKind: crossroads.SubjectEnterprise})
	if len(p.Records) != 1 || p.Records[0].ExchangeID != ie.ExchangeID {
		t.Fatalf("by subject kind: %+v", p.Records)
	}
	// The enterprise is not found as a person of the same id.
	p, _ = e.trail.Search(ctx, audit.Query{Subject: in.Person})
	if len(p.Records) != 0 {
		t.Fatalf("enterprise found as a person: %+v", p.Records)
	}
	p, _ = e.trail.Search(ctx, audit.Query{Subject: in.Person, SubjectKind: crossroads.SubjectEnterprise})
	if len(p.Records) != 1 {
		t.Fatalf("enterprise not found: %+v", p.Records)
	}
}
