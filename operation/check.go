package operation

import (
	"fmt"
	"mime"
	"strings"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/minimise"
)

// CheckService returns every problem with svc's operations at once: ids
// ([a-z0-9][a-z0-9._-]{0,62}) valid and unique; methods GET, POST, PUT,
// PATCH or DELETE; templates that parse; no two operations matching the
// same method and path; {subject} in every path of a service about a
// subject, and in none of a service about no one; query names
// ([A-Za-z][A-Za-z0-9._-]{0,63}) valid and unique; a body media type that
// parses, only on POST, PUT and PATCH; fields that are JSON pointers, and
// within the service's Fields when it declares any. A service without
// operations is not an error here (it cannot be called).
func CheckService(svc crossroads.Service) []error {
	var errs []error
	bad := func(op *crossroads.Operation, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: service %s: operation %q: %s", crossroads.ErrInvalid, svc.ID, trunc(op.ID), fmt.Sprintf(format, args...)))
	}
	kind := svc.SubjectKind()
	var svcFields [][]string
	whole := false
	for _, f := range svc.Fields {
		if f == crossroads.WholePayload {
			whole = true
			continue
		}
		if segs, err := minimise.Split(f); err == nil {
			svcFields = append(svcFields, segs)
		}
	}
	templates := make([]*Template, len(svc.Operations))
	ids := map[string]bool{}
	for i := range svc.Operations {
		op := &svc.Operations[i]
		if !validOpID(op.ID) {
			bad(op, "id must match [a-z0-9][a-z0-9._-]{0,62}")
		} else if ids[op.ID] {
			bad(op, "id repeated")
		}
		ids[op.ID] = true
		if op.Kind != crossroads.OperationCall {
			checkMutation(op, bad)
		} else if methodBit(op.Method) == 0 {
			bad(op, "method %q: want GET, POST, PUT, PATCH or DELETE", trunc(op.Method))
		}
		t, err := Parse(op.Path)
		if op.Kind != crossroads.OperationCall {
			// a mutation has no path (checkMutation)
		} else if err != nil {
			bad(op, "path: %v", err)
		} else {
			templates[i] = t
			switch {
			case kind != crossroads.SubjectNone && !t.HasSubject():
				bad(op, "the service is about a %s: the path must have {subject}", kind)
			case kind == crossroads.SubjectNone && t.HasSubject():
				bad(op, "the service is about no one: the path must not have {subject}")
			}
		}
		names := map[string]bool{}
		for _, q := range op.Query {
			switch {
			case !validQueryName(q):
				bad(op, "query parameter %q must match [A-Za-z][A-Za-z0-9._-]{0,63}", trunc(q))
			case names[q]:
				bad(op, "query parameter %q repeated", q)
			}
			names[q] = true
		}
		if op.Body != "" {
			if _, _, err := mime.ParseMediaType(op.Body); err != nil || !strings.Contains(op.Body, "/") {
				bad(op, "body %q is not a media type", trunc(op.Body))
			}
			if op.Method != "POST" && op.Method != "PUT" && op.Method != "PATCH" {
				bad(op, "a body is accepted only by POST, PUT and PATCH")
			}
		}
		if _, err := minimise.Compile(op.Fields); err != nil {
			bad(op, "fields: %v", err)
		} else if len(svc.Fields) > 0 && !whole {
			for _, f := range op.Fields {
				if !within(f, svcFields) {
					bad(op, "field %q is not among the service's fields", trunc(f))
				}
			}
		}
	}
	for i := range templates {
		for j := i + 1; j < len(templates); j++ {
			a, b := &svc.Operations[i], &svc.Operations[j]
			if templates[i] == nil || templates[j] == nil || a.Method != b.Method {
				continue
			}
			if overlaps(templates[i], templates[j]) {
				bad(b, "matches the same %s paths as operation %q", b.Method, trunc(a.ID))
			}
		}
	}
	return errs
}

// within reports whether pointer f is one of fields or below one.
func within(f string, fields [][]string) bool {
	segs, err := minimise.Split(f)
	if err != nil {
		return false
	}
	if f == crossroads.WholePayload {
		return false // the whole payload is within only a whole grant
	}
next:
	for _, s := range fields {
		if len(s) > len(segs) {
			continue
		}
		for i := range s {
			if s[i] != segs[i] {
				continue next
			}
		}
		return true
	}
	return false
}

func validOpID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

func validQueryName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}
