package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// Register kinds readable with ReadRegister (and 'crossroads get').
var RegisterKinds = []string{"participants", "services", "authorisations", "integrations", "certificates"}

// RegisterQuery selects entries of one register. ID selects one entry
// (participants, services, authorisations by id; certificates by serial,
// in any spelling ParseSerial reads; integrations by canonical subject
// id, listing that subject's integrations). Participant filters
// integrations and certificates.
type RegisterQuery struct {
	Kind        string
	ID          string
	Participant string
}

// ReadRegister reads what q selects from the stores: a slice for a list,
// the entry for an ID (ErrNotFound when there is none). Certificates come
// without their PEM in lists. Bad input wraps crossroads.ErrInvalid.
func ReadRegister(ctx context.Context, regs crossroads.RegisterStore, certs crossroads.CertificateStore, q RegisterQuery) (any, error) {
	switch q.Kind {
	case "authorizations":
		q.Kind = "authorisations"
	case "participants", "services", "authorisations", "integrations", "certificates":
	default:
		return nil, fmt.Errorf("%w: unknown register %q (want one of %v)", crossroads.ErrInvalid, q.Kind, RegisterKinds)
	}
	switch q.Kind {
	case "integrations":
		list, err := regs.Integrations(ctx, q.Participant, q.ID)
		if err != nil {
			return nil, err
		}
		return nonNil(list), nil
	case "certificates":
		if q.ID != "" {
			s, err := pki.ParseSerial(q.ID)
			if err != nil {
				return nil, err
			}
			q.ID = s
		}
		list, err := certs.Certificates(ctx)
		if err != nil {
			return nil, err
		}
		out := []crossroads.Certificate{}
		for _, c := range list {
			switch {
			case q.ID != "" && c.Serial == q.ID:
				return c, nil
			case q.ID == "" && (q.Participant == "" || c.Participant == q.Participant):
				c.PEM = ""
				out = append(out, c)
			}
		}
		if q.ID != "" {
			return nil, fmt.Errorf("no certificate %s: %w", q.ID, crossroads.ErrNotFound)
		}
		return out, nil
	}
	n, err := regs.Registers(ctx)
	if err != nil {
		return nil, err
	}
	switch q.Kind {
	case "participants":
		return pick(n.Participants, q.ID, func(p crossroads.Participant) string { return p.ID })
	case "services":
		return pick(n.Services, q.ID, func(s crossroads.Service) string { return s.ID })
	default:
		return pick(n.Authorisations, q.ID, func(a crossroads.Authorisation) string { return a.ID })
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func pick[T any](list []T, id string, key func(T) string) (any, error) {
	if id == "" {
		return nonNil(list), nil
	}
	for _, v := range list {
		if key(v) == id {
			return v, nil
		}
	}
	return nil, fmt.Errorf("no entry %q: %w", id, crossroads.ErrNotFound)
}

// readRegister serves GET /v1/admin/registers/{kind}[/{id}] to operators
// and auditors (?participant= filters integrations and certificates).
func (a *API) readRegister(w http.ResponseWriter, r *http.Request) {
	q := RegisterQuery{Kind: r.PathValue("kind"), ID: r.PathValue("id"), Participant: r.URL.Query().Get("participant")}
	if q.Kind == "integrations" && q.ID == "" && q.Participant == "" {
		// The person directory may hold millions of entries: not in one answer.
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "integrations: name a subject (/v1/admin/registers/integrations/{subject}) or ?participant=")
		return
	}
	if q.Kind == "integrations" && q.ID != "" {
		c, err := a.cfg.Scheme.Canonical(q.ID)
		if err != nil {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "not a valid person identifier")
			return
		}
		q.ID = c
	}
	v, err := ReadRegister(r.Context(), a.cfg.Directory.Store(), a.cfg.Certificates, q)
	switch {
	case errors.Is(err, crossroads.ErrInvalid):
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, err.Error())
	case errors.Is(err, crossroads.ErrNotFound):
		problem.Error(w, http.StatusNotFound, "not-found", "no such entry")
	case err != nil:
		a.cfg.Logger.Error("read register", "kind", q.Kind, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the registers could not be read")
	default:
		writeJSON(w, http.StatusOK, v)
	}
}
