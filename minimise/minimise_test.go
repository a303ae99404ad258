package minimise

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestJSON(t *testing.T) {
	doc := `{"name":"Jan","ssn":"85073003328","income":123456789012345678901234567890,
	 "address":{"street":"Kerkstraat 1","city":"Gent","geo":{"lat":51.05,"lon":3.72}},
	 "children":[{"name":"An","born":"2010-01-01"},{"name":"Piet","born":"2012-02-02"}],
	 "a/b":1,"t~x":2}`
	tests := []struct {
		name   string
		grants []string
		want   string
	}{
		{"top-level member", []string{"/name"}, `{"name":"Jan"}`},
		{"nested member", []string{"/address/city"}, `{"address":{"city":"Gent"}}`},
		{"subtree", []string{"/address/geo"}, `{"address":{"geo":{"lat":51.05,"lon":3.72}}}`},
		{"array, each element", []string{"/children/name"}, `{"children":[{"name":"An"},{"name":"Piet"}]}`},
		{"array, one element", []string{"/children/1"}, `{"children":[{"born":"2012-02-02","name":"Piet"}]}`},
		{"escapes", []string{"/a~1b", "/t~0x"}, `{"a/b":1,"t~x":2}`},
		{"exact big number", []string{"/income"}, `{"income":123456789012345678901234567890}`},
		{"absent path", []string{"/nope/deeper"}, `{}`},
		{"below a scalar", []string{"/name/first"}, `{}`},
		{"nothing granted", nil, `{}`},
		{"broader grant wins", []string{"/address/city", "/address"}, `{"address":{"city":"Gent","geo":{"lat":51.05,"lon":3.72},"street":"Kerkstraat 1"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Compile(tc.grants)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.JSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(tc.want)) {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestWhole(t *testing.T) {
	g, _ := Compile([]string{""})
	body := []byte(`{"x":1}`)
	got, err := g.JSON(body)
	if err != nil || string(got) != string(body) {
		t.Fatalf("whole grant changed body: %s %v", got, err)
	}
	if _, err := g.JSON([]byte("not json")); !errors.Is(err, ErrNotJSON) {
		t.Fatalf("want ErrNotJSON, got %v", err)
	}
}

func TestNotJSON(t *testing.T) {
	g, _ := Compile([]string{"/a"})
	for _, b := range []string{"", "<html>", `{"a":1} {"b":2}`, `{"a":`} {
		if _, err := g.JSON([]byte(b)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("%q: want ErrNotJSON, got %v", b, err)
		}
	}
}

func TestCompileRejectsBadPointers(t *testing.T) {
	for _, p := range []string{"name", "/a~2", "/a~"} {
		if _, err := Compile([]string{p}); err == nil {
			t.Errorf("Compile(%q) accepted", p)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("bad json %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad json %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":2}]}}`), "/a/b/c")
	f.Add([]byte(`[[[[[]]]]]`), "/0/0")
	f.Fuzz(func(t *testing.T, body []byte, ptr string) {
		g, err := Compile([]string{ptr})
		if err != nil {
			return
		}
		out, err := g.JSON(body)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
	})
}

func BenchmarkJSON(b *testing.B) {
	doc := []byte(`{"name":"Jan","ssn":"85073003328","address":{"street":"Kerkstraat 1","city":"Gent"},"children":[{"name":"An"},{"name":"Piet"}],"employer":{"id":"0123456789","name":"ACME"}}`)
	g, _ := Compile([]string{"/name", "/address/city", "/children/name"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.JSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}
