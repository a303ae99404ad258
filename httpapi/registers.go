package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/problem"
)

const maxAdminBody = 8 << 20

// publicAuthorisation is an entry of the public register of authorisations
// (seed 001: the authorisations are public). It carries no personal data.
type publicAuthorisation struct {
	ID         string                `json:"id"`
	Reference  string                `json:"reference"`
	Grantee    string                `json:"grantee"`
	Services   []string              `json:"services"`
	Purposes   []string              `json:"purposes"`
	Fields     map[string][]string   `json:"fields"`
	Capacities []crossroads.Capacity `json:"capacities,omitempty"`
	ValidFrom  time.Time             `json:"validFrom"`
	ValidTo    *time.Time            `json:"validTo,omitempty"`
	Status     string                `json:"status"`
	ActiveNow  bool                  `json:"activeNow"`
}

func (a *API) listAuthorisations(w http.ResponseWriter, r *http.Request) {
	now := a.cfg.Now()
	n := a.cfg.Directory.Snapshot()
	q := r.URL.Query()
	out := make([]publicAuthorisation, 0, len(n.Authorisations))
	for _, au := range n.Authorisations {
		if g := q.Get("grantee"); g != "" && g != au.Grantee {
			continue
		}
		if s := q.Get("service"); s != "" && !contains(au.Services, s) {
			continue
		}
		pa := publicAuthorisation{
			ID: au.ID, Reference: au.Reference, Grantee: au.Grantee, Services: au.Services, Purposes: au.Purposes,
			Fields: au.Fields, Capacities: au.Capacities, ValidFrom: au.ValidFrom, Status: au.Status, ActiveNow: au.ActiveAt(now),
		}
		if !au.ValidTo.IsZero() {
			t := au.ValidTo
			pa.ValidTo = &t
		}
		out = append(out, pa)
	}
	writeJSON(w, http.StatusOK, map[string]any{"authorizations": out})
}

