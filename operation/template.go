// Package operation is how the hub knows what a call asks for (issue 8):
// a service declares operations, each a method and a path template; the
// hub matches every call against them, validates the typed parameters and
// builds the request target it sends to the provider itself, from the
// template and the validated values — never the path as sent.
//
// A template is a sequence of segments, each a literal or a parameter:
//
//	/persons/{subject}/address
//	/certificates/{year:int}/{id}
//	/payments/{from:date}
//
// Literals are 1–128 characters of [A-Za-z0-9._~-] (not "." or ".."). A
// parameter fills a whole segment:
//
//	{subject}     the subject of the exchange: 1–128 characters once
//	              percent-decoded, no control characters; the hub
//	              canonicalises it by the scheme of the service's subject kind
//	{name}        a safe segment: 1–128 characters of [A-Za-z0-9._~-] once
//	              percent-decoded, not "." or ".."
//	{name:int}    a non-negative decimal integer, at most 18 digits
//	              (canonicalised without leading zeros)
//	{name:date}   a real calendar date, YYYY-MM-DD
//
// There are no wildcards, empty segments or dot segments; parameter names
// ([A-Za-z][A-Za-z0-9_]{0,31}) are unique in a template. The template "/"
// is the service's base URL itself.
package operation

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTemplate is wrapped by every template parse error.
var ErrTemplate = errors.New("invalid path template")

// Kind is the type of a path parameter.
type Kind uint8

// Parameter kinds.
const (
	Literal Kind = iota // not a parameter: a literal segment
	Segment             // {name}: a safe segment
	Int                 // {name:int}
	Date                // {name:date}
	Subject             // {subject}
)

func (k Kind) String() string {
	switch k {
	case Literal:
		return "literal"
	case Segment:
		return "segment"
	case Int:
		return "int"
	case Date:
		return "date"
	case Subject:
		return "subject"
	}
	return "unknown"
}

// Limits of a template.
const (
	MaxTemplate = 512 // bytes of a template
	MaxSegments = 32  // segments of a template (and so of a matched path)
	MaxParams   = 8   // parameters of a template
	MaxValue    = 128 // bytes of a decoded parameter value or literal
)

// SubjectParam is the name of the parameter that carries the subject.
const SubjectParam = "subject"

// Template is a parsed path template.
type Template struct {
	raw     string
	segs    []tseg
	params  []string // parameter names in order
	subject int      // index in params of {subject}; -1 if none
}

type tseg struct {
	kind  Kind
	lit   string // for Literal
	param int    // index in params for parameters
}

// Parse parses a path template.
func Parse(path string) (*Template, error) {
	if path == "" || path[0] != '/' {
		return nil, fmt.Errorf("%w: %q must start with '/'", ErrTemplate, trunc(path))
	}
	if len(path) > MaxTemplate {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTemplate, MaxTemplate)
	}
	t := &Template{raw: path, subject: -1}
	if path == "/" {
		return t, nil
	}
	parts := strings.Split(path[1:], "/")
	if len(parts) > MaxSegments {
		return nil, fmt.Errorf("%w: more than %d segments", ErrTemplate, MaxSegments)
	}
	for _, p := range parts {
		switch {
		case p == "":
			return nil, fmt.Errorf("%w: %q has an empty segment", ErrTemplate, trunc(path))
		case p[0] == '{':
			if p[len(p)-1] != '}' {
				return nil, fmt.Errorf("%w: parameter %q must fill its segment", ErrTemplate, trunc(p))
			}
			name, typ, hasType := strings.Cut(p[1:len(p)-1], ":")
			if !validParamName(name) {
				return nil, fmt.Errorf("%w: parameter name %q must match [A-Za-z][A-Za-z0-9_]{0,31}", ErrTemplate, trunc(name))
			}
			for _, n := range t.params {
				if n == name {
					return nil, fmt.Errorf("%w: parameter %q repeated", ErrTemplate, name)
				}
			}
			if len(t.params) == MaxParams {
				return nil, fmt.Errorf("%w: more than %d parameters", ErrTemplate, MaxParams)
			}
			k := Segment
			switch {
			case name == SubjectParam:
				if hasType {
					return nil, fmt.Errorf("%w: {subject} takes no type (the subject kind's scheme validates it)", ErrTemplate)
				}
				k = Subject
				t.subject = len(t.params)
			case !hasType:
			case typ == "int":
				k = Int
			case typ == "date":
				k = Date
			default:
				return nil, fmt.Errorf("%w: parameter type %q (want int or date)", ErrTemplate, trunc(typ))
			}
			t.segs = append(t.segs, tseg{kind: k, param: len(t.params)})
			t.params = append(t.params, name)
		default:
			if strings.ContainsAny(p, "{}") {
				return nil, fmt.Errorf("%w: segment %q: a parameter must fill its segment", ErrTemplate, trunc(p))
			}
			if !safeSegment(p) {
				return nil, fmt.Errorf("%w: literal segment %q must be 1 to %d characters of [A-Za-z0-9._~-], not a dot segment", ErrTemplate, trunc(p), MaxValue)
			}
			t.segs = append(t.segs, tseg{kind: Literal, lit: p})
		}
	}
	return t, nil
}

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// Params returns the parameter names in the order they appear.
func (t *Template) Params() []string { return t.params }

