package exchange

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
)

// fuzzDir is a directory with one service that concerns a person.
type fuzzDir struct{}

func (fuzzDir) Participant(string) (*crossroads.Participant, bool) { return nil, false }
func (fuzzDir) Service(id string) (*crossroads.Service, bool) {
	if id == "person-identity" {
		return &crossroads.Service{ID: id, Provider: "src", BaseURL: "https://src.example/api", ConcernsPerson: true}, true
	}
	return nil, false
}
func (fuzzDir) Authorisations(string, string) []*crossroads.Authorisation { return nil }
func (fuzzDir) Integrations(string, string) []crossroads.Integration      { return nil }

// FuzzValidate feeds request targets and Crossroads headers to the
// pipeline's validation. It must never panic; what it accepts must be safe
// to forward: a path that stays under the provider's base URL once joined,
// without dot or empty segments or control characters, and headers without
// control characters.
func FuzzValidate(f *testing.F) {
	for _, s := range [][4]string{
		{"/v1/exchange/person-identity/persons/85073003328", "social-aid", "alice", "85073003328"},
		{"/v1/exchange/person-identity/persons/%2e%2e/admin", "social-aid", "alice", "85073003328"},
		{"/v1/exchange/person-identity//x", "a", "u", ""},
		{"/v1/exchange/person-identity/a%2Fb?x=1", "a", "u\x01", "1"},
		{"/v1/exchange/x/a%0d%0ab", "p", "u", "85073003328"},
		{"/v1/exchange/person-identity/a/./b", "p", "u", "85073003328"},
		{"/v1/exchange/person-identity/%zz", "p", "u", "85073003328"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	scheme, err := personid.Lookup("insz")
	if err != nil {
		f.Fatal(err)
	}
	h := New(Config{Directory: fuzzDir{}, Scheme: scheme})
	base, _ := url.Parse("https://src.example/api")
	f.Fuzz(func(t *testing.T, target, purpose, user, subject string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Body: http.NoBody}
		r.Header[HeaderPurpose] = []string{purpose}
		r.Header[HeaderUser] = []string{user}
		if subject != "" {
			r.Header[HeaderSubject] = []string{subject}
		}
		s := &state{}
		status, reason, _ := h.validate(r, s)
		if reason != "" {
			if status < 400 || status >= 500 {
				t.Fatalf("refusal with status %d", status)
			}
			return
		}
		if !validID(s.rec.Service) || !validID(s.rec.Purpose) || !validText(s.rec.User, 128) {
			t.Fatalf("accepted bad fields %+v", s.rec)
		}
		joined := strings.TrimSuffix(base.String(), "/") + "/" + s.path
		if s.query != "" {
			joined += "?" + s.query
		}
		fu, err := url.Parse(joined)
		if err != nil {
			t.Fatalf("accepted path %q does not make a URL: %v", s.path, err)
		}
		if fu.Host != base.Host || !strings.HasPrefix(fu.Path, base.Path+"/") && fu.Path != base.Path+"/" {
			t.Fatalf("accepted path %q escapes the base: %s", s.path, fu)
		}
		for _, seg := range strings.Split(strings.TrimPrefix(fu.Path, base.Path+"/"), "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted path %q has a dot segment once decoded", s.path)
			}
		}
		if strings.ContainsAny(fu.Path, "\x00\r\n\\") || strings.ContainsAny(s.query, "\r\n\x00") {
			t.Fatalf("accepted control characters: %q", joined)
		}
	})
}
