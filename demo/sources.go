package demo

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/problem"
	"github.com/crossroads-hub/crossroads/provider"
)

// Source is a demo authentic source: it answers only the hub (the
// provider middleware checks the hub's signature and refuses replays on
// every request) and serves its synthetic people or companies.
type Source struct {
	Name      string
	verifier  *provider.Verifier
	mu        sync.RWMutex // guards people (addresses change)
	people    map[string]*Person
	companies map[string]*Company
	log       *slog.Logger
	mux       *http.ServeMux
	handler   http.Handler
}

// maxAddressBody bounds a PUT address body.
const maxAddressBody = 4 << 10

// NewPopulationRegister serves GET /persons/{insz}: identity and address,
// and PUT /persons/{insz}/address: a new main residence.
func NewPopulationRegister(roots *x509.CertPool, people []Person, log *slog.Logger) *Source {
	s := newSource("population-register", roots, people, log)
	s.mux.HandleFunc("GET /persons/{insz}", s.person)
	s.mux.HandleFunc("PUT /persons/{insz}/address", s.correctAddress)
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

// NewEnterpriseRegister serves GET /enterprises/{cbe}: the identification
// of a company (name, legal form, status, address, establishment units).
func NewEnterpriseRegister(roots *x509.CertPool, companies []Company, log *slog.Logger) *Source {
	s := newSource(EnterpriseRegister, roots, nil, log)
	s.companies = make(map[string]*Company, len(companies))
	for i := range companies {
		c := companies[i]
		s.companies[c.Number] = &c
	}
	s.mux.HandleFunc("GET /enterprises/{cbe}", s.enterprise)
	return s
}

func newSource(name string, roots *x509.CertPool, people []Person, log *slog.Logger) *Source {
	if log == nil {
		log = slog.Default()
	}
	s := &Source{Name: name, people: make(map[string]*Person, len(people)), log: log, mux: http.NewServeMux()}
	for i := range people {
		p := people[i] // the source's own copy: PUT changes it, not the caller's slice
		s.people[p.INSZ] = &p
	}
	s.verifier = provider.New(provider.Config{Roots: roots, MaxSkew: time.Minute, Logger: log.With("source", name)})
	s.handler = s.verifier.Wrap(s.mux)
	return s
}

// ServeHTTP verifies the hub's signature before anything else.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Person returns the source's current record of a person.
func (s *Source) Person(insz string) (Person, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.people[insz]
	if !ok {
		return Person{}, false
	}
	return *p, true
}

// subject checks that the path names the exchange's subject and returns
// it; it has answered when it returns "".
func subject(w http.ResponseWriter, r *http.Request, param string) string {
	id := r.PathValue(param)
	if req, ok := provider.FromContext(r.Context()); ok && req.Subject != "" && req.Subject != id {
		problem.Error(w, http.StatusBadRequest, "subject-mismatch", "the path names another subject than Crossroads-Subject")
		return ""
	}
	return id
}

// lookup returns a copy of the person of the path.
func (s *Source) lookup(w http.ResponseWriter, r *http.Request) (Person, bool) {
	insz := subject(w, r, "insz")
	if insz == "" {
		return Person{}, false
	}
	p, ok := s.Person(insz)
	if !ok {
		problem.Error(w, http.StatusNotFound, "not-found", "no such person in this register")
		return Person{}, false
	}
	return p, true
}

func (s *Source) person(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"insz":        p.INSZ,
		"name":        map[string]string{"first": p.First, "last": p.Last},
		"birthDate":   p.BirthDate,
		"address":     address(p),
		"nationality": "BE",
		"civilStatus": "single",
	})
}

func address(p Person) map[string]string {
	return map[string]string{"street": p.Street, "postalCode": p.PostalCode, "city": p.City}
}

// Address is the body of PUT /persons/{insz}/address.
type Address struct {
	Street     string `json:"street"`
	PostalCode string `json:"postalCode"`
	City       string `json:"city"`
}

