package minimise

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// streamAll runs Stream over src with the given reader wrapper.
func streamAll(g *Grants, body []byte, wrap func(io.Reader) io.Reader) ([]byte, error) {
	var out bytes.Buffer
	err := g.Stream(&out, wrap(bytes.NewReader(body)))
	return out.Bytes(), err
}

var readers = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one-byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
	"data-err": iotest.DataErrReader,
}

func mustCompile(t testing.TB, ptrs ...string) *Grants {
	t.Helper()
	g, err := Compile(ptrs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestStreamExact pins the bytes: order kept, values verbatim, whitespace
// between tokens gone, empty containers dropped, document shape kept.
func TestStreamExact(t *testing.T) {
	doc := ` { "z" : 1.50E+3 , "a" : { "y" : "caf\u00e9 \"x\"" , "x" : [ 1 , 2 ] } , "m":{"q":1},
	  "list" : [ { "k" : 1 , "v" : "one" } , { "v" : "two" } , 7 , { "k" : 3 } , [ { "k" : 4 } ] ] } `
	tests := []struct {
		name string
		ptrs []string
		want string
	}{
		{"order of the document, not of the grants", []string{"/z", "/a/x", "/a/y"}, `{"z":1.50E+3,"a":{"y":"caf\u00e9 \"x\"","x":[1,2]}}`},
		{"whole grant compacts", []string{""}, `{"z":1.50E+3,"a":{"y":"caf\u00e9 \"x\"","x":[1,2]},"m":{"q":1},"list":[{"k":1,"v":"one"},{"v":"two"},7,{"k":3},[{"k":4}]]}`},
		{"every element, nested arrays transparent", []string{"/list/k"}, `{"list":[{"k":1},{"k":3},[{"k":4}]]}`},
		{"an index and every element together", []string{"/list/k", "/list/1"}, `{"list":[{"k":1},{"v":"two"},{"k":3},[{"k":4}]]}`},
		{"index grant and member below it", []string{"/list/v", "/list/3/k"}, `{"list":[{"v":"one"},{"v":"two"},{"k":3}]}`},
		{"empty object dropped", []string{"/m/nope", "/z"}, `{"z":1.50E+3}`},
		{"nothing: document shape", []string{"/m/nope"}, `{}`},
		{"escaped names matched unescaped", []string{"/a/y"}, `{"a":{"y":"caf\u00e9 \"x\""}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mustCompile(t, tc.ptrs...)
			for rn, wrap := range readers {
				got, err := streamAll(g, []byte(doc), wrap)
				if err != nil {
					t.Fatalf("%s: %v", rn, err)
				}
				if string(got) != tc.want {
					t.Fatalf("%s: got  %s\nwant %s", rn, got, tc.want)
				}
			}
			got, err := g.JSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ptrs[0] != "" && string(got) != tc.want {
				t.Fatalf("JSON: got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStreamShapes(t *testing.T) {
	tests := []struct{ doc, ptr, want string }{
		{`[1,{"a":2},{"b":3}]`, "/a", `[{"a":2}]`},
		{`[1,2]`, "/a", `[]`},
		{`"scalar"`, "/a", `{}`},
		{`"scalar"`, "", `"scalar"`},
		{`{}`, "/a", `{}`},
		{`[]`, "/0", `[]`},
		{`{"a":{}}`, "/a", `{"a":{}}`},
		{`{"a":[]}`, "/a/x", `{}`},
		{`{"a":[[],[{"x":null}]]}`, "/a/x", `{"a":[[{"x":null}]]}`},
		{`{"":1,"a":2}`, "/", `{"":1}`},
		{`{"\u0000\n":1}`, "/\u0000\n", `{"\u0000\n":1}`},
		{`{"0":"member","1":"other"}`, "/0", `{"0":"member"}`},
		{`[[1,2],[3,4]]`, "/1/0", `[[3]]`},
	}
	for _, tc := range tests {
		g := mustCompile(t, tc.ptr)
		got, err := g.JSON([]byte(tc.doc))
		if err != nil {
			t.Errorf("%s %q: %v", tc.doc, tc.ptr, err)
			continue
		}
		if !jsonEqual(t, got, []byte(tc.want)) {
			t.Errorf("%s %q: got %s, want %s", tc.doc, tc.ptr, got, tc.want)
		}
	}
}

func TestNilAndEmptyGrants(t *testing.T) {
	var g *Grants
	if got, err := g.JSON([]byte(`{"a":1}`)); err != nil || string(got) != `{}` {
		t.Fatalf("nil grants: %s %v", got, err)
	}
	if !g.Empty() || g.Whole() || g.MaxDepth() != DefaultMaxDepth {
		t.Fatal("nil grants: Empty, Whole, MaxDepth")
	}
	e := mustCompile(t)
	if !e.Empty() {
		t.Fatal("no pointers is not empty")
	}
	if !Whole().Whole() || Whole().Empty() {
		t.Fatal("Whole()")
	}
}

// TestDifferential compares Stream with the reference minimisation over
// encoding/json on random documents and grants, read in pieces of every
// kind of size.
func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"whole", "one-byte", "half", "data-err"}
	for i := range 3000 {
		var b strings.Builder
		randomDoc(r, &b, 0)
		doc := []byte(b.String())
		ptrs := randomPointers(r)
		g := mustCompile(t, ptrs...)
		v, err := decode(doc)
		if err != nil {
			t.Fatalf("generator made bad JSON %s: %v", doc, err)
		}
		want := oracle(v, splitAll(ptrs))
		got, err := streamAll(g, doc, readers[names[i%len(names)]])
		if err != nil {
			t.Fatalf("%s %q: %v", doc, ptrs, err)
		}
		gv, err := decode(got)
		if err != nil {
			t.Fatalf("%s %q: output %s is not JSON: %v", doc, ptrs, got, err)
		}
		if !reflect.DeepEqual(gv, want) {
			wb, _ := json.Marshal(want)
			t.Fatalf("%s %q:\n got  %s\n want %s", doc, ptrs, got, wb)
		}
		viaJSON, err := g.JSON(doc)
		if err != nil || (!g.Whole() && !bytes.Equal(viaJSON, got)) {
			t.Fatalf("JSON and Stream differ: %s / %s (%v)", viaJSON, got, err)
		}
	}
}

func TestIntersect(t *testing.T) {
	doc := `{"name":"Jan","ssn":"1","address":{"city":"Gent","street":"K 1","geo":{"lat":1,"lon":2}},
	 "children":[{"name":"An","born":"2010"},{"name":"Piet","born":"2012"}],"0":{"name":"zero"}}`
	tests := []struct {
		name string
		a, b []string
		want string
	}{
		{"leaf takes the other side's subtree", []string{"/address"}, []string{"/address/city", "/name"}, `{"address":{"city":"Gent"}}`},
		{"both directions", []string{"/address/geo/lat", "/name"}, []string{"/address/geo"}, `{"address":{"geo":{"lat":1}}}`},
		{"disjoint", []string{"/name"}, []string{"/ssn"}, `{}`},
		{"arrays, every element", []string{"/children"}, []string{"/children/name"}, `{"children":[{"name":"An"},{"name":"Piet"}]}`},
		{"every element ∩ one index", []string{"/children/name"}, []string{"/children/1"}, `{"children":[{"name":"Piet"}]}`},
		{"index ∩ index below", []string{"/children/0"}, []string{"/children/0/born", "/children/1/born"}, `{"children":[{"born":"2010"}]}`},
		{"an index name is a member in an object", []string{"/children/name", "/0/name"}, []string{"/0"}, `{"0":{"name":"zero"}}`},
		{"whole ∩ x", []string{""}, []string{"/name", "/children/born"}, `{"name":"Jan","children":[{"born":"2010"},{"born":"2012"}]}`},
		{"x ∩ whole", []string{"/name"}, []string{""}, `{"name":"Jan"}`},
		{"nothing ∩ whole", nil, []string{""}, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Intersect(mustCompile(t, tc.a...), mustCompile(t, tc.b...))
			got, err := g.JSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(tc.want)) {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			h := Intersect(mustCompile(t, tc.b...), mustCompile(t, tc.a...))
			if got2, _ := h.JSON([]byte(doc)); !bytes.Equal(got, got2) {
				t.Fatalf("not symmetric: %s vs %s", got, got2)
			}
		})
	}
	x := mustCompile(t, "/address/city", "/children/1/name")
	if Intersect(Whole(), x).root != x.root || Intersect(x, Whole()).root != x.root {
		t.Fatal("Whole() ∩ x is not x")
	}
	if !Intersect(Whole(), Whole()).Whole() {
		t.Fatal("Whole() ∩ Whole() is not whole")
	}
	if !Intersect(nil, x).Empty() || !Intersect(x, nil).Empty() {
		t.Fatal("nil ∩ x grants something")
	}
	if d := Intersect(x.WithMaxDepth(10), x.WithMaxDepth(20)).MaxDepth(); d != 10 {
		t.Fatalf("depth of the intersection %d, want the lower", d)
	}
	if d := Intersect(x, x.WithMaxDepth(20)).MaxDepth(); d != 20 {
		t.Fatalf("depth of the intersection %d, want 20", d)
	}
}

func TestIntersectDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		var b strings.Builder
		randomDoc(r, &b, 0)
		doc := []byte(b.String())
		pa, pb := randomPointers(r), randomPointers(r)
		g := Intersect(mustCompile(t, pa...), mustCompile(t, pb...))
		v, _ := decode(doc)
		want := oracle(v, splitAll(pa), splitAll(pb))
		got, err := g.JSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		gv, _ := decode(got)
		if !reflect.DeepEqual(gv, want) {
			wb, _ := json.Marshal(want)
			t.Fatalf("%s %q ∩ %q:\n got  %s\n want %s", doc, pa, pb, got, wb)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{`{}`, ` [1, {"a": [true, null]}] `, `"x"`, `-0.5e-7`, `{"a":1,"b":{"a":2}}`} {
		if err := Validate(strings.NewReader(ok), 0); err != nil {
			t.Errorf("Validate(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{``, ` `, `{`, `{"a":1,"a":2}`, `{"a":{"b":1,"\u0062":2}}`, `[1] [2]`, `[01]`, `"\ud800"`, "\"\xff\""} {
		if err := Validate(strings.NewReader(bad), 0); !errors.Is(err, ErrNotJSON) {
			t.Errorf("Validate(%q) = %v, want ErrNotJSON", bad, err)
		}
	}
	deep := strings.Repeat("[", 10) + strings.Repeat("]", 10)
	if err := Validate(strings.NewReader(deep), 10); err != nil {
		t.Errorf("depth 10 of 10: %v", err)
	}
	if err := Validate(strings.NewReader(deep), 9); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth 10 of 9: %v", err)
	}
	boom := errors.New("boom")
	if err := Validate(iotest.ErrReader(boom), 0); !errors.Is(err, boom) || errors.Is(err, ErrNotJSON) {
		t.Errorf("read error: %v", err)
	}
}

func TestPlain8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	check := func(x uint64) {
		want := true
		for k := range 8 {
			if !plain[byte(x>>(8*k))] {
				want = false
			}
		}
		if plain8(x) != want {
			t.Fatalf("plain8(%#016x) = %v, want %v", x, !want, want)
		}
	}
	for c := range 256 {
		for k := range 8 {
			check(0x6161616161616161&^(0xff<<(8*k)) | uint64(c)<<(8*k))
		}
	}
	for range 200000 {
		x := r.Uint64()
		check(x)
		check(x & 0x7f7f7f7f7f7f7f7f)
		check(x&0x1f1f1f1f1f1f1f1f | 0x4040404040404040)
	}
}
