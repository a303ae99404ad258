// Package minimise keeps, of a JSON document, only the members that an
// authorisation grants (seed 001: only the data needed for the purpose).
//
// Grants are JSON pointers (RFC 6901). A pointer selects an object member
// by name; where the document has an array, a decimal segment selects that
// element and any other segment applies to every element, so "/children/name"
// keeps the name of each child. Granting a member grants everything below
// it. The empty pointer "" grants the whole document.
package minimise

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotJSON is returned when the body is not one JSON value.
var ErrNotJSON = errors.New("response is not JSON")

// Grants is a compiled set of JSON pointers.
type Grants struct {
	whole bool
	root  *node
}

type node struct {
	all      bool // this member is granted whole
	children map[string]*node
}

// Compile parses the pointers. It fails on a pointer that is not RFC 6901.
func Compile(pointers []string) (*Grants, error) {
	g := &Grants{root: &node{}}
	for _, p := range pointers {
		if p == "" {
			g.whole = true
			continue
		}
		segs, err := Split(p)
		if err != nil {
			return nil, err
		}
		n := g.root
		for _, s := range segs {
			if n.all {
				break
			}
			if n.children == nil {
				n.children = make(map[string]*node)
			}
			c := n.children[s]
			if c == nil {
				c = &node{}
				n.children[s] = c
			}
			n = c
		}
		n.all, n.children = true, nil
	}
	return g, nil
}

// Whole reports whether the whole document is granted.
func (g *Grants) Whole() bool { return g.whole }

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

// JSON returns body reduced to the granted members. Numbers keep their
// exact text. Members not granted are dropped; a granted path that the
// document lacks is simply absent. If nothing is granted at all, the result
// is an empty object (or the document's empty shape).
func (g *Grants) JSON(body []byte) ([]byte, error) {
	if g.whole {
		if !json.Valid(body) {
			return nil, ErrNotJSON
		}
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrNotJSON)
	}
	out, _ := project(doc, g.root)
	if out == nil {
		out = map[string]any{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode minimised response: %w", err)
	}
	return b, nil
}

// project keeps what n grants of v; ok is false when nothing is kept.
func project(v any, n *node) (any, bool) {
	if n.all {
		return v, true
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any)
		for k, c := range n.children {
			if child, present := t[k]; present {
				if pv, ok := project(child, c); ok {
					out[k] = pv
				}
			}
		}
		return out, len(out) > 0
	case []any:
		out := make([]any, 0, len(t))
		for i, elem := range t {
			if c, ok := n.children[strconv.Itoa(i)]; ok {
				if pv, ok := project(elem, c); ok {
					out = append(out, pv)
				}
				continue
			}
			// Non-index segments apply to every element.
			wild := &node{children: make(map[string]*node)}
			for k, c := range n.children {
				if _, err := strconv.Atoi(k); err != nil {
					wild.children[k] = c
				}
			}
			if len(wild.children) == 0 {
				continue
			}
			if pv, ok := project(elem, wild); ok {
				out = append(out, pv)
			}
		}
		return out, len(out) > 0
	default:
		return nil, false // a scalar below a pointer that goes deeper
	}
}
