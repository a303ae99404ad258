package minimise

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// oracle is the reference minimisation, written from the package's
// documented rules over a document decoded by encoding/json: sets are the
// pointer lists of each grant (one for Compile, two for Intersect); a value
// is kept whole when every grant has a pointer that ends at or above it.
func oracle(doc any, sets ...[][]string) any {
	out, ok := project(doc, sets)
	if ok {
		return out
	}
	if a, isArray := doc.([]any); isArray && a != nil {
		return []any{}
	}
	return map[string]any{}
}

func project(v any, sets [][][]string) (any, bool) {
	var rest [][][]string
	for _, set := range sets {
		if len(set) == 0 {
			return nil, false // this grant has nothing left here
		}
		ended := false
		for _, p := range set {
			if len(p) == 0 {
				ended = true
			}
		}
		if !ended {
			rest = append(rest, set)
		}
	}
	if len(rest) == 0 {
		return v, true
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			sub := make([][][]string, len(rest))
			for j, set := range rest {
				for _, p := range set {
					if p[0] == k {
						sub[j] = append(sub[j], p[1:])
					}
				}
			}
			if r, ok := project(x, sub); ok {
				out[k] = r
			}
		}
		return out, len(out) > 0
	case []any:
		out := []any{}
		for i, x := range t {
			sub := make([][][]string, len(rest))
			for j, set := range rest {
				for _, p := range set {
					switch {
					case !isIndex(p[0]):
						sub[j] = append(sub[j], p) // applies to every element
					case p[0] == strconv.Itoa(i):
						sub[j] = append(sub[j], p[1:])
					}
				}
			}
			if r, ok := project(x, sub); ok {
				out = append(out, r)
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

func splitAll(ptrs []string) [][]string {
	out := [][]string{}
	for _, p := range ptrs {
		s, err := Split(p)
		if err != nil {
			panic(err)
		}
		if s == nil {
			s = []string{}
		}
		out = append(out, s)
	}
	return out
}

func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

var alphabet = []string{"a", "b", "c", "name", "0", "1", "2", "01", "-", "~", "a/b", "é", ""}

var scalars = []string{`0`, `-0`, `1.5`, `-2.25e-3`, `12345678901234567890123`, `1E+2`, `true`, `false`, `null`,
	`""`, `"x"`, `"caf\u00e9"`, `"\ud83d\ude00"`, `"tab\tquote\"back\\"`, `"é€😀"`, `"\/"`}

func ws(r *rand.Rand) string {
	return []string{"", "", "", " ", "\n  ", "\t", "\r\n"}[r.IntN(7)]
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// randomDoc writes a random JSON document with unique member names.
func randomDoc(r *rand.Rand, b *strings.Builder, depth int) {
	b.WriteString(ws(r))
	switch k := r.IntN(10); {
	case depth > 4 || k < 3:
		b.WriteString(scalars[r.IntN(len(scalars))])
	case k < 7:
		b.WriteByte('{')
		perm := r.Perm(len(alphabet))[:r.IntN(5)]
		for i, p := range perm {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(ws(r))
			name := quote(alphabet[p])
			if alphabet[p] == "a" && r.IntN(2) == 0 {
				name = `"\u0061"` // the same name, escaped
			}
			b.WriteString(name + ws(r) + ":")
			randomDoc(r, b, depth+1)
		}
		b.WriteString(ws(r) + "}")
	default:
		b.WriteByte('[')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomDoc(r, b, depth+1)
		}
		b.WriteString(ws(r) + "]")
	}
	b.WriteString(ws(r))
}

func randomPointers(r *rand.Rand) []string {
	var ptrs []string
	for range 1 + r.IntN(3) {
		if r.IntN(12) == 0 {
			ptrs = append(ptrs, "")
			continue
		}
		var p strings.Builder
		for range 1 + r.IntN(4) {
			s := alphabet[r.IntN(len(alphabet))]
			s = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
			p.WriteString("/" + s)
		}
		ptrs = append(ptrs, p.String())
	}
	return ptrs
}
