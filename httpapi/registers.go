package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	// Operations granted per service; a service absent is granted its GET operations.
	Operations map[string][]string `json:"operations,omitempty"`
	ValidFrom  time.Time           `json:"validFrom"`
	ValidTo    *time.Time          `json:"validTo,omitempty"`
	Status     string              `json:"status"`
	ActiveNow  bool                `json:"activeNow"`
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
			Fields: au.Fields, Capacities: au.Capacities, Operations: au.Operations, ValidFrom: au.ValidFrom, Status: au.Status, ActiveNow: au.ActiveAt(now),
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
	type publicOperation struct {
		ID     string   `json:"id"`
		Method string   `json:"method"`
		Path   string   `json:"path"` // template, relative to the service
		Query  []string `json:"query,omitempty"`
		Body   string   `json:"body,omitempty"`
		Kind   string   `json:"kind,omitempty"` // mutation: published by the provider, subscribed to (docs/push.md)
	}
	type publicService struct {
		ID             string            `json:"id"`
		Provider       string            `json:"provider"`
		Description    string            `json:"description,omitempty"`
		Classification int               `json:"classification"`
		Fields         []string          `json:"fields"`
		ConcernsPerson bool              `json:"concernsPerson"` // wave-1 spelling: subject is person
		Subject        string            `json:"subject"`        // person, enterprise, none or a kind of the network
		Operations     []publicOperation `json:"operations"`
	}
	n := a.cfg.Directory.Snapshot()
	out := make([]publicService, 0, len(n.Services))
	for _, s := range n.Services {
		ops := make([]publicOperation, 0, len(s.Operations))
		for _, o := range s.Operations {
			ops = append(ops, publicOperation{o.ID, o.Method, o.Path, o.Query, o.Body, o.Kind})
		}
		out = append(out, publicService{s.ID, s.Provider, s.Description, s.Classification, s.Fields,
			s.SubjectKind() == crossroads.SubjectPerson, s.SubjectKind(), ops})
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
	person, kind, ok := a.subjectQuery(w, r)
	if !ok {
		return
	}
	list, err := a.cfg.Directory.Store().Integrations(r.Context(), p.ID, person)
	if person != "" {
		list = slices.DeleteFunc(list, func(in crossroads.Integration) bool { return apply.CanonicalKind(in.Kind) != kind })
	}
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

func (a *API) getNetwork(w http.ResponseWriter, r *http.Request) {
	cur := a.cfg.Directory.Current()
	w.Header().Set("ETag", etag(cur.Version()))
	writeJSON(w, http.StatusOK, cur.Network())
}

// Reasons of the admin apply.
const (
	// ReasonVersionMismatch (412): If-Match names another version of the
	// registers than the current one (returned in ETag).
	ReasonVersionMismatch crossroads.Reason = "version-mismatch"
	// ReasonConcurrentChange (409): the registers kept changing under the
	// apply; nothing was written.
	ReasonConcurrentChange crossroads.Reason = "concurrent-change"
)

// etag renders a registers version as a strong entity tag.
func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// ifMatch parses an If-Match header naming one version of the registers:
// 0 when absent or "*".
func ifMatch(h string) (int64, bool) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, true
	}
	// Entity tags compare byte by byte: only the form etag writes (digits,
	// no sign, no leading zero) can name a version.
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' || h[1] == '0' {
		return 0, false
	}
	for _, c := range h[1 : len(h)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(h[1:len(h)-1], 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// applyDetail is the detail of a register-apply event.
type applyDetail struct {
	Changed    bool   `json:"changed"`
	DiffDigest string `json:"diffDigest"` // audit.Digest of Diff
	Diff       string `json:"diff"`       // the plan, as apply.Plan.String renders it
	FileDigest string `json:"fileDigest"` // of the network file as sent
}

// postApply applies a network file (YAML or JSON); ?dry-run=true only
// validates and returns the plan. If-Match (an ETag of GET
// /v1/admin/network or of an earlier apply) makes the apply conditional:
// 412 version-mismatch if the registers have changed since. A real apply
// is planned, recorded in the audit trail (who, the diff and its digest)
// and only then written: the entries written are exactly those of the
// recorded plan. If the record cannot be made durable, nothing is written
// (503); if the write then fails, a failed record follows.
func (a *API) postApply(w http.ResponseWriter, r *http.Request) {
	want, ok := ifMatch(r.Header.Get("If-Match"))
	if !ok {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidHeader, `If-Match must be one entity tag of the registers, e.g. "42", or *`)
		return
	}
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
	if want != 0 && want != a.cfg.Directory.Current().Version() {
		// The ETag may come from another hub node, ahead of this one's
		// snapshot: read the registers before judging it.
		if _, err := a.cfg.Directory.Refresh(r.Context()); err != nil {
			a.applyError(w, err)
			return
		}
	}
	// Validate and plan at the registers' version, then write on condition
	// that they are still at it; a write that lost the race to another
	// writer is planned (and validated) again — unless If-Match pinned the
	// version, which then no longer matches.
	store := a.cfg.Directory.Store()
	var plan apply.Plan
	for attempt := 1; ; attempt++ {
		plan, err = apply.Run(r.Context(), store, desired, apply.Options{Kinds: a.cfg.Kinds, DryRun: true, IfMatch: want})
		if plan.Version != 0 {
			w.Header().Set("ETag", etag(plan.Version))
		}
		if err != nil {
			a.applyError(w, err)
			return
		}
		if dry || !plan.HasChanges() {
			break
		}
		diff := plan.String()
		rec, ok := a.event(w, r, crossroads.RecordApply, "apply", applyDetail{
			Changed: true, DiffDigest: audit.Digest([]byte(diff)), Diff: diff, FileDigest: audit.Digest(body),
		})
		if !ok || !a.commit(w, r, rec) {
			return
		}
		err = store.Apply(r.Context(), plan.Network())
		if err != nil {
			a.failed(r, rec, "store-unavailable")
		}
		if errors.Is(err, crossroads.ErrStale) && want == 0 && attempt < 5 {
			continue
		}
		if errors.Is(err, crossroads.ErrStale) && want != 0 {
			err = apply.ErrPrecondition
		}
		if err != nil {
			a.applyError(w, err)
			return
		}
		if n := plan.Network(); len(n.Participants)+len(n.Services)+len(n.Authorisations) > 0 {
			plan.Version++ // the store bumps the version by one
		}
		w.Header().Set("ETag", etag(plan.Version))
		break
	}
	warnings := make([]string, 0, len(plan.Warnings))
	for _, w := range plan.Warnings {
		warnings = append(warnings, w.String())
	}
	a.cfg.Logger.Info("network applied", "dryRun", dry, "changes", plan.HasChanges(), "version", plan.Version)
	writeJSON(w, http.StatusOK, map[string]any{"dryRun": dry, "changed": plan.HasChanges(), "diff": plan.String(),
		"version": plan.Version, "warnings": warnings})
}

func (a *API) applyError(w http.ResponseWriter, err error) {
	var probs apply.Problems
	switch {
	case errors.As(err, &probs):
		p := problem.New(http.StatusUnprocessableEntity, "invalid-network", "the change is invalid; nothing was written")
		for _, it := range probs {
			p.Problems = append(p.Problems, problem.Item{Path: it.Path, Message: it.Message})
		}
		problem.Write(w, p)
	case errors.Is(err, apply.ErrPrecondition):
		problem.Error(w, http.StatusPreconditionFailed, ReasonVersionMismatch, "the registers have changed since the version in If-Match (the current one is in ETag); nothing was written")
	case errors.Is(err, crossroads.ErrStale):
		problem.Error(w, http.StatusConflict, ReasonConcurrentChange, "the registers kept changing during the apply; nothing was written, try again")
	default:
		a.cfg.Logger.Error("apply", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the registers could not be written; nothing was changed")
	}
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
