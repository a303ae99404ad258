// Package minimise keeps, of a JSON document, only the members that an
// authorisation grants (seed 001: only the data needed for the purpose).
//
// Grants are JSON pointers (RFC 6901). A pointer selects an object member
// by name; where the document has an array, an array-index segment ("0" or
// a decimal without leading zero) selects that element and any other segment
// applies to every element, so "/children/name" keeps the name of each
// child. An element named by index also gets what every element gets:
// "/children/name" with "/children/1/born" keeps the name of each child and
// the birth date of the second. Granting a member grants everything below
// it. The empty pointer "" grants the whole document. Elements, objects and
// arrays of which nothing is kept are left out (so indices of the output
// need not be those of the input).
//
// Minimisation streams ([Grants.Stream]): the document is read once through
// a small buffer, kept values are copied through verbatim (numbers and
// strings byte for byte) and the rest is only checked. Memory is bounded by
// the nesting depth and, inside kept objects, 8 bytes per member name (to
// refuse duplicates); not by the document's size nor by the length of any
// string or number.
// The document must be one well-formed JSON value (RFC 8259) with strings in
// valid UTF-8, no lone surrogate escapes, and at most the depth limit of
// nested arrays and objects; a member name that is granted, or any name
// inside a kept value, must not appear twice in its object
// ([ErrDuplicateName]): a provider cannot smuggle a second value past a
// grant, nor hand clients a document that parsers read differently.
// Duplicate names among members that are dropped are not looked for: they
// never leave the hub, and remembering them would cost memory in the size of
// what is dropped.
package minimise

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultMaxDepth is the nesting limit of arrays and objects unless
// [Grants.WithMaxDepth] or [Validate] say otherwise.
const DefaultMaxDepth = 64

// MaxDepthLimit caps any configured nesting limit (the scanner recurses once
// per level).
const MaxDepthLimit = 10000

var (
	// ErrNotJSON is returned (wrapped in a *SyntaxError) when the input is
	// not one well-formed JSON value.
	ErrNotJSON = errors.New("not well-formed JSON")
	// ErrTooDeep is returned when arrays and objects nest deeper than the
	// limit. It wraps ErrNotJSON.
	ErrTooDeep = fmt.Errorf("%w: nested too deep", ErrNotJSON)
	// ErrDuplicateName is returned when an object repeats a member name
	// that is granted or that lies inside a kept value. It wraps ErrNotJSON.
	ErrDuplicateName = fmt.Errorf("%w: duplicate member name", ErrNotJSON)
)

// SyntaxError says where the input stopped being acceptable. It unwraps to
// ErrNotJSON, ErrTooDeep or ErrDuplicateName.
type SyntaxError struct {
	Offset int64 // bytes of input read before the offending one
	Msg    string
	err    error
}

func (e *SyntaxError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%v at byte %d", e.err, e.Offset)
	}
	return fmt.Sprintf("%v: %s at byte %d", e.err, e.Msg, e.Offset)
}

func (e *SyntaxError) Unwrap() error { return e.err }

// Grants is a compiled set of JSON pointers. It is immutable and safe for
// concurrent use.
type Grants struct {
	root     *node // nil: nothing granted
	maxDepth int   // 0: DefaultMaxDepth
}

// Compile parses the pointers. It fails on a pointer that is not RFC 6901.
func Compile(pointers []string) (*Grants, error) {
	r := &raw{}
	for _, p := range pointers {
		segs, err := Split(p)
		if err != nil {
			return nil, err
		}
		n := r
		for _, s := range segs {
			if n.all {
				break
			}
			if n.c == nil {
				n.c = make(map[string]*raw)
			}
			c := n.c[s]
			if c == nil {
				c = &raw{}
				n.c[s] = c
			}
			n = c
		}
		n.all, n.c = true, nil
	}
	return &Grants{root: r.finalize()}, nil
}

// Whole returns grants of the whole document.
func Whole() *Grants { return &Grants{root: allNode} }

// Whole reports whether the whole document is granted.
func (g *Grants) Whole() bool { return g != nil && g.root == allNode }

// Empty reports whether nothing at all is granted.
func (g *Grants) Empty() bool { return g == nil || g.root == nil }

// WithMaxDepth returns the same grants with another nesting limit (at most
// MaxDepthLimit; 0 or less means DefaultMaxDepth).
func (g *Grants) WithMaxDepth(depth int) *Grants {
	c := &Grants{maxDepth: depth}
	if g != nil {
		c.root = g.root
	}
	return c
}

// MaxDepth is the nesting limit that Stream and JSON apply.
func (g *Grants) MaxDepth() int {
	if g == nil {
		return DefaultMaxDepth
	}
	return clampDepth(g.maxDepth)
}

func clampDepth(d int) int {
	switch {
	case d <= 0:
		return DefaultMaxDepth
	case d > MaxDepthLimit:
		return MaxDepthLimit
	}
	return d
}

// Intersect returns what both a and b grant: the authorisation's fields ∩
// the operation's declared fields. Where one side grants a member whole, the
// other side's grant below it is taken; array elements are intersected with
// both the index and the every-element reading of each side, so
// "/children/name" ∩ "/children/1" keeps the name of the second child. A nil
// side grants nothing. The nesting limit is the lower of the two.
func Intersect(a, b *Grants) *Grants {
	if a == nil || b == nil {
		return &Grants{}
	}
	d := a.maxDepth
	if d <= 0 || (b.maxDepth > 0 && b.maxDepth < d) {
		d = b.maxDepth
	}
	return &Grants{root: intersect(a.root, b.root), maxDepth: d}
}

