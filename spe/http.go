package spe

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"

	expslog "golang.org/x/exp/slog"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/internal/httpjson"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/problem"
)

var discardLogger = expslog.New(expslog.NewTextHandler(io.Discard, nil))

// member is the caller of a workspace request and its standing in the permit.
type member struct {
	id, name string // participant id; the name the permit gives the person
	holder   string // id, when the caller is a data holder
	roles    []string
	permit   *crossroads.Authorisation
	space    *space
}

type memberKey struct{}

func memberFrom(ctx context.Context) (*member, bool) {
	m, ok := ctx.Value(memberKey{}).(*member)
	return m, ok
}

// Route is one route of the API; the hub mounts them (for participants:
// every caller presents a client certificate of the network CA).
type Route struct {
	Method, Pattern string
	Handler         http.Handler
}

// Routes lists the /v1/spe/… routes.
func (s *Service) Routes() []Route {
	h := func(method, pattern string, roles []string, fn func(http.ResponseWriter, *http.Request, *member)) Route {
		return Route{Method: method, Pattern: pattern, Handler: s.enter(roles, fn)}
	}
	tus := func(w http.ResponseWriter, r *http.Request, m *member) {
		m.space.tus.ServeHTTP(w, r)
	}
	holder := []string{crossroads.RoleDataHolder}
	return []Route{
		{Method: http.MethodGet, Pattern: "/v1/spe/permits", Handler: http.HandlerFunc(s.listPermits)},
		h(http.MethodGet, "/v1/spe/permits/{permit}", nil, s.getWorkspace),
		h(http.MethodPost, "/v1/spe/permits/{permit}/uploads/", holder, tus),
		h(http.MethodHead, "/v1/spe/permits/{permit}/uploads/{id}", holder, tus),
		h(http.MethodPatch, "/v1/spe/permits/{permit}/uploads/{id}", holder, tus),
		h(http.MethodOptions, "/v1/spe/permits/{permit}/uploads/", holder, tus),
		h(http.MethodGet, "/v1/spe/permits/{permit}/uploads/{id}", nil, refuseDownload),
		h(http.MethodPost, "/v1/spe/permits/{permit}/queries", []string{crossroads.RoleResearcher}, s.postQuery),
		h(http.MethodGet, "/v1/spe/permits/{permit}/releases", []string{crossroads.RoleResearcher, crossroads.RoleReviewer, crossroads.RoleAccessBody}, s.listReleases),
		h(http.MethodGet, "/v1/spe/permits/{permit}/releases/{release}", []string{crossroads.RoleResearcher, crossroads.RoleReviewer, crossroads.RoleAccessBody}, s.getRelease),
		h(http.MethodGet, "/v1/spe/permits/{permit}/releases/{release}/result", []string{crossroads.RoleResearcher}, s.getResult),
		h(http.MethodPost, "/v1/spe/permits/{permit}/releases/{release}/reviews", []string{crossroads.RoleReviewer}, s.postReview),
		{Method: http.MethodPost, Pattern: "/v1/spe/federation/{permit}/partials", Handler: http.HandlerFunc(s.postPartial)},
		h(http.MethodPost, "/v1/spe/permits/{permit}/halt", []string{crossroads.RoleOperator, crossroads.RoleAccessBody}, s.postHalt),
		h(http.MethodPost, "/v1/spe/permits/{permit}/resume", []string{crossroads.RoleOperator, crossroads.RoleAccessBody}, s.postResume),
	}
}

// supervision are the routes a halted workspace still serves (to
// operators and the access body).
var supervision = map[string]bool{
	"GET /v1/spe/permits/{permit}":         true,
	"POST /v1/spe/permits/{permit}/halt":   true,
	"POST /v1/spe/permits/{permit}/resume": true,
}