// HasSubject reports whether the template has a {subject} parameter.
func (t *Template) HasSubject() bool { return t.subject >= 0 }

// match matches an escaped service-relative path ("" or "/" for the root)
// and stores the validated, decoded (canonical) parameter values in vals.
// ok is false when the path's shape does not fit; reason names the first
// parameter that does not validate (path shape fits, value does not).
func (t *Template) match(path string, vals *[MaxParams]string) (ok bool, badParam int) {
	if path == "" || path == "/" {
		return len(t.segs) == 0, -1
	}
	if path[0] != '/' || len(t.segs) == 0 {
		return false, -1
	}
	rest := path[1:]
	badParam = -1
	for i := range t.segs {
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			if i == len(t.segs)-1 {
				return false, -1
			}
			seg, rest = rest[:j], rest[j+1:]
		} else {
			if i != len(t.segs)-1 {
				return false, -1
			}
			seg, rest = rest, ""
		}
		if seg == "" {
			return false, -1 // empty segments never match
		}
		s := &t.segs[i]
		if s.kind == Literal {
			if seg != s.lit {
				return false, -1
			}
			continue
		}
		v, good := value(s.kind, seg)
		if !good {
			if badParam < 0 {
				badParam = s.param
			}
			continue
		}
		vals[s.param] = v
	}
	return true, badParam
}

// value validates one escaped segment as a parameter of kind k and returns
// its canonical (decoded) value.
func value(k Kind, seg string) (string, bool) {
	if seg == "" {
		return "", false
	}
	v := seg
	if strings.IndexByte(seg, '%') >= 0 {
		d, ok := unescape(seg)
		if !ok {
			return "", false
		}
		v = d
	}
	switch k {
	case Segment:
		return v, safeSegment(v)
	case Subject:
		return v, validSubject(v)
	case Int:
		return canonicalInt(v)
	case Date:
		return v, validDate(v)
	}
	return "", false
}

// unescape percent-decodes a path segment; it refuses bad escapes.
func unescape(s string) (string, bool) {
	if len(s) > 3*MaxValue {
		return "", false
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-'
}

// safeSegment: 1–MaxValue characters of [A-Za-z0-9._~-], not "." or "..".
func safeSegment(s string) bool {
	if s == "" || len(s) > MaxValue || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			return false
		}
	}
	return true
}

// validSubject: 1–MaxValue bytes, no control characters, no '/' or '\',
// not a dot segment (the subject kind's scheme then decides).
func validSubject(s string) bool {
	if s == "" || len(s) > MaxValue || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// canonicalInt: 1–18 decimal digits; leading zeros dropped.
func canonicalInt(s string) (string, bool) {
	if s == "" || len(s) > 18 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s, true
}

// validDate: YYYY-MM-DD, a real date of the proleptic Gregorian calendar.
func validDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			if b[i] < '0' || b[i] > '9' {
				return 0, false
			}
			n = n*10 + int(b[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

func validParamName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// overlaps reports whether some path matches both templates' shapes.
func overlaps(a, b *Template) bool {
	if len(a.segs) != len(b.segs) {
		return false
	}
	for i := range a.segs {
		if !segOverlap(&a.segs[i], &b.segs[i]) {
			return false
		}
	}
	return true
}

func segOverlap(a, b *tseg) bool {
	switch {
	case a.kind == Literal && b.kind == Literal:
		return a.lit == b.lit
	case a.kind == Literal:
		_, ok := value(b.kind, a.lit)
		return ok
	case b.kind == Literal:
		_, ok := value(a.kind, b.lit)
		return ok
	case a.kind == Int && b.kind == Date, a.kind == Date && b.kind == Int:
		return false
	}
	return true
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
