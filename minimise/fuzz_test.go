package minimise

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	`{"a":{"b":[1,{"c":2}]}}`,
	`[[[[[]]]]]`,
	`{"name":"Jan","children":[{"name":"An","born":"2010"},{"name":"Piet"}],"0":{"x":1}}`,
	` {"a" : "caf\u00e9\ud83d\ude00" , "b":-0.5e+10, "c":[true,false,null]} `,
	`{"a":1,"a":2}`,
	`{"a":"\ud800"}`,
	"{\"a\":\"\xff\"}",
	`{"a":01}`,
	`{"a":NaN}`,
	`"scalar"`,
	`{"a":1} x`,
}

// surrogateEscape finds what may be a surrogate \u escape.
var surrogateEscape = regexp.MustCompile(`(?i)\\ud[89a-f]`)

// inspect walks body with encoding/json's tokenizer: the nesting depth and
// whether an object repeats a name.
func inspect(body []byte) (depth int, dup bool, err error) {
	d := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj, key bool
		names    map[string]bool
	}
	var st []frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return depth, dup, nil
		}
		if err != nil {
			return depth, dup, err
		}
		if k, isName := tok.(string); isName && len(st) > 0 && st[len(st)-1].obj && st[len(st)-1].key {
			n := len(st)
			if st[n-1].names[k] {
				dup = true
			}
			st[n-1].names[k], st[n-1].key = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			st = append(st, frame{obj: true, key: true, names: map[string]bool{}})
			depth = max(depth, len(st))
			continue
		case json.Delim('['):
			st = append(st, frame{})
			depth = max(depth, len(st))
			continue
		case json.Delim('}'), json.Delim(']'):
			st = st[:len(st)-1]
		}
		if n := len(st); n > 0 && st[n-1].obj {
			st[n-1].key = true
		}
	}
}

// acceptable says whether body should pass the scanner's checks.
func acceptable(body []byte, dupsMatter bool) (ok, sure bool) {
	if !json.Valid(body) || !utf8.Valid(body) {
		return false, true
	}
	if surrogateEscape.Match(body) {
		return false, false // may hold a lone surrogate: not decided here
	}
	depth, dup, err := inspect(body)
	if err != nil {
		return false, true
	}
	if depth > DefaultMaxDepth {
		return false, true
	}
	if dup {
		return !dupsMatter, dupsMatter
	}
	return true, true
}

func FuzzStream(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "/a", "/children/name")
		f.Add([]byte(s), "", "/0")
	}
	f.Fuzz(func(t *testing.T, body []byte, p1, p2 string) {
		g, err := Compile([]string{p1, p2})
		if err != nil {
			return
		}
		out, err := g.JSON(body)
		out1, err1 := streamAll(g, body, iotest.OneByteReader)
		if (err == nil) != (err1 == nil) {
			t.Fatalf("JSON %v, Stream by single bytes %v", err, err1)
		}
		if err != nil {
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("error %v does not wrap ErrNotJSON", err)
			}
			// Duplicates are only looked for where kept; a plain refusal must
			// have a reason encoding/json or UTF-8 can see.
			if !errors.Is(err, ErrDuplicateName) {
				if ok, sure := acceptable(body, false); ok && sure {
					t.Fatalf("refused good JSON %q: %v", body, err)
				}
			}
			return
		}
		if g.Whole() {
			if !bytes.Equal(out, body) {
				t.Fatal("whole grant changed the body")
			}
		} else if !bytes.Equal(out, out1) {
			t.Fatalf("JSON %s, Stream %s", out, out1)
		}
		if ok, sure := acceptable(body, g.Whole()); !ok && sure {
			t.Fatalf("accepted bad JSON %q", body)
		}
		doc, err := decode(body)
		if err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		got, err := decode(out1)
		if err != nil {
			t.Fatalf("output %q is not JSON: %v", out1, err)
		}
		if want := oracle(doc, splitAll([]string{p1, p2})); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q %q %q: got %s, want %v", body, p1, p2, out1, want)
		}
	})
}

func FuzzIntersect(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "/a", "/children/name", "/children/1", "")
	}
	f.Fuzz(func(t *testing.T, body []byte, a1, a2, b1, b2 string) {
		a, err := Compile([]string{a1, a2})
		if err != nil {
			return
		}
		b, err := Compile([]string{b1, b2})
		if err != nil {
			return
		}
		ab, ba := Intersect(a, b), Intersect(b, a)
		out, err := ab.JSON(body)
		if err != nil {
			return
		}
		if out2, err := ba.JSON(body); err != nil || (!ab.Whole() && !bytes.Equal(out, out2)) {
			t.Fatalf("not symmetric: %s / %s %v", out, out2, err)
		}
		doc, err := decode(body)
		if err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		got, err := decode(out)
		if err != nil {
			t.Fatalf("output %q is not JSON", out)
		}
		if want := oracle(doc, splitAll([]string{a1, a2}), splitAll([]string{b1, b2})); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q (%q %q) ∩ (%q %q): got %s, want %v", body, a1, a2, b1, b2, out, want)
		}
		if w, _ := Intersect(Whole(), a).JSON(body); !bytes.Equal(w, mustJSON(t, a, body)) {
			t.Fatal("Whole() ∩ a differs from a")
		}
	})
}

func mustJSON(t *testing.T, g *Grants, body []byte) []byte {
	out, err := g.JSON(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := Validate(bytes.NewReader(body), 0)
		err1 := Validate(iotest.OneByteReader(bytes.NewReader(body)), 0)
		if (err == nil) != (err1 == nil) {
			t.Fatalf("whole %v, single bytes %v", err, err1)
		}
		ok, sure := acceptable(body, true)
		if sure && ok != (err == nil) {
			t.Fatalf("Validate(%q) = %v, encoding/json says acceptable=%v", body, err, ok)
		}
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted %q", body)
		}
		if err != nil && !errors.Is(err, ErrNotJSON) {
			t.Fatalf("error %v does not wrap ErrNotJSON", err)
		}
	})
}