// enter authenticates and authorises a workspace request: the caller must
// be a member of the permit in one of roles (nil: any role), the permit in
// force, the workspace open; within the caller's rate. The request runs
// under the workspace's context: a halt cancels it.
func (s *Service) enter(roles []string, fn func(http.ResponseWriter, *http.Request, *member)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, ok := crossroads.CallerFrom(r.Context())
		if !ok {
			problem.Error(w, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")
			return
		}
		id := r.PathValue("permit")
		a, ok := s.cfg.Permit(id)
		if !ok || a.Kind != crossroads.KindDataPermit || a.Permit == nil || !permitID.MatchString(id) {
			problem.Error(w, http.StatusNotFound, crossroads.ReasonNoPermit, "no data permit with this id names you")
			return
		}
		m := &member{id: caller.ID, roles: a.Permit.Roles(caller.ID), permit: a}
		if caller.Kind == crossroads.KindOperator {
			m.roles = append(m.roles, crossroads.RoleOperator)
		}
		for _, pm := range a.Permit.Members {
			if pm.Participant == caller.ID && pm.Name != "" {
				m.name = pm.Name
			}
		}
		if slices.Contains(m.roles, crossroads.RoleDataHolder) {
			m.holder = caller.ID
		}
		if len(m.roles) == 0 {
			// Not a member: as if there were no such permit (EHDSR-3).
			problem.Error(w, http.StatusNotFound, crossroads.ReasonNoPermit, "no data permit with this id names you")
			return
		}
		if roles != nil && !slices.ContainsFunc(m.roles, func(r string) bool { return slices.Contains(roles, r) }) {
			problem.Error(w, http.StatusForbidden, crossroads.ReasonRoleNotPermitted, "your role in the permit does not allow this")
			return
		}
		if s.cfg.Limiter != nil {
			lim := s.cfg.Limits
			release, after, ok := s.cfg.Limiter.Acquire(caller.ID, "spe:"+id, &lim)
			if !ok {
				w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(after)))
				problem.Error(w, http.StatusTooManyRequests, crossroads.ReasonRateLimited, "too many requests: retry after the time in Retry-After")
				return
			}
			defer release()
		}
		sp, err := s.space(r.Context(), a)
		if err != nil {
			s.cfg.Logger.Error("spe: open workspace", "permit", id, "err", err)
			problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonSPEUnavailable, "the workspace could not be opened")
			return
		}
		m.space = sp
		operatorOnly := !slices.ContainsFunc(m.roles, func(r string) bool { return r != crossroads.RoleOperator })
		if !crossroads.PermitActiveAt(a, s.cfg.Now()) {
			if err := s.Terminate(context.WithoutCancel(r.Context()), id, "the permit is no longer in force"); err != nil {
				s.cfg.Logger.Error("spe: terminate workspace", "permit", id, "err", err)
			}
			if !operatorOnly {
				problem.Error(w, http.StatusForbidden, crossroads.ReasonPermitNotActive, "the data permit has expired, is suspended or revoked")
				return
			}
		}
		ctx := sp.done()
		// A halted or terminated workspace serves nothing but its
		// supervision (state, halt, resume) to operators and the access body.
		supervisor := operatorOnly || slices.Contains(m.roles, crossroads.RoleAccessBody)
		if ctx.Err() != nil && !(supervisor && supervision[r.Pattern]) {
			problem.Error(w, http.StatusForbidden, crossroads.ReasonWorkspaceHalted, "the workspace is halted or terminated")
			return
		}
		rctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		if ctx.Err() == nil { // an open workspace: a halt ends the request
			stop := context.AfterFunc(ctx, func() { cancel(ErrHalted) })
			defer stop()
		}
		fn(w, r.WithContext(context.WithValue(rctx, memberKey{}, m)), m)
	})
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func refuseDownload(w http.ResponseWriter, r *http.Request, m *member) {
	problem.Error(w, http.StatusForbidden, crossroads.ReasonRoleNotPermitted, "raw data never leaves the workspace: only released results can be downloaded (EHDSR-12)")
}

// PermitView is what GET /v1/spe/permits lists.
type PermitView struct {
	ID        string   `json:"id"`
	Reference string   `json:"reference"`
	Roles     []string `json:"roles"`
	Active    bool     `json:"active"`
}

func (s *Service) listPermits(w http.ResponseWriter, r *http.Request) {
	caller, ok := crossroads.CallerFrom(r.Context())
	if !ok {
		problem.Error(w, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")
		return
	}
	out := []PermitView{}
	if s.cfg.Permits != nil {
		for _, a := range s.cfg.Permits() {
			if a.Kind != crossroads.KindDataPermit || a.Permit == nil {
				continue
			}
			roles := a.Permit.Roles(caller.ID)
			if caller.Kind == crossroads.KindOperator {
				roles = append(roles, crossroads.RoleOperator)
			}
			if len(roles) > 0 {
				out = append(out, PermitView{ID: a.ID, Reference: a.Reference, Roles: roles, Active: crossroads.PermitActiveAt(a, s.cfg.Now())})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permits": out})
}

// WorkspaceView is GET /v1/spe/permits/{permit}.
type WorkspaceView struct {
	Workspace
	Roles   []string                 `json:"roles"`
	Uploads []Upload                 `json:"uploads"`
	Spent   crossroads.PrivacyBudget `json:"budgetSpent"`
}

func (s *Service) getWorkspace(w http.ResponseWriter, r *http.Request, m *member) {
	ups, err := s.cfg.Store.Uploads(r.Context(), m.permit.ID)
	if err != nil {
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonSPEUnavailable, "the workspace's records could not be read")
		return
	}
	spent, err := s.cfg.Store.Spent(r.Context(), m.permit.ID)
	if err != nil {
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonSPEUnavailable, "the workspace's records could not be read")
		return
	}
	m.space.mu.Lock()
	st := m.space.state
	m.space.mu.Unlock()
	if ups == nil {
		ups = []Upload{}
	}
	writeJSON(w, http.StatusOK, WorkspaceView{Workspace: st, Roles: m.roles, Uploads: ups, Spent: spent})
}

type haltBody struct {
	Reason string `json:"reason"`
}

func (s *Service) postHalt(w http.ResponseWriter, r *http.Request, m *member) {
	var b haltBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&b); err != nil || b.Reason == "" || len(b.Reason) > 500 {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, `send {"reason": "…"} (at most 500 characters)`)
		return
	}
	// The halt outlives the request that asked for it.
	err := s.Halt(context.WithoutCancel(r.Context()), m.permit.ID, m.id, b.Reason)
	if err != nil {
		s.cfg.Logger.Error("spe: halt", "permit", m.permit.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the workspace is halted, but the halt could not be recorded")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"permit": m.permit.ID, "state": StateHalted})
}

func (s *Service) postResume(w http.ResponseWriter, r *http.Request, m *member) {
	err := s.Resume(r.Context(), m.permit.ID, m.id)
	switch {
	case errors.Is(err, crossroads.ErrConflict):
		problem.Error(w, http.StatusConflict, crossroads.ReasonWorkspaceHalted, "only a halted workspace whose permit is in force can be resumed")
		return
	case err != nil:
		s.cfg.Logger.Error("spe: resume", "permit", m.permit.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the resumption could not be recorded")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"permit": m.permit.ID, "state": StateOpen})
}
