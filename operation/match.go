package operation

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/crossroads-hub/crossroads"
)

// Methods an operation may declare, as bits.
const (
	bitGET uint8 = 1 << iota
	bitPOST
	bitPUT
	bitPATCH
	bitDELETE
)

func methodBit(m string) uint8 {
	switch m {
	case http.MethodGet:
		return bitGET
	case http.MethodPost:
		return bitPOST
	case http.MethodPut:
		return bitPUT
	case http.MethodPatch:
		return bitPATCH
	case http.MethodDelete:
		return bitDELETE
	}
	return 0
}

// allowHeaders[mask] is the Allow header for a set of operation methods
// (HEAD with GET, OPTIONS always), precomputed so a 405 allocates nothing.
var allowHeaders = func() (out [32]string) {
	for mask := range out {
		var b []string
		for _, m := range []struct {
			bit  uint8
			name string
		}{{bitGET, "GET, HEAD"}, {bitPOST, "POST"}, {bitPUT, "PUT"}, {bitPATCH, "PATCH"}, {bitDELETE, "DELETE"}} {
			if uint8(mask)&m.bit != 0 {
				b = append(b, m.name)
			}
		}
		out[mask] = strings.Join(append(b, "OPTIONS"), ", ")
	}
	return out
}()

// Limits of query parameters.
const (
	MaxQueryValue = 256 // bytes of a decoded query value
)

// Matcher matches calls against a service's operations. It is immutable
// and safe for concurrent use.
type Matcher struct {
	svc *crossroads.Service
	ops []compiled
}

type compiled struct {
	op    *crossroads.Operation
	t     *Template
	bit   uint8
	body  string // declared body media type, lower case, without parameters
	query []string
}

// Compile compiles the operations of svc. It fails if CheckService finds
// any problem. The Matcher refers to svc: do not modify it afterwards.
func Compile(svc *crossroads.Service) (*Matcher, error) {
	if errs := CheckService(*svc); len(errs) > 0 {
		return nil, fmt.Errorf("service %s: %w", svc.ID, errors.Join(errs...))
	}
	m := &Matcher{svc: svc, ops: make([]compiled, 0, len(svc.Operations))}
	for i := range svc.Operations {
		op := &svc.Operations[i]
		if op.Kind == crossroads.OperationMutation {
			continue // published by the provider, never called (mutation.go)
		}
		t, _ := Parse(op.Path) // checked above
		c := compiled{op: op, t: t, bit: methodBit(op.Method), query: op.Query}
		if op.Body != "" {
			c.body, _, _ = mime.ParseMediaType(op.Body)
		}
		m.ops = append(m.ops, c)
	}
	return m, nil
}

// Service returns the service the matcher was compiled from.
func (m *Matcher) Service() *crossroads.Service { return m.svc }

// Match is a call matched to an operation.
type Match struct {
	// Operation is the operation matched; nil for OPTIONS (answered by the
	// hub with Allow, the provider is not called) and for refusals.
	Operation *crossroads.Operation
	// Allow lists the methods the path accepts (for 405 and OPTIONS).
	Allow string
	// Subject is the {subject} parameter, percent-decoded as sent. The
	// caller canonicalises it by the scheme of the service's subject kind
	// and stores the canonical form here before calling Target.
	Subject string
	// Body is the declared body media type (lower case, no parameters);
	// empty: the operation takes no body.
	Body string
	// Refused names the parameter refused (invalid-parameter: a path
	// parameter's template name; unknown-parameter: empty, the name is the
	// caller's input).
	Refused string

	t     *Template
	vals  [MaxParams]string
	names []string // declared query parameters, in order
	query url.Values
}