func (a *API) listServices(w http.ResponseWriter, r *http.Request) {
	// The public catalogue says what exists and who provides it; the
	// providers' internal endpoints are for operators (/v1/admin/network).
	type publicService struct {
		ID             string   `json:"id"`
		Provider       string   `json:"provider"`
		Description    string   `json:"description,omitempty"`
		Classification int      `json:"classification"`
		Fields         []string `json:"fields"`
		ConcernsPerson bool     `json:"concernsPerson"`
	}
	n := a.cfg.Directory.Snapshot()
	out := make([]publicService, 0, len(n.Services))
	for _, s := range n.Services {
		out = append(out, publicService{s.ID, s.Provider, s.Description, s.Classification, s.Fields, s.ConcernsPerson})
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// listIntegrations lists the caller's own integrations (ManageAccess-like).
func (a *API) listIntegrations(w http.ResponseWriter, r *http.Request) {
	p, _ := crossroads.CallerFrom(r.Context())
	person := ""
	if v := r.URL.Query().Get("person"); v != "" {
		c, err := a.cfg.Scheme.Canonical(v)
		if err != nil {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "person is not a valid person identifier")
			return
		}
		person = c
	}
	list, err := a.cfg.Directory.Store().Integrations(r.Context(), p.ID, person)
	if err != nil {
		a.cfg.Logger.Error("list integrations", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the directory could not be read")
		return
	}
	if list == nil {
		list = []crossroads.Integration{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": list, "capacities": a.cfg.Directory.Capacities(p.ID)})
}

// integrationBody is the body of PUT and DELETE /v1/integrations: the
// participant is always the caller.
type integrationBody struct {
	Person      string    `json:"person"`
	Participant string    `json:"participant,omitempty"` // optional; must be the caller
	Sector      string    `json:"sector"`
	Capacity    string    `json:"capacity"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to,omitzero"`
}

func (a *API) readIntegration(w http.ResponseWriter, r *http.Request) (crossroads.Integration, bool) {
	p, _ := crossroads.CallerFrom(r.Context())
	var b integrationBody
	if !decodeJSON(w, r, &b) {
		return crossroads.Integration{}, false
	}
	if b.Participant != "" && b.Participant != p.ID {
		problem.Error(w, http.StatusForbidden, "forbidden", "participants manage only their own integrations")
		return crossroads.Integration{}, false
	}
	if b.From.IsZero() && r.Method == http.MethodPut {
		b.From = a.cfg.Now().UTC().Truncate(time.Second)
	}
	return crossroads.Integration{Person: b.Person, Participant: p.ID, Sector: b.Sector, Capacity: b.Capacity, From: b.From, To: b.To}, true
}

func (a *API) putIntegration(w http.ResponseWriter, r *http.Request) {
	in, ok := a.readIntegration(w, r)
	if !ok {
		return
	}
	// The same validation as the network file: person id valid, capacity
	// named by one of the participant's authorisations, period sound.
	plan, err := apply.Apply(r.Context(), a.cfg.Directory.Store(), &crossroads.Network{Integrations: []crossroads.Integration{in}}, a.cfg.Scheme, false)
	if err != nil {
		a.applyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"integration": in, "changed": plan.HasChanges()})
}

func (a *API) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	in, ok := a.readIntegration(w, r)
	if !ok {
		return
	}
	canon, err := a.cfg.Scheme.Canonical(in.Person)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "person is not a valid person identifier")
		return
	}
	in.Person = canon
	if err := a.cfg.Directory.Store().DeleteIntegration(r.Context(), in); err != nil {
		if errors.Is(err, crossroads.ErrNotFound) {
			problem.Error(w, http.StatusNotFound, "not-found", "no such integration of yours")
			return
		}
		a.cfg.Logger.Error("delete integration", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the directory could not be written")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getNetwork returns the registers as this node has them (refreshed from
// the store every 2 s and on its own writes), with their ETag: sent back
// in If-Match, it makes an apply conditional on nothing having changed.
func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := a.cfg.Directory.Store().Registers(r.Context())
	if err != nil {
		a.cfg.Logger.Error("read registers", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the registers could not be read")
		return
	}
	w.Header().Set("ETag", registersTag(n))
	writeJSON(w, http.StatusOK, n)
}

// registersTag is the entity tag of the registers (participants,
// services, authorisations): a digest of their JSON, in store order.
func registersTag(n *crossroads.Network) string {
	b, _ := json.Marshal(crossroads.Network{Participants: n.Participants, Services: n.Services, Authorisations: n.Authorisations})
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
}

// ReasonRegistersChanged is the reason of 412: the If-Match of an apply
// names registers that have changed since.
const ReasonRegistersChanged crossroads.Reason = "registers-changed"

// precheck refuses an apply whose If-Match is stale (412) or that would
// leave the network without an active operator (422: the admin API could
// then only be recovered with host access).
func (a *API) precheck(w http.ResponseWriter, r *http.Request, desired *crossroads.Network) bool {
	cur, err := a.cfg.Directory.Store().Registers(r.Context())
	if err != nil {
		a.applyError(w, err)
		return false
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != registersTag(cur) {
		problem.Error(w, http.StatusPreconditionFailed, ReasonRegistersChanged, "the registers have changed since the ETag you sent; read them again")
		return false
	}
	after := map[string]crossroads.Participant{}
	for _, p := range cur.Participants {
		after[p.ID] = p
	}
	for _, p := range desired.Participants {
		after[p.ID] = p
	}
	for _, p := range after {
		if p.Kind == crossroads.KindOperator && p.Status == crossroads.StatusActive {
			return true
		}
	}
	a.applyError(w, apply.Problems{{Path: "participants", Message: "the change would leave no active operator"}})
	return false
}

// applyDetail is the detail of a register-apply event.
type applyDetail struct {
	Changed    bool   `json:"changed"`
	DiffDigest string `json:"diffDigest"` // audit.Digest of Diff
	Diff       string `json:"diff"`       // the plan, as apply.Plan.String renders it
	FileDigest string `json:"fileDigest"` // of the network file as sent
}

// postApply applies a network file (YAML or JSON); ?dry-run=true only
// validates and returns the plan. With If-Match (the ETag of GET
// /v1/admin/network) it applies only if the registers have not changed
// since (412 otherwise); applies through this node are serialised. An
// apply that would leave no active operator is refused. A real apply is
// planned, recorded in the audit trail (who, the diff and its digest) and
// only then written: the entries written are exactly those of the
// recorded plan. If the record cannot be made durable, nothing is written
// (503); if the write then fails, a failed record follows.
func (a *API) postApply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		problem.Error(w, http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the network file is too large")
		return
	}
	desired, err := apply.Parse(bytes.NewReader(body))
	if err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "the network file could not be parsed: "+err.Error())
		return
	}
	dry := r.URL.Query().Get("dry-run") == "true"
	if !dry {
		a.applyMu.Lock()
		defer a.applyMu.Unlock()
	}
	if !a.precheck(w, r, desired) {
		return
	}
	plan, err := apply.Apply(r.Context(), a.cfg.Directory.Store(), desired, a.cfg.Scheme, true)
	if err != nil {
		a.applyError(w, err)
		return
	}
	diff := plan.String()
	if !dry {
		rec, ok := a.event(w, r, crossroads.RecordApply, "apply", applyDetail{
			Changed: plan.HasChanges(), DiffDigest: audit.Digest([]byte(diff)), Diff: diff, FileDigest: audit.Digest(body),
		})
		if !ok || !a.commit(w, r, rec) {
			return
		}
		if plan.HasChanges() {
			if err := a.cfg.Directory.Store().Apply(r.Context(), plan.Network()); err != nil {
				a.failed(r, rec, "store-unavailable")
				a.applyError(w, err)
				return
			}
		}
	}
	if n, err := a.cfg.Directory.Store().Registers(r.Context()); err == nil && !dry {
		w.Header().Set("ETag", registersTag(n)) // for the next conditional apply
	}
	a.cfg.Logger.Info("network applied", "dryRun", dry, "changes", plan.HasChanges())
	writeJSON(w, http.StatusOK, map[string]any{"dryRun": dry, "changed": plan.HasChanges(), "diff": diff})
}

func (a *API) applyError(w http.ResponseWriter, err error) {
	var probs apply.Problems
	if errors.As(err, &probs) {
		p := problem.New(http.StatusUnprocessableEntity, "invalid-network", "the change is invalid; nothing was written")
		for _, it := range probs {
			p.Problems = append(p.Problems, problem.Item{Path: it.Path, Message: it.Message})
		}
		problem.Write(w, p)
		return
	}
	a.cfg.Logger.Error("apply", "err", err)
	problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the registers could not be written; nothing was changed")
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		problem.Error(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "the body is not valid JSON for this resource")
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "the body has trailing data")
		return false
	}
	return true
}
