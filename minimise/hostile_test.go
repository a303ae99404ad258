package minimise

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// TestRefuses: malformed input is refused under every kind of grant and
// every way of reading it, with the sentinel that names the fault.
func TestRefuses(t *testing.T) {
	tests := []struct {
		name, doc string
		want      error
	}{
		{"empty", ``, ErrNotJSON},
		{"whitespace only", " \n\t", ErrNotJSON},
		{"html", `<html>`, ErrNotJSON},
		{"truncated", `{"a":`, ErrNotJSON},
		{"truncated string", `{"a":"abc`, ErrNotJSON},
		{"trailing data", `{"a":1} {"b":2}`, ErrNotJSON},
		{"trailing garbage", `{"a":1}x`, ErrNotJSON},
		{"trailing comma in object", `{"a":1,}`, ErrNotJSON},
		{"trailing comma in array", `{"a":[1,]}`, ErrNotJSON},
		{"missing colon", `{"a" 1}`, ErrNotJSON},
		{"unquoted name", `{a:1}`, ErrNotJSON},
		{"single quotes", `{'a':1}`, ErrNotJSON},
		{"NaN", `{"a":NaN}`, ErrNotJSON},
		{"Infinity", `{"a":Infinity}`, ErrNotJSON},
		{"-Infinity", `{"a":-Infinity}`, ErrNotJSON},
		{"leading zero", `{"a":01}`, ErrNotJSON},
		{"negative leading zero", `{"a":-01}`, ErrNotJSON},
		{"plus sign", `{"a":+1}`, ErrNotJSON},
		{"bare dot", `{"a":.5}`, ErrNotJSON},
		{"dot without digits", `{"a":1.}`, ErrNotJSON},
		{"exponent without digits", `{"a":1e+}`, ErrNotJSON},
		{"minus alone", `{"a":-}`, ErrNotJSON},
		{"hex number", `{"a":0x10}`, ErrNotJSON},
		{"truncated literal", `{"a":tru}`, ErrNotJSON},
		{"literal with tail", `{"a":nullx}`, ErrNotJSON},
		{"capital literal", `{"a":True}`, ErrNotJSON},
		{"lone high surrogate", `{"a":"\ud800"}`, ErrNotJSON},
		{"lone low surrogate", `{"a":"\udc00x"}`, ErrNotJSON},
		{"high then non-low", `{"a":"\ud800\u0041"}`, ErrNotJSON},
		{"reversed pair", `{"a":"\udc00\ud800"}`, ErrNotJSON},
		{"lone surrogate in a name", `{"\ud800":1}`, ErrNotJSON},
		{"bad escape", `{"a":"\x"}`, ErrNotJSON},
		{"short \\u", `{"a":"\u12"}`, ErrNotJSON},
		{"bad hex", `{"a":"\u12g4"}`, ErrNotJSON},
		{"control character", "{\"a\":\"x\ny\"}", ErrNotJSON},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", ErrNotJSON},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", ErrNotJSON},
		{"UTF-8 surrogate", "{\"a\":\"\xed\xa0\x80\"}", ErrNotJSON},
		{"cut UTF-8 at the end", "{\"a\":\"\xe2\x82", ErrNotJSON},
		{"invalid UTF-8 in a name", "{\"\xfe\":1}", ErrNotJSON},
		{"byte order mark", "\ufeff{}", ErrNotJSON},
		{"duplicate granted member", `{"a":1,"b":2,"a":3}`, ErrDuplicateName},
		{"duplicate by escape", `{"a":1,"\u0061":3}`, ErrDuplicateName},
		{"duplicate inside a kept value", `{"a":{"x":1,"x":2}}`, ErrDuplicateName},
		{"duplicate deep inside a kept value", `{"a":[{"x":[{"y":1,"z":2,"y":3}]}]}`, ErrDuplicateName},
		{"duplicate granted member in an element", `{"list":[{"k":1},{"k":1,"k":2}]}`, ErrDuplicateName},
		{"too deep", strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65), ErrTooDeep},
		{"too deep in arrays", `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "}", ErrTooDeep},
		{"too deep in a dropped member", `{"z":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "}", ErrTooDeep},
		{"very deep", strings.Repeat("[", 1_000_000), ErrTooDeep},
	}
	grants := map[string]*Grants{
		"member":   mustCompile(t, "/a", "/list/k"),
		"deeper":   mustCompile(t, "/a/x", "/list/k/x"),
		"whole":    Whole(),
		"nothing":  mustCompile(t),
		"other":    mustCompile(t, "/b"),
		"in-array": mustCompile(t, "/a/x/y", "/list/k"),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused := 0
			for gn, g := range grants {
				for rn, wrap := range readers {
					_, err := streamAll(g, []byte(tc.doc), wrap)
					if err == nil {
						// Duplicates are only looked for where they could be released.
						if tc.want == ErrDuplicateName {
							continue
						}
						t.Fatalf("%s/%s: accepted", gn, rn)
					}
					if !errors.Is(err, tc.want) {
						t.Fatalf("%s/%s: %v, want %v", gn, rn, err, tc.want)
					}
					var se *SyntaxError
					if !errors.As(err, &se) || se.Offset < 0 || se.Offset > int64(len(tc.doc)) {
						t.Fatalf("%s/%s: %v has no sane offset", gn, rn, err)
					}
					refused++
				}
				if _, err := g.JSON([]byte(tc.doc)); err == nil && tc.want != ErrDuplicateName {
					t.Fatalf("%s: JSON accepted", gn)
				}
			}
			if refused == 0 {
				t.Fatal("no grant refused it")
			}
			if err := Validate(strings.NewReader(tc.doc), 0); !errors.Is(err, tc.want) {
				t.Fatalf("Validate: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDuplicatesWhereDropped: duplicate names among dropped members are not
// looked for (they never leave the hub); the kept part is still exact.
func TestDuplicatesWhereDropped(t *testing.T) {
	g := mustCompile(t, "/a")
	got, err := g.JSON([]byte(`{"a":1,"b":2,"b":3,"c":{"x":1,"x":2}}`))
	if err != nil || string(got) != `{"a":1}` {
		t.Fatalf("got %s %v", got, err)
	}
	// A granted member that repeats is refused even if its first value was
	// a scalar where the grant went deeper.
	if _, err := mustCompile(t, "/a/x").JSON([]byte(`{"a":1,"a":{"x":2}}`)); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("smuggled second value: %v", err)
	}
	// Many members: the names go into a set past a few.
	var b strings.Builder
	b.WriteString(`{`)
	for i := range 100 {
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	b.WriteString(`"kxxxxx":2}`)
	if _, err := Whole().JSON([]byte(b.String())); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate among many: %v", err)
	}
}

func TestDepthLimit(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n-1) + `{}` + strings.Repeat(`}`, n-1))
	}
	for _, g := range []*Grants{mustCompile(t, "/a"), mustCompile(t, strings.Repeat("/a", 70)), Whole(), mustCompile(t, "/b")} {
		if _, err := g.JSON(nest(DefaultMaxDepth)); err != nil {
			t.Fatalf("depth %d refused: %v", DefaultMaxDepth, err)
		}
		if _, err := g.JSON(nest(DefaultMaxDepth + 1)); !errors.Is(err, ErrTooDeep) {
			t.Fatalf("depth %d: %v", DefaultMaxDepth+1, err)
		}
		if _, err := g.WithMaxDepth(100).JSON(nest(100)); err != nil {
			t.Fatalf("WithMaxDepth(100), depth 100: %v", err)
		}
		if _, err := g.WithMaxDepth(3).JSON(nest(4)); !errors.Is(err, ErrTooDeep) {
			t.Fatalf("WithMaxDepth(3), depth 4: %v", err)
		}
	}
	if d := Whole().WithMaxDepth(1 << 30).MaxDepth(); d != MaxDepthLimit {
		t.Fatalf("depth not capped: %d", d)
	}
	if d := Whole().WithMaxDepth(-1).MaxDepth(); d != DefaultMaxDepth {
		t.Fatalf("depth -1: %d", d)
	}
}

