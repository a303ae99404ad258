package operation

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"/", "/persons/{subject}", "/persons/{subject}/address", "/a/{id:int}/{d:date}/{x}", "/v1.2/x_y~z-w", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "persons", "//", "/a/", "/a//b", "/.", "/..", "/a/../b", "/*", "/a/{x}{y}", "/a{x}", "/{x}b", "/{}", "/{1x}",
		"/{x:float}", "/{subject:int}", "/{x}/{x}", "/a b", "/a%20b", "/a?b", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
		"/" + strings.Repeat("a", 600), "/" + strings.Repeat("a/", 40) + "a", "/é",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		} else if !errors.Is(err, ErrTemplate) {
			t.Errorf("Parse(%q): error %v does not wrap ErrTemplate", bad, err)
		}
	}
	tp, _ := Parse("/a/{id:int}/{subject}")
	if !tp.HasSubject() || tp.String() != "/a/{id:int}/{subject}" || len(tp.Params()) != 2 || tp.Params()[1] != "subject" {
		t.Errorf("template accessors: %v %q %v", tp.HasSubject(), tp.String(), tp.Params())
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		in   string
		want string
		ok   bool
	}{
		{Segment, "abc-1.2_~", "abc-1.2_~", true},
		{Segment, "%61bc", "abc", true},
		{Segment, "a%2Fb", "", false},
		{Segment, "%2e%2e", "", false},
		{Segment, ".", "", false},
		{Segment, "a%20b", "", false},
		{Segment, "a%zz", "", false},
		{Segment, "a%2", "", false},
		{Segment, strings.Repeat("a", 129), "", false},
		{Int, "0042", "42", true},
		{Int, "0", "0", true},
		{Int, "000", "0", true},
		{Int, "-1", "", false},
		{Int, "1e3", "", false},
		{Int, strings.Repeat("9", 19), "", false},
		{Date, "2024-02-29", "2024-02-29", true},
		{Date, "2023-02-29", "", false},
		{Date, "1900-02-29", "", false},
		{Date, "2000-02-29", "2000-02-29", true},
		{Date, "2024-04-31", "", false},
		{Date, "2024-13-01", "", false},
		{Date, "2024-00-10", "", false},
		{Date, "2024-1-01", "", false},
		{Date, "2024/01/01", "", false},
		{Subject, "85.07.30-033.28", "85.07.30-033.28", true},
		{Subject, "BE%200123.456.749", "BE 0123.456.749", true},
		{Subject, "a%2Fb", "", false},
		{Subject, "a%0Ab", "", false},
		{Subject, "a%5Cb", "", false},
		{Subject, "%2e%2E", "", false},
		{Subject, ".", "", false},
		{Subject, "...", "...", true},
	} {
		got, ok := value(tc.kind, tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("value(%s, %q) = %q, %v; want %q, %v", tc.kind, tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func service() *crossroads.Service {
	return &crossroads.Service{
		ID: "person-identity", Subject: crossroads.SubjectPerson,
		Fields: []string{"/name", "/address"},
		Operations: []crossroads.Operation{
			{ID: "read", Method: "GET", Path: "/persons/{subject}", Query: []string{"lang", "at"}, Fields: []string{"/name"}},
			{ID: "correct-address", Method: "PUT", Path: "/persons/{subject}/address", Body: "application/json"},
			{ID: "history", Method: "GET", Path: "/persons/{subject}/history/{year:int}"},
			{ID: "delete-address", Method: "DELETE", Path: "/persons/{subject}/address"},
		},
	}
}

func TestMatch(t *testing.T) {
	m, err := Compile(service())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, query string
		reason              crossroads.Reason
		op, target, allow   string
	}{
		{"GET", "/persons/85073003328", "", "", "read", "/persons/85073003328", "GET, HEAD, OPTIONS"},
		{"HEAD", "/persons/85073003328", "", "", "read", "/persons/85073003328", "GET, HEAD, OPTIONS"},
		{"GET", "/persons/85073003328", "at=2024-01-01&lang=nl", "", "read", "/persons/85073003328?lang=nl&at=2024-01-01", ""},
		{"GET", "/persons/85073003328", "lang=a+b%26c", "", "read", "/persons/85073003328?lang=a+b%26c", ""},
		{"GET", "/persons/85.07.30-033.28", "", "", "read", "/persons/85.07.30-033.28", ""},
		{"PUT", "/persons/85073003328/address", "", "", "correct-address", "/persons/85073003328/address", "PUT, DELETE, OPTIONS"},
		{"GET", "/persons/85073003328/history/007", "", "", "history", "/persons/85073003328/history/7", ""},
		{"OPTIONS", "/persons/85073003328/address", "", "", "", "", "PUT, DELETE, OPTIONS"},
		{"OPTIONS", "/nothing", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/persons/85073003328/address", "", crossroads.ReasonMethodNotAllowed, "", "", "PUT, DELETE, OPTIONS"},
		{"POST", "/persons/85073003328", "", crossroads.ReasonMethodNotAllowed, "", "", "GET, HEAD, OPTIONS"},
		{"TRACE", "/persons/85073003328", "", crossroads.ReasonMethodNotAllowed, "", "", "GET, HEAD, OPTIONS"},
		{"GET", "/persons/85073003328/history/x", "", crossroads.ReasonInvalidParameter, "", "", ""},
		{"GET", "/persons/a%2Fb", "", crossroads.ReasonInvalidParameter, "", "", ""},
		{"GET", "/persons/85073003328", "debug=1", crossroads.ReasonUnknownParameter, "", "", ""},
		{"GET", "/persons/85073003328", "lang=nl&lang=fr", crossroads.ReasonInvalidParameter, "", "", ""},
		{"GET", "/persons/85073003328", "lang=%0A", crossroads.ReasonInvalidParameter, "", "", ""},
		{"GET", "/persons", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/persons/", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/persons/85073003328/", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "//persons/85073003328", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/persons/../persons/85073003328", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/Persons/85073003328", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "/%70ersons/85073003328", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "", "", crossroads.ReasonUnknownOperation, "", "", ""},
		{"GET", "persons/85073003328", "", crossroads.ReasonUnknownOperation, "", "", ""},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, reason := m.Match(tc.method, tc.path, q)
		name := tc.method + " " + tc.path + "?" + tc.query
		if reason != tc.reason {
			t.Errorf("%s: reason %q, want %q", name, reason, tc.reason)
			continue
		}
		if tc.allow != "" && got.Allow != tc.allow {
			t.Errorf("%s: Allow %q, want %q", name, got.Allow, tc.allow)
		}
		if reason != "" || tc.op == "" {
			if got.Operation != nil {
				t.Errorf("%s: operation %v on a refusal or OPTIONS", name, got.Operation.ID)
			}
			continue
		}
		if got.Operation == nil || got.Operation.ID != tc.op {
			t.Errorf("%s: operation %v, want %s", name, got.Operation, tc.op)
			continue
		}
		if tt := got.Target(); tt != tc.target {
			t.Errorf("%s: target %q, want %q", name, tt, tc.target)
		}
	}
}

func TestMatchSubjectAndTarget(t *testing.T) {
	m, _ := Compile(service())
	got, reason := m.Match("GET", "/persons/85.07.30-033.28", nil)
	if reason != "" || got.Subject != "85.07.30-033.28" {
		t.Fatalf("subject %q reason %q", got.Subject, reason)
	}
	got.Subject = "85073003328" // canonicalised by the caller
	if tt := got.Target(); tt != "/persons/85073003328" {
		t.Fatalf("target %q", tt)
	}
	if got.Param("subject") != "85073003328" || got.Param("nope") != "" {
		t.Fatal("Param")
	}
	got.Subject = "a b/c"
	if tt := got.Target(); tt != "/persons/a%20b%2Fc" {
		t.Fatalf("target re-escapes the subject: %q", tt)
	}
	for subj, want := range map[string]string{"..": "/persons/%2E%2E", ".": "/persons/%2E", "a.b": "/persons/a.b"} {
		got.Subject = subj // whatever a scheme returns, never a dot segment
		if tt := got.Target(); tt != want {
			t.Fatalf("target of subject %q: %q, want %q", subj, tt, want)
		}
	}
	put, _ := m.Match("PUT", "/persons/85073003328/address", nil)
	if put.Body != "application/json" {
		t.Fatalf("body %q", put.Body)
	}
	h, _ := m.Match("GET", "/persons/85073003328/history/0019", nil)
	if h.Param("year") != "19" {
		t.Fatalf("year %q", h.Param("year"))
	}
	bad, reason := m.Match("GET", "/persons/85073003328/history/x", nil)
	if reason != crossroads.ReasonInvalidParameter || bad.Refused != "year" {
		t.Fatalf("invalid parameter: %q %q", reason, bad.Refused)
	}
	var zero Match
	if zero.Target() != "" || zero.Param("x") != "" {
		t.Fatal("zero match")
	}
}

func TestMatchRoot(t *testing.T) {
	m, err := Compile(&crossroads.Service{ID: "ref", Subject: crossroads.SubjectNone, Operations: []crossroads.Operation{
		{ID: "list", Method: "GET", Path: "/"},
		{ID: "by-day", Method: "GET", Path: "/days/{day:date}"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "/"} {
		got, reason := m.Match("GET", p, nil)
		if reason != "" || got.Operation.ID != "list" || got.Target() != "/" {
			t.Errorf("%q: %q %v", p, reason, got.Operation)
		}
	}
	got, reason := m.Match("GET", "/days/2024-02-29", nil)
	if reason != "" || got.Target() != "/days/2024-02-29" || got.Subject != "" {
		t.Errorf("date: %q %q", reason, got.Target())
	}
	if _, reason := m.Match("GET", "/days/2023-02-29", nil); reason != crossroads.ReasonInvalidParameter {
		t.Errorf("bad date: %q", reason)
	}
}

func TestNoOperations(t *testing.T) {
	m, err := Compile(&crossroads.Service{ID: "old", ConcernsPerson: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := m.Match("GET", "/anything", nil); reason != crossroads.ReasonUnknownOperation {
		t.Fatalf("reason %q", reason)
	}
}

func TestCheckService(t *testing.T) {
	if errs := CheckService(*service()); len(errs) != 0 {
		t.Fatalf("valid service: %v", errs)
	}
	if errs := CheckService(crossroads.Service{ID: "empty", ConcernsPerson: true}); len(errs) != 0 {
		t.Fatalf("service without operations: %v", errs)
	}
	for _, tc := range []struct {
		name string
		svc  crossroads.Service
		want []string // substrings, one per expected error
	}{
		{"bad ids", crossroads.Service{ID: "s", Subject: "none", Operations: []crossroads.Operation{
			{ID: "", Method: "GET", Path: "/a"}, {ID: "Read", Method: "GET", Path: "/b"}, {ID: "x", Method: "GET", Path: "/c"}, {ID: "x", Method: "GET", Path: "/d"},
		}}, []string{"id must match", "id must match", "id repeated"}},
		{"bad method", crossroads.Service{ID: "s", Subject: "none", Operations: []crossroads.Operation{{ID: "a", Method: "get", Path: "/a"}, {ID: "b", Method: "HEAD", Path: "/b"}}},
			[]string{"method", "method"}},
		{"bad template", crossroads.Service{ID: "s", Subject: "none", Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a/*"}}}, []string{"path"}},
		{"person without subject", crossroads.Service{ID: "s", ConcernsPerson: true, Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a/{id}"}}}, []string{"must have {subject}"}},
		{"enterprise without subject", crossroads.Service{ID: "s", Subject: "enterprise", Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a"}}}, []string{"must have {subject}"}},
		{"none with subject", crossroads.Service{ID: "s", Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a/{subject}"}}}, []string{"must not have {subject}"}},
		{"ambiguous", crossroads.Service{ID: "s", Subject: "person", Operations: []crossroads.Operation{
			{ID: "a", Method: "GET", Path: "/p/{subject}"}, {ID: "b", Method: "GET", Path: "/p/{subject}"},
			{ID: "c", Method: "GET", Path: "/q/{subject}/{n:int}"}, {ID: "d", Method: "GET", Path: "/q/{subject}/{x}"},
			{ID: "e", Method: "GET", Path: "/r/{subject}/latest"}, {ID: "f", Method: "GET", Path: "/r/{subject}/{x}"},
			{ID: "g", Method: "GET", Path: "/t/{subject}/{n:int}"}, {ID: "h", Method: "GET", Path: "/t/{subject}/{d:date}"}, // never the same path
			{ID: "i", Method: "PUT", Path: "/p/{subject}"}, // another method
			{ID: "j", Method: "GET", Path: "/u/{subject}/12"}, {ID: "k", Method: "GET", Path: "/u/{subject}/{n:int}"},
			{ID: "l", Method: "GET", Path: "/v/{subject}/x"}, {ID: "m", Method: "GET", Path: "/v/{subject}/{n:int}"}, // x is no int
		}}, []string{`"b"`, `"d"`, `"f"`, `"k"`}},
		{"bad query", crossroads.Service{ID: "s", Subject: "none", Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a", Query: []string{"ok", "ok", "1x", "a b"}}}},
			[]string{"repeated", "query parameter", "query parameter"}},
		{"bad body", crossroads.Service{ID: "s", Subject: "none", Operations: []crossroads.Operation{
			{ID: "a", Method: "POST", Path: "/a", Body: "json"}, {ID: "b", Method: "GET", Path: "/b", Body: "application/json"}, {ID: "c", Method: "DELETE", Path: "/c", Body: "text/plain"},
		}}, []string{"not a media type", "only by POST", "only by POST"}},
		{"bad fields", crossroads.Service{ID: "s", Subject: "none", Fields: []string{"/name", "/address"}, Operations: []crossroads.Operation{
			{ID: "a", Method: "GET", Path: "/a", Fields: []string{"name"}},
			{ID: "b", Method: "GET", Path: "/b", Fields: []string{"/salary", "/address/city", "/name", "", "/nam"}},
		}}, []string{"fields", `"/salary"`, `field ""`, `"/nam"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckService(tc.svc)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), errs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.want[i]) || !errors.Is(e, crossroads.ErrInvalid) {
					t.Errorf("error %d: %v; want it to mention %s and wrap ErrInvalid", i, e, tc.want[i])
				}
			}
			if _, err := Compile(&tc.svc); err == nil {
				t.Error("Compile accepted a service CheckService refuses")
			}
		})
	}
	// A service granting its whole payload admits any operation fields.
	whole := crossroads.Service{ID: "s", Subject: "none", Fields: []string{""}, Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/a", Fields: []string{"/x", ""}}}}
	if errs := CheckService(whole); len(errs) != 0 {
		t.Fatal(errs)
	}
}

func TestCache(t *testing.T) {
	var c Cache
	svc := service()
	m1, err := c.Matcher(svc)
	if err != nil {
		t.Fatal(err)
	}
	if m2, _ := c.Matcher(svc); m2 != m1 {
		t.Fatal("the same service value was compiled twice")
	}
	changed := *svc
	changed.Operations = changed.Operations[:1]
	m3, _ := c.Matcher(&changed)
	if m3 == m1 || m3.Service() != &changed {
		t.Fatal("a changed service value kept the old matcher")
	}
	if _, reason := m3.Match("PUT", "/persons/85073003328/address", nil); reason != crossroads.ReasonUnknownOperation {
		t.Fatalf("removed operation still matched: %q", reason)
	}
	bad := &crossroads.Service{ID: "person-identity", Subject: "person", Operations: []crossroads.Operation{{ID: "a", Method: "GET", Path: "/x"}}}
	if _, err := c.Matcher(bad); err == nil {
		t.Fatal("bad service compiled")
	}
	if _, err := c.Matcher(bad); err == nil {
		t.Fatal("cached bad service compiled")
	}
}

func TestMatchAllocations(t *testing.T) {
	m, _ := Compile(service())
	q := url.Values{"lang": {"nl"}}
	n := testing.AllocsPerRun(100, func() {
		if _, r := m.Match("GET", "/persons/85073003328", q); r != "" {
			t.Fatal(r)
		}
		m.Match("GET", "/persons/85073003328/address", nil)
		m.Match("GET", "/nothing/here", nil)
	})
	if n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	svc := service()
	m, _ := Compile(svc)
	var c Cache
	b.ReportAllocs()
	for b.Loop() {
		mm, _ := c.Matcher(svc)
		if _, r := mm.Match("GET", "/persons/85073003328", nil); r != "" {
			b.Fatal(r)
		}
	}
	_ = m
}

func BenchmarkMatchTarget(b *testing.B) {
	m, _ := Compile(service())
	q := url.Values{"lang": {"nl"}}
	b.ReportAllocs()
	for b.Loop() {
		mt, r := m.Match("GET", "/persons/85073003328", q)
		if r != "" {
			b.Fatal(r)
		}
		_ = mt.Target()
	}
}