// Split parses a JSON pointer into its unescaped segments.
func Split(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("json pointer %q must start with '/'", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if !strings.Contains(s, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '~' {
				b.WriteByte(s[j])
				continue
			}
			if j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1') {
				return nil, fmt.Errorf("json pointer %q has a bad escape", p)
			}
			if s[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		segs[i] = b.String()
	}
	return segs, nil
}

// raw is the pointer trie as written, before arrays are given their reading.
type raw struct {
	all bool
	c   map[string]*raw
}

// node is a compiled grant: what to keep of the value at one place.
type node struct {
	all bool // kept whole
	// object reading: member name → grant of its value
	members map[string]member
	// array reading: element index → grant of that element (its index
	// pointers and the every-element ones together)
	elems map[int]*node
	// array reading, other elements: the members whose names are not
	// array indices; nil if none. wild.wild == wild.
	wild    *node
	maxName int // longest member name, in bytes
}

// member is the grant of one member; id tells members apart (several may
// share a node).
type member struct {
	n  *node
	id int
}

var allNode = &node{all: true}

func (r *raw) finalize() *node {
	if r.all {
		return allNode
	}
	if len(r.c) == 0 {
		return nil
	}
	members := make(map[string]*node, len(r.c))
	for k, c := range r.c {
		members[k] = c.finalize()
	}
	w := wildOf(members)
	var elems map[int]*node
	for k, c := range members {
		if i, ok := index(k); ok {
			if elems == nil {
				elems = make(map[int]*node)
			}
			elems[i] = union(c, w)
		}
	}
	return build(members, elems)
}

// isIndex reports whether a segment is an RFC 6901 array index.
func isIndex(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// index parses an array index; false also for one too large to exist.
func index(s string) (int, bool) {
	if !isIndex(s) {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}

// wildOf is the grant of an array element that no index names: the
// members that are not indices, applied to the element itself.
func wildOf(members map[string]*node) *node {
	var w map[string]*node
	for k, c := range members {
		if !isIndex(k) {
			if w == nil {
				w = make(map[string]*node)
			}
			w[k] = c
		}
	}
	if w == nil {
		return nil
	}
	n := &node{members: slots(w), maxName: maxName(w)}
	n.wild = n
	return n
}

// slots numbers the members.
func slots(members map[string]*node) map[string]member {
	if len(members) == 0 {
		return nil
	}
	m := make(map[string]member, len(members))
	for k, c := range members {
		m[k] = member{n: c, id: len(m)}
	}
	return m
}

// kid is the grant of member k, or nil.
func (n *node) kid(k string) *node { return n.members[k].n }

func maxName(members map[string]*node) int {
	m := 0
	for k := range members {
		m = max(m, len(k))
	}
	return m
}

// build makes a node of non-nil parts; nil when it grants nothing.
func build(members map[string]*node, elems map[int]*node) *node {
	if len(members) == 0 && len(elems) == 0 {
		return nil
	}
	n := &node{members: slots(members), elems: elems, maxName: maxName(members)}
	if len(elems) == 0 {
		n.wild = n
		for k := range members {
			if isIndex(k) {
				n.wild = wildOf(members)
				break
			}
		}
	} else {
		n.wild = wildOf(members)
	}
	return n
}

// elem is the grant of array element i.
func (n *node) elem(i int) *node {
	if e, ok := n.elems[i]; ok {
		return e
	}
	return n.wild
}

func union(x, y *node) *node {
	switch {
	case x == nil:
		return y
	case y == nil:
		return x
	case x.all || y.all:
		return allNode
	}
	members := make(map[string]*node, len(x.members)+len(y.members))
	for k, c := range x.members {
		members[k] = union(c.n, y.kid(k))
	}
	for k, c := range y.members {
		if _, ok := x.members[k]; !ok {
			members[k] = c.n
		}
	}
	var elems map[int]*node
	add := func(i int, e *node) {
		if elems == nil {
			elems = make(map[int]*node)
		}
		elems[i] = e
	}
	for i, e := range x.elems {
		add(i, union(e, y.elem(i)))
	}
	for i, e := range y.elems {
		if _, ok := x.elems[i]; !ok {
			add(i, union(x.elem(i), e))
		}
	}
	return build(members, elems)
}

func intersect(x, y *node) *node {
	switch {
	case x == nil || y == nil:
		return nil
	case x.all:
		return y
	case y.all:
		return x
	}
	var members map[string]*node
	for k, c := range x.members {
		if d, ok := y.members[k]; ok {
			if r := intersect(c.n, d.n); r != nil {
				if members == nil {
					members = make(map[string]*node)
				}
				members[k] = r
			}
		}
	}
	var elems map[int]*node
	add := func(i int, e *node) {
		if e == nil {
			return
		}
		if elems == nil {
			elems = make(map[int]*node)
		}
		elems[i] = e
	}
	for i, e := range x.elems {
		add(i, intersect(e, y.elem(i)))
	}
	for i, e := range y.elems {
		if _, ok := x.elems[i]; !ok {
			add(i, intersect(x.elem(i), e))
		}
	}
	return build(members, elems)
}
