package exchange

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
)

// fuzzDir is a directory with a service about a person and one about an
// enterprise.
type fuzzDir struct{}

var fuzzServices = map[string]*crossroads.Service{
	"person-identity": {ID: "person-identity", Provider: "src", BaseURL: "https://src.example/api", ConcernsPerson: true, Operations: []crossroads.Operation{
		{ID: "read", Method: "GET", Path: "/persons/{subject}", Query: []string{"lang"}},
		{ID: "correct-address", Method: "PUT", Path: "/persons/{subject}/address", Body: "application/json"},
		{ID: "history", Method: "GET", Path: "/persons/{subject}/history/{from:date}/{page:int}"},
	}},
	"enterprise-identification": {ID: "enterprise-identification", Provider: "src", BaseURL: "https://src.example/cbe/", Subject: crossroads.SubjectEnterprise, Operations: []crossroads.Operation{
		{ID: "read", Method: "GET", Path: "/enterprises/{subject}"},
	}},
}

func (fuzzDir) Participant(string) (*crossroads.Participant, bool) { return nil, false }
func (fuzzDir) Service(id string) (*crossroads.Service, bool) {
	s, ok := fuzzServices[id]
	return s, ok
}
func (fuzzDir) Authorisations(string, string) []*crossroads.Authorisation { return nil }
func (fuzzDir) Integrations(string, string) []crossroads.Integration      { return nil }

// FuzzValidate feeds request targets and Crossroads headers to the
// pipeline's validation. It must never panic; what it accepts must be safe
// to forward: a canonical target that stays under the provider's base URL
// once joined, without dot or empty segments or control characters, that
// names the validated subject, and headers without control characters.
func FuzzValidate(f *testing.F) {
	for _, s := range [][5]string{
		{"GET", "/v1/exchange/person-identity/persons/85073003328", "social-aid", "alice", "85073003328"},
		{"GET", "/v1/exchange/person-identity/persons/85.07.30-033.28?lang=nl", "social-aid", "alice", ""},
		{"GET", "/v1/exchange/person-identity/persons/%2e%2e/admin", "social-aid", "alice", "85073003328"},
		{"GET", "/v1/exchange/person-identity//x", "a", "u", ""},
		{"HEAD", "/v1/exchange/person-identity/persons/85073003328/history/2024-02-29/01", "a", "u", ""},
		{"OPTIONS", "/v1/exchange/person-identity/persons/x", "", "", ""},
		{"GET", "/v1/exchange/enterprise-identification/enterprises/BE0123.456.749", "p", "u", "0123456749"},
		{"GET", "/v1/exchange/x/a%0d%0ab", "p", "u", "85073003328"},
		{"PUT", "/v1/exchange/person-identity/persons/85073003328/address", "p", "u", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	scheme, err := personid.Lookup("insz")
	if err != nil {
		f.Fatal(err)
	}
	p := NewPipeline(Config{Directory: fuzzDir{}, Kinds: personid.DefaultKinds(scheme)})
	f.Fuzz(func(t *testing.T, method, target, purpose, user, subject string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		hdr := http.Header{}
		hdr[HeaderPurpose] = []string{purpose}
		hdr[HeaderUser] = []string{user}
		if subject != "" {
			hdr[HeaderSubject] = []string{subject}
		}
		req := Request{Method: method, RawQuery: u.RawQuery, Header: hdr, ContentLength: 0}
		if raw := u.EscapedPath(); strings.HasPrefix(raw, Prefix) {
			rest := raw[len(Prefix):]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				req.Service, req.Path = rest[:i], rest[i:]
			} else {
				req.Service = rest
			}
		}
		s := &state{hdr: http.Header{}}
		if r := p.validate(&req, s); r != nil {
			if r.status < 400 || r.status >= 500 || r.reason == "" {
				t.Fatalf("refusal with status %d reason %q", r.status, r.reason)
			}
			return
		}
		if method == http.MethodOptions {
			if s.match.Allow == "" {
				t.Fatal("OPTIONS without Allow")
			}
			return
		}
		if s.match.Operation == nil || !validID(s.rec.Service) || !validID(s.rec.Purpose) || !validText(s.rec.User, 128) {
			t.Fatalf("accepted bad fields %+v", s.rec)
		}
		svc := fuzzServices[s.rec.Service]
		if s.rec.Subject == "" {
			t.Fatal("accepted a call about no one on a service about a subject")
		}
		if canon, err := personid.DefaultKinds(scheme).Canonical(svc.SubjectKind(), s.rec.Subject); err != nil || canon != s.rec.Subject {
			t.Fatalf("recorded subject %q is not canonical", s.rec.Subject)
		}
		if subject != "" {
			if c, _ := personid.DefaultKinds(scheme).Canonical(svc.SubjectKind(), subject); c != s.rec.Subject {
				t.Fatalf("declared subject %q accepted for %q", subject, s.rec.Subject)
			}
		}
		base, _ := url.Parse(strings.TrimSuffix(svc.BaseURL, "/"))
		joined := base.String() + s.target
		fu, err := url.Parse(joined)
		if err != nil {
			t.Fatalf("target %q does not make a URL: %v", s.target, err)
		}
		if fu.Host != base.Host || !strings.HasPrefix(fu.Path, base.Path+"/") {
			t.Fatalf("target %q escapes the base: %s", s.target, fu)
		}
		segs := strings.Split(strings.TrimPrefix(fu.Path, base.Path+"/"), "/")
		for _, seg := range segs {
			if seg == "." || seg == ".." || seg == "" {
				t.Fatalf("target %q has a dot or empty segment once decoded", s.target)
			}
		}
		if !strings.Contains(fu.Path, "/"+s.rec.Subject) {
			t.Fatalf("target %q does not name the subject %q", s.target, s.rec.Subject)
		}
		if strings.ContainsAny(fu.Path, "\x00\r\n\\") || strings.ContainsAny(fu.RawQuery, "\r\n\x00") {
			t.Fatalf("accepted control characters: %q", joined)
		}
	})
}
