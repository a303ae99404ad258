package operation

import (
	"net/url"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/", "/persons/{subject}", "/a/{id:int}/{d:date}", "/a//b", "/{x}{y}", "/{x:float}", "/..", "/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := Parse(s)
		if err != nil {
			return
		}
		if tp.String() != s {
			t.Fatalf("String %q != %q", tp.String(), s)
		}
		// A template that parses matches at least its own shape filled with
		// valid values, and the target of that match is the filled path.
		var path strings.Builder
		for _, sg := range tp.segs {
			path.WriteByte('/')
			switch sg.kind {
			case Literal:
				path.WriteString(sg.lit)
			case Int:
				path.WriteString("1")
			case Date:
				path.WriteString("2024-02-29")
			default:
				path.WriteString("x")
			}
		}
		var vals [MaxParams]string
		if ok, bad := tp.match(path.String(), &vals); !ok || bad >= 0 {
			t.Fatalf("%q does not match its own shape %q", s, path.String())
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/persons/85073003328", ""}, {"PUT", "/persons/85073003328/address", "lang=nl"},
		{"GET", "/persons/a%2Fb", ""}, {"OPTIONS", "/persons/x/history/0012", "at=1&at=2"}, {"HEAD", "//", "%zz"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	m, err := Compile(service())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		got, reason := m.Match(method, path, q)
		if reason != "" {
			if got.Operation != nil {
				t.Fatal("operation on a refusal")
			}
			return
		}
		if got.Operation == nil {
			if method != "OPTIONS" {
				t.Fatalf("no operation for %s", method)
			}
			return
		}
		// The canonical target matches again, to the same operation, with
		// the same parameters: it is a fixed point.
		target := got.Target()
		p, rq, _ := strings.Cut(target, "?")
		if strings.Contains(p, "..") || strings.Contains(p, "//") {
			t.Fatalf("target %q has dot or empty segments", target)
		}
		q2, err := url.ParseQuery(rq)
		if err != nil {
			t.Fatalf("target query %q: %v", rq, err)
		}
		again, r2 := m.Match(method, p, q2)
		if r2 != "" || again.Operation != got.Operation || again.Target() != target {
			t.Fatalf("target %q of %q does not match again: %q %q", target, path, r2, again.Target())
		}
		if got.Operation.Method != method && !(method == "HEAD" && got.Operation.Method == "GET") {
			t.Fatalf("method %s matched %s", method, got.Operation.Method)
		}
		_ = crossroads.ReasonAllowed
	})
}