// Match finds the operation of an escaped service-relative path (e.g.
// "/persons/85073003328"; "" or "/" for the base URL) and method, and
// validates its parameters. The reason is empty on success, else one of
// unknown-operation, method-not-allowed (Allow set), invalid-parameter,
// unknown-parameter. HEAD matches a GET operation; OPTIONS matches any
// path an operation has, with Allow and no Operation.
func (m *Matcher) Match(method, escapedPath string, query url.Values) (Match, crossroads.Reason) {
	var res Match
	want := methodBit(method)
	switch method {
	case http.MethodHead:
		want = bitGET
	case http.MethodOptions:
		want = 0
	}
	var mask uint8
	var found *compiled
	bad := -1
	var vals [MaxParams]string
	for i := range m.ops {
		c := &m.ops[i]
		ok, b := c.t.match(escapedPath, &vals)
		if !ok {
			continue
		}
		mask |= c.bit
		if c.bit == want && found == nil {
			found, bad, res.vals = c, b, vals
		}
	}
	if mask == 0 {
		return res, crossroads.ReasonUnknownOperation
	}
	res.Allow = allowHeaders[mask]
	if method == http.MethodOptions {
		return res, ""
	}
	if found == nil {
		return res, crossroads.ReasonMethodNotAllowed
	}
	res.t, res.names, res.Body = found.t, found.query, found.body
	if bad >= 0 {
		res.Refused = found.t.params[bad]
		return res, crossroads.ReasonInvalidParameter
	}
	for name, vs := range query {
		if !contains(found.query, name) {
			return res, crossroads.ReasonUnknownParameter
		}
		if len(vs) != 1 || !validQueryValue(vs[0]) {
			res.Refused = name
			return res, crossroads.ReasonInvalidParameter
		}
	}
	res.query = query
	if found.t.subject >= 0 {
		res.Subject = res.vals[found.t.subject]
	}
	res.Operation = found.op
	return res, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func validQueryValue(v string) bool {
	if len(v) > MaxQueryValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// Param returns the validated value of a path parameter (the canonical
// Subject for {subject}), or "".
func (m *Match) Param(name string) string {
	if m.t == nil {
		return ""
	}
	for i, n := range m.t.params {
		if n == name {
			if i == m.t.subject {
				return m.Subject
			}
			return m.vals[i]
		}
	}
	return ""
}

// Target returns the canonical request target, relative to the service's
// base URL: the template filled with the validated, re-escaped parameters
// (Subject for {subject}) and the declared query parameters sent, in the
// order the operation declares them. It is what the hub asks of the
// provider, and what the seal and the audit record name.
func (m *Match) Target() string {
	if m.t == nil {
		return ""
	}
	var b strings.Builder
	b.Grow(len(m.t.raw) + 32)
	if len(m.t.segs) == 0 {
		b.WriteByte('/')
	}
	for i := range m.t.segs {
		s := &m.t.segs[i]
		b.WriteByte('/')
		switch {
		case s.kind == Literal:
			b.WriteString(s.lit)
		case s.kind == Subject:
			b.WriteString(escapeSubject(m.Subject))
		default:
			b.WriteString(m.vals[s.param]) // safe characters only
		}
	}
	sep := byte('?')
	for _, name := range m.names {
		vs, ok := m.query[name]
		if !ok {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(url.QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(vs[0]))
	}
	return b.String()
}

// escapeSubject escapes a (canonical) subject as one path segment: never
// a dot segment, whatever a scheme returns.
func escapeSubject(v string) string {
	if v == "." || v == ".." {
		return strings.Repeat("%2E", len(v))
	}
	return url.PathEscape(v)
}

// Cache holds one Matcher per service, compiled on first use and rebuilt
// when the service value changes (the registers are immutable snapshots, so
// a changed service is a new pointer). It holds one entry per service id.
type Cache struct {
	m sync.Map // service id → *cacheEntry
}

type cacheEntry struct {
	from *crossroads.Service
	m    *Matcher
	err  error
}

// Matcher returns the compiled matcher of svc.
func (c *Cache) Matcher(svc *crossroads.Service) (*Matcher, error) {
	if v, ok := c.m.Load(svc.ID); ok {
		if e := v.(*cacheEntry); e.from == svc {
			return e.m, e.err
		}
	}
	m, err := Compile(svc)
	c.m.Store(svc.ID, &cacheEntry{from: svc, m: m, err: err})
	return m, err
}
