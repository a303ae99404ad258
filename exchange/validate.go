package exchange

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/pki"
)

// Limits of what validation accepts before matching.
const (
	maxPath  = 2048
	maxQuery = 4096
)

// validate checks headers, matches the call against the service's
// operations, binds the subject and reads the body; it fills s or returns
// the refusal.
func (p *Pipeline) validate(req *Request, s *state) *refusal {
	if !validID(req.Service) {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidPath, "the service id is missing or malformed: exchanges are served under "+Prefix+"{serviceId}/…")
	}
	s.rec.Service = req.Service
	// Until the call is matched, the record names what was sent (capped);
	// once matched, the canonical target.
	s.rec.Target = req.Path
	if req.RawQuery != "" {
		s.rec.Target += "?" + req.RawQuery
	}
	if len(req.Path) > maxPath {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidPath, "the path is too long")
	}
	if len(req.RawQuery) > maxQuery || strings.ContainsAny(req.RawQuery, "\r\n\x00") {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidParameter, "the query is too long or has control characters")
	}
	if req.Method != http.MethodOptions {
		if r := p.headers(req.Header, s); r != nil {
			return r
		}
	}

	svc, known := p.cfg.Directory.Service(req.Service)
	if !known {
		return refuse(http.StatusNotFound, crossroads.ReasonUnknownService, "")
	}
	s.svc, s.rec.Provider, s.kind = svc, svc.Provider, svc.SubjectKind()
	m, err := p.matchers.Matcher(svc)
	if err != nil {
		p.cfg.Logger.Error("service has invalid operations: it cannot be called", "service", svc.ID, "err", err)
		return refuse(http.StatusNotFound, crossroads.ReasonUnknownOperation, "the service's operations are not usable")
	}
	var query url.Values
	if req.RawQuery != "" {
		if query, err = url.ParseQuery(req.RawQuery); err != nil {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidParameter, "the query does not parse")
		}
	}
	match, reason := m.Match(req.Method, req.Path, query)
	switch reason {
	case "":
	case crossroads.ReasonUnknownOperation:
		return refuse(http.StatusNotFound, reason, "no operation of this service has this path")
	case crossroads.ReasonMethodNotAllowed:
		s.hdr.Set("Allow", match.Allow)
		return refuse(http.StatusMethodNotAllowed, reason, "this path accepts only "+match.Allow)
	case crossroads.ReasonInvalidParameter:
		if match.Refused != "" {
			return refuse(http.StatusBadRequest, reason, "parameter "+match.Refused+" is not valid")
		}
		return refuse(http.StatusBadRequest, reason, "a parameter is not valid")
	case crossroads.ReasonUnknownParameter:
		return refuse(http.StatusBadRequest, reason, "this operation accepts no query parameters but its declared ones")
	default:
		return refuse(http.StatusBadRequest, reason, "")
	}
	s.match = match
	if req.Method == http.MethodOptions {
		return nil
	}
	op := match.Operation
	s.rec.Operation = op.ID

	// The subject is bound: the one in the path is the subject of the
	// exchange; Crossroads-Subject, if sent, must name the same.
	declared := req.Header.Get(HeaderSubject)
	if s.kind != crossroads.SubjectNone {
		scheme := p.cfg.Kinds[s.kind]
		if scheme == nil {
			p.cfg.Logger.Error("service about a subject kind the network has no scheme for", "service", svc.ID, "kind", s.kind)
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidSubject, "the network has no identifier scheme for this service's subjects")
		}
		canon, err := scheme.Canonical(match.Subject)
		if err != nil {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidSubject, "the subject in the path is not a valid "+s.kind+" identifier ("+scheme.Name()+")")
		}
		s.match.Subject, s.rec.Subject, s.rec.SubjectKind = canon, canon, recordKind(s.kind)
		if declared != "" {
			d, err := scheme.Canonical(declared)
			if err != nil {
				return refuse(http.StatusBadRequest, crossroads.ReasonInvalidSubject, "Crossroads-Subject is not a valid "+s.kind+" identifier ("+scheme.Name()+")")
			}
			if d != canon {
				return refuse(http.StatusBadRequest, crossroads.ReasonSubjectMismatch, "Crossroads-Subject names another subject than the path")
			}
		}
	} else if declared != "" {
		return refuse(http.StatusBadRequest, crossroads.ReasonSubjectMismatch, "this service is about no one: Crossroads-Subject must not be sent")
	}
	s.target = s.match.Target()
	s.rec.Target = s.target
	return p.readBody(req, s)
}

