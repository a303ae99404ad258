package demo

// Minimal handlers for the operations the exchange helper added to the demo
// network (PUT /persons/{insz}/address, GET /enterprises/{cbe}), so that
// the scenario runs before the provider helper's sources land. At that
// merge this file goes: demo/sources.go then serves both.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/crossroads-hub/crossroads/problem"
)

type bodyKey struct{}

// WithAddressCorrection adds PUT /persons/{insz}/address to a population
// register: the body {street, postalCode, city} corrects the person's
// address, which the answer echoes. Corrections are kept beside the people
// (the GET answers the registered address).
func WithAddressCorrection(s *Source) http.Handler {
	var mu sync.Mutex
	corrected := map[string]map[string]string{}
	s.mux.HandleFunc("PUT /persons/{insz}/address", func(w http.ResponseWriter, r *http.Request) {
		p := s.lookup(w, r)
		if p == nil {
			return
		}
		body, _ := r.Context().Value(bodyKey{}).([]byte)
		var a struct{ Street, PostalCode, City string }
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil || !text(a.Street) || !text(a.PostalCode) || !text(a.City) {
			problem.Error(w, http.StatusUnprocessableEntity, "invalid-address", "want {street, postalCode, city}, each 1 to 128 characters")
			return
		}
		addr := map[string]string{"street": a.Street, "postalCode": a.PostalCode, "city": a.City}
		mu.Lock()
		corrected[p.INSZ] = addr
		mu.Unlock()
		writeJSON(w, map[string]any{"insz": p.INSZ, "address": addr, "correctedBy": r.Header.Get("Crossroads-Requester")})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			problem.Error(w, http.StatusBadRequest, "invalid-body", "")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b))
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.ServeHTTP(w, r)
	})
}

func text(s string) bool { return s != "" && len(s) <= 128 }

// NewEnterpriseRegister serves GET /enterprises/{cbe}: the basic
// identification data of a company (seed 001: the Company Register).
func NewEnterpriseRegister(roots *x509.CertPool, companies []Company, log *slog.Logger) *Source {
	s := newSource(EnterpriseRegister, roots, nil, log)
	byNumber := make(map[string]*Company, len(companies))
	for i := range companies {
		byNumber[companies[i].Number] = &companies[i]
	}
	s.mux.HandleFunc("GET /enterprises/{cbe}", func(w http.ResponseWriter, r *http.Request) {
		cbe := r.PathValue("cbe")
		if subj := r.Header.Get("Crossroads-Subject"); subj != "" && subj != cbe {
			problem.Error(w, http.StatusBadRequest, "subject-mismatch", "the path names another enterprise than Crossroads-Subject")
			return
		}
		c, ok := byNumber[cbe]
		if !ok {
			problem.Error(w, http.StatusNotFound, "not-found", "no such enterprise in this register")
			return
		}
		writeJSON(w, map[string]any{
			"enterpriseNumber": c.Number,
			"name":             c.Name,
			"legalForm":        c.LegalForm,
			"status":           c.Status,
			"startDate":        c.StartDate,
			"address":          map[string]string{"street": c.Street, "postalCode": c.PostalCode, "city": c.City},
			"establishments":   c.Establishments,
		})
	})
	return s
}
