package demo

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// Source is a demo authentic source: it answers only the hub, checks the
// hub's signature on every request, and serves its synthetic people.
type Source struct {
	Name   string
	roots  *x509.CertPool
	people map[string]*Person
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	seen   replayCache
}

// replayCache remembers the exchange ids a source has served for twice the
// signature's freshness window, so that a captured hub request cannot be
// replayed within it. It holds at most maxSeen ids and refuses (fails
// closed) when full of fresh ones.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // exchange id → forget after
}

const (
	replayWindow = 2 * time.Minute // VerifyHubRequest's skew (1 min) either way
	maxSeen      = 200_000
)

// first reports whether id is new, and remembers it.
func (c *replayCache) first(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[string]time.Time)
	}
	if until, ok := c.seen[id]; ok && now.Before(until) {
		return false
	}
	if len(c.seen) >= maxSeen {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= maxSeen {
			return false
		}
	}
	c.seen[id] = now.Add(replayWindow)
	return true
}

// NewPopulationRegister serves GET /persons/{insz}: identity and address.
func NewPopulationRegister(roots *x509.CertPool, people []Person, log *slog.Logger) *Source {
	s := newSource("population-register", roots, people, log)
	s.mux.HandleFunc("GET /persons/{insz}", s.person)
	return s
}

// NewEmploymentRegister serves GET /employments/{insz}: jobs and status,
// and GET /certificates/{insz}: an attestation as plain text (non-JSON).
func NewEmploymentRegister(roots *x509.CertPool, people []Person, log *slog.Logger) *Source {
	s := newSource("employment-register", roots, people, log)
	s.mux.HandleFunc("GET /employments/{insz}", s.employment)
	s.mux.HandleFunc("GET /certificates/{insz}", s.certificate)
	return s
}

func newSource(name string, roots *x509.CertPool, people []Person, log *slog.Logger) *Source {
	s := &Source{Name: name, roots: roots, people: make(map[string]*Person, len(people)), log: log, now: time.Now, mux: http.NewServeMux()}
	for i := range people {
		s.people[people[i].INSZ] = &people[i]
	}
	return s
}

// ServeHTTP verifies the hub's signature before anything else.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		problem.Error(w, http.StatusBadRequest, "invalid-body", "")
		return
	}
	now := s.now()
	claims, err := pki.VerifyHubRequest(r, body, s.roots, now, time.Minute)
	if err != nil {
		s.log.Warn("request without a valid hub signature refused", "source", s.Name, "err", err)
		problem.Error(w, http.StatusUnauthorized, "invalid-hub-signature", "requests must come from the hub, signed")
		return
	}
	if !s.seen.first(claims.ExchangeID, now) {
		s.log.Warn("replayed hub request refused", "source", s.Name, "exchange", claims.ExchangeID)
		problem.Error(w, http.StatusUnauthorized, "replayed-request", "this exchange has already been served")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Source) lookup(w http.ResponseWriter, r *http.Request) *Person {
	insz := r.PathValue("insz")
	if subj := r.Header.Get("Crossroads-Subject"); subj != "" && subj != insz {
		problem.Error(w, http.StatusBadRequest, "subject-mismatch", "the path names another person than Crossroads-Subject")
		return nil
	}
	p, ok := s.people[insz]
	if !ok {
		problem.Error(w, http.StatusNotFound, "not-found", "no such person in this register")
		return nil
	}
	return p
}

func (s *Source) person(w http.ResponseWriter, r *http.Request) {
	p := s.lookup(w, r)
	if p == nil {
		return
	}
	writeJSON(w, map[string]any{
		"insz":        p.INSZ,
		"name":        map[string]string{"first": p.First, "last": p.Last},
		"birthDate":   p.BirthDate,
		"address":     map[string]string{"street": p.Street, "postalCode": p.PostalCode, "city": p.City},
		"nationality": "BE",
		"civilStatus": "single",
	})
}

func (s *Source) employment(w http.ResponseWriter, r *http.Request) {
	p := s.lookup(w, r)
	if p == nil {
		return
	}
	writeJSON(w, map[string]any{
		"insz":   p.INSZ,
		"status": "employed",
		"employments": []map[string]any{
			{"employer": map[string]string{"id": p.EmployerID, "name": p.Employer}, "since": "2019-09-01", "jobTitle": p.JobTitle, "monthlySalary": p.Salary},
			{"employer": map[string]string{"id": "0999999980", "name": "Interim Plus"}, "since": "2017-01-01", "until": "2019-08-31", "jobTitle": "temp", "monthlySalary": 1800},
		},
	})
}

func (s *Source) certificate(w http.ResponseWriter, r *http.Request) {
	p := s.lookup(w, r)
	if p == nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Attestation of employment\n"+strings.Repeat("-", 26)+"\n"+p.First+" "+p.Last+" works for "+p.Employer+".\n")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