func TestIOErrors(t *testing.T) {
	boom := errors.New("boom")
	doc := genResponse(200 << 10)
	g := mustCompile(t, benchListGrants...)
	err := g.Stream(io.Discard, io.MultiReader(bytes.NewReader(doc[:100<<10]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, ErrNotJSON) {
		t.Fatalf("read error: %v", err)
	}
	err = g.Stream(failWriter{boom}, bytes.NewReader(doc))
	if !errors.Is(err, boom) || errors.Is(err, ErrNotJSON) {
		t.Fatalf("write error: %v", err)
	}
	err = mustCompile(t, "/a").Stream(failWriter{boom}, strings.NewReader(`{"a":1}`))
	if !errors.Is(err, boom) {
		t.Fatalf("write error at the end: %v", err)
	}
	err = g.Stream(io.Discard, stuckReader{})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("reader without progress: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

// repeatReader yields prefix, n copies of unit, then suffix, without
// holding them in memory.
func repeatReader(prefix, unit string, n int, suffix string) io.Reader {
	c := &cycle{s: strings.Repeat(unit, 1+(32<<10)/len(unit))}
	c.s = c.s[:len(c.s)/len(unit)*len(unit)]
	return io.MultiReader(strings.NewReader(prefix), io.LimitReader(c, int64(len(unit)*n)), strings.NewReader(suffix))
}

type cycle struct {
	s string
	i int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.s[c.i:])
		n += k
		c.i = (c.i + k) % len(c.s)
	}
	return n, nil
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// heapDuring returns the bytes allocated and the growth of the heap in use
// while f runs, after a forced collection.
func heapDuring(f func()) (alloc uint64, inuse int64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, int64(m1.HeapInuse) - int64(m0.HeapInuse)
}

const memBound = 32 << 20

// TestStreamMemory: minimising a 10 MB response costs less than 32 MB of
// heap, whatever is granted (issue 8, item 3).
func TestStreamMemory(t *testing.T) {
	doc := genResponse(10 << 20)
	wide := genWide(10 << 20)
	for _, ptrs := range [][]string{benchListGrants, {""}, {"/persons"}, {"/persons/0"}, nil, {"/a", "/c/d"}} {
		g := mustCompile(t, ptrs...)
		doc := doc
		if ptrs != nil && ptrs[0] == "/a" {
			doc = wide
		}
		var out countWriter
		var err error
		alloc, inuse := heapDuring(func() { err = g.Stream(&out, bytes.NewReader(doc)) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%q: %d bytes in, %d out, %d allocated, heap in use %+d", ptrs, len(doc), out.n, alloc, inuse)
		if alloc >= memBound || inuse >= memBound {
			t.Errorf("%q: %d bytes allocated, heap in use %+d: want < %d", ptrs, alloc, inuse, memBound)
		}
	}
}

// TestHostileMemory: documents built to make a minimiser hold them: one
// huge string (kept and dropped), one huge name, millions of small members,
// deep nesting. Memory stays bounded.
func TestHostileMemory(t *testing.T) {
	const big = hostileSize
	tests := []struct {
		name  string
		ptrs  []string
		src   func() io.Reader
		bound uint64
	}{
		{"huge string kept", []string{"/blob"}, func() io.Reader {
			return repeatReader(`{"blob":"`, `abcdéf\"\u20ac`, big/16, `","name":"x"}`)
		}, memBound},
		{"huge string dropped", []string{"/name"}, func() io.Reader {
			return repeatReader(`{"blob":"`, `abcdéf\"\u20ac`, big/16, `","name":"x"}`)
		}, memBound},
		{"huge number kept", []string{""}, func() io.Reader { return repeatReader(`[1`, `0123456789`, big/10, `]`) }, memBound},
		{"huge name dropped", []string{"/name"}, func() io.Reader {
			return repeatReader(`{"`, `n`, big, `":1,"name":"x"}`)
		}, memBound},
		{"huge name kept", []string{""}, func() io.Reader {
			return repeatReader(`{"`, `n\u00e9`, big/7, `":1,"name":"x"}`)
		}, memBound},
		{"many members dropped", []string{"/name"}, func() io.Reader {
			return repeatReader(`{"first":0`, `,"k":[1,{"k":2}]`, big/16, `}`)
		}, memBound},
		{"many elements", []string{"/k"}, func() io.Reader {
			return repeatReader(`[0`, `,{"k":1,"v":2}`, big/14, `]`)
		}, memBound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mustCompile(t, tc.ptrs...)
			var out countWriter
			var err error
			alloc, _ := heapDuring(func() { err = g.Stream(&out, tc.src()) })
			if err != nil && !errors.Is(err, ErrDuplicateName) {
				t.Fatal(err)
			}
			t.Logf("%d bytes out, %d allocated", out.n, alloc)
			if alloc >= tc.bound {
				t.Errorf("%d bytes allocated, want < %d", alloc, tc.bound)
			}
		})
	}
	// Distinct member names inside a kept object are remembered (as 8-byte
	// hashes): bounded by the kept value, not by the whole response.
	var b bytes.Buffer
	b.WriteString(`{"keep":{`)
	for i := 0; b.Len() < 10<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m`)
		b.WriteString(itoa(i))
		b.WriteString(`":0`)
	}
	b.WriteString(`}}`)
	var err error
	alloc, _ := heapDuring(func() { err = Whole().Stream(io.Discard, bytes.NewReader(b.Bytes())) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10 MB object of small members kept whole: %d allocated", alloc)
	if alloc >= memBound {
		t.Errorf("many kept members: %d bytes allocated", alloc)
	}
}

func itoa(i int) string {
	var d [20]byte
	p := len(d)
	for {
		p--
		d[p] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(d[p:])
		}
	}
}