// recordKind is how records and seals name a subject kind: empty for a
// person (the default), the kind otherwise.
func recordKind(kind string) string {
	if kind == crossroads.SubjectPerson {
		return ""
	}
	return kind
}

// headers checks the protocol headers.
func (p *Pipeline) headers(h http.Header, s *state) *refusal {
	for _, k := range []string{HeaderPurpose, HeaderUser, HeaderSubject, HeaderCorrelationID} {
		if len(h[k]) > 1 {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads headers must not repeat")
		}
	}
	purpose := h.Get(HeaderPurpose)
	if purpose == "" {
		return refuse(http.StatusBadRequest, crossroads.ReasonMissingPurpose, "Crossroads-Purpose is required")
	}
	if !validID(purpose) {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-Purpose must be a purpose code ([a-z0-9._-], at most 63 characters)")
	}
	s.rec.Purpose = purpose
	user := h.Get(HeaderUser)
	if user == "" {
		return refuse(http.StatusBadRequest, crossroads.ReasonMissingUser, "Crossroads-User is required: the natural person on whose behalf the call is made")
	}
	if !validText(user, 128) {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-User must be 1 to 128 printable characters")
	}
	s.rec.User = user
	if c := h.Get(HeaderCorrelationID); c != "" {
		if !validText(c, 128) {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-Correlation-Id must be 1 to 128 printable characters")
		}
		s.rec.CorrelationID = c
	}
	if subj := h.Get(HeaderSubject); subj != "" && !validText(subj, 128) {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidSubject, "Crossroads-Subject must be 1 to 128 printable characters")
	}
	return nil
}

// readBody accepts a body only for an operation that declares one: of the
// declared media type, size-limited and, for JSON, well-formed and
// depth-limited.
func (p *Pipeline) readBody(req *Request, s *state) *refusal {
	declared := s.match.Body
	present := req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	if declared == "" {
		if !present {
			return nil
		}
		var one [1]byte
		n, _ := io.ReadFull(req.Body, one[:])
		if n > 0 {
			return refuse(http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "this operation takes no request body")
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != declared {
		return refuse(http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "this operation takes a request body of type "+declared)
	}
	max := p.cfg.MaxRequestBody
	if req.ContentLength > max {
		return refuse(http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the request body exceeds "+strconv.FormatInt(max, 10)+" bytes")
	}
	var body []byte
	if present {
		body, err = io.ReadAll(io.LimitReader(req.Body, max+1))
		if err != nil {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidBody, "the request body could not be read")
		}
	}
	if int64(len(body)) > max {
		return refuse(http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the request body exceeds "+strconv.FormatInt(max, 10)+" bytes")
	}
	if len(body) == 0 {
		return refuse(http.StatusBadRequest, crossroads.ReasonInvalidBody, "this operation takes a request body of type "+declared)
	}
	if isJSONMedia(mt) {
		if err := minimise.Validate(bytes.NewReader(body), p.cfg.MaxBodyDepth); err != nil {
			return refuse(http.StatusBadRequest, crossroads.ReasonInvalidBody, "the request body is not one well-formed JSON value (no repeated member names) nested at most "+strconv.Itoa(p.cfg.MaxBodyDepth)+" deep")
		}
	}
	s.body = body
	s.rec.RequestDigest = pki.Digest(body)
	return nil
}

// isJSONMedia reports whether a (parsed, lower-case) media type is JSON.
func isJSONMedia(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func validID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-'))) {
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