// correctAddress replaces a person's main residence and answers 200 with
// the person's new address ({"insz", "address"}).
func (s *Source) correctAddress(w http.ResponseWriter, r *http.Request) {
	insz := subject(w, r, "insz")
	if insz == "" {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		problem.Error(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "the address must be sent as application/json")
		return
	}
	a, err := decodeAddress(r.Body)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, "invalid-body", "the body must be one JSON object {street, postalCode, city}")
		return
	}
	if msg := a.invalid(); msg != "" {
		problem.Error(w, http.StatusUnprocessableEntity, "invalid-address", msg)
		return
	}
	s.mu.Lock()
	p, ok := s.people[insz]
	if ok {
		p.Street, p.PostalCode, p.City = a.Street, a.PostalCode, a.City
	}
	var now Person
	if ok {
		now = *p
	}
	s.mu.Unlock()
	if !ok {
		problem.Error(w, http.StatusNotFound, "not-found", "no such person in this register")
		return
	}
	if req, ok := provider.FromContext(r.Context()); ok {
		s.log.Info("address corrected", "source", s.Name, "exchange", req.ExchangeID, "requester", req.Requester)
	}
	writeJSON(w, http.StatusOK, map[string]any{"insz": now.INSZ, "address": address(now)})
}

func decodeAddress(body io.Reader) (Address, error) {
	var a Address
	dec := json.NewDecoder(io.LimitReader(body, maxAddressBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return a, errors.New("trailing data after the address")
	}
	return a, nil
}

// invalid describes what is wrong with a, or "".
func (a Address) invalid() string {
	for _, f := range []struct{ name, v string }{{"street", a.Street}, {"postalCode", a.PostalCode}, {"city", a.City}} {
		v := f.v
		if strings.TrimSpace(v) == "" || len(v) > 128 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return f.name + " must be 1 to 128 printable characters"
		}
	}
	if len(a.PostalCode) != 4 || strings.Trim(a.PostalCode, "0123456789") != "" {
		return "postalCode must be a Belgian postal code (4 digits)"
	}
	return ""
}

func (s *Source) employment(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"insz":   p.INSZ,
		"status": "employed",
		"employments": []map[string]any{
			{"employer": map[string]string{"id": p.EmployerID, "name": p.Employer}, "since": "2019-09-01", "jobTitle": p.JobTitle, "monthlySalary": p.Salary},
			{"employer": map[string]string{"id": "0999999980", "name": "Interim Plus"}, "since": "2017-01-01", "until": "2019-08-31", "jobTitle": "temp", "monthlySalary": 1800},
		},
	})
}

func (s *Source) certificate(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Attestation of employment\n"+strings.Repeat("-", 26)+"\n"+p.First+" "+p.Last+" works for "+p.Employer+".\n")
}

// enterprise serves a company by its enterprise number (any written form
// of the CBE scheme; the hub sends the canonical ten digits).
func (s *Source) enterprise(w http.ResponseWriter, r *http.Request) {
	num, err := personid.Enterprise{}.Canonical(r.PathValue("cbe"))
	if err != nil {
		problem.Error(w, http.StatusNotFound, "not-found", "no such enterprise in this register")
		return
	}
	if req, ok := provider.FromContext(r.Context()); ok && req.Subject != "" && req.Subject != num {
		problem.Error(w, http.StatusBadRequest, "subject-mismatch", "the path names another subject than Crossroads-Subject")
		return
	}
	c, ok := s.companies[num]
	if !ok {
		problem.Error(w, http.StatusNotFound, "not-found", "no such enterprise in this register")
		return
	}
	est := c.Establishments
	if est == nil {
		est = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"enterpriseNumber": c.Number,
		"name":             c.Name,
		"legalForm":        c.LegalForm,
		"status":           c.Status,
		"startDate":        c.StartDate,
		"address":          map[string]string{"street": c.Street, "postalCode": c.PostalCode, "city": c.City},
		"establishments":   est,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		problem.Error(w, http.StatusInternalServerError, "", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
