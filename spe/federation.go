package spe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/aggregate"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/outputcheck"
	"github.com/crossroads-hub/crossroads/problem"
)

// Federated queries (FCR-5, FCR-8, FSPER-9, TIR-28..36). The same permit
// is registered on several hubs, each naming the others as peers
// (Permit.Peers). A researcher's federated query runs on the workspace of
// their hub and is sent to each peer's partials endpoint over mTLS: the
// peer hub authenticates the calling hub by the certificate it issued to
// it (a participant of its registers named in its permit's peers), runs
// the query on its own datasets, checks each partial result with its own
// copy of the permit's rules before anything leaves, records the step in
// its trail and answers with the partials that passed (their individual
// contributions removed) or a refusal. The calling hub merges them with
// its own partials and checks the merged table again.

// PartialRequest is what a hub sends its peer.
type PartialRequest struct {
	Query     json.RawMessage `json:"query"`
	Requester string          `json:"requester"` // the researcher at the calling hub
	Hub       string          `json:"hub"`       // the calling hub's id
}

// PartialResponse is the peer's answer.
type PartialResponse struct {
	Status string            `json:"status"` // pass or fail
	Tables []aggregate.Table `json:"tables,omitempty"`
	Detail string            `json:"detail,omitempty"`
}

// fanOut asks every peer of the permit for its partials. A refusal by a
// peer is not an error: detail says which, and nothing is merged.
func (s *Service) fanOut(ctx context.Context, m *member, raw json.RawMessage, local []string) ([]aggregate.Table, string, error) {
	var out []aggregate.Table
	body, err := json.Marshal(PartialRequest{Query: raw, Requester: m.id, Hub: s.cfg.Hub})
	if err != nil {
		return nil, "", err
	}
	for _, peer := range m.permit.Permit.Peers {
		c := s.cfg.Peers[peer.Hub]
		if c == nil {
			return nil, "", &queryError{http.StatusBadGateway, crossroads.ReasonPeerRefused, fmt.Sprintf("peer hub %q is not configured on this hub", peer.Hub)}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, peer.URL+"/v1/spe/federation/"+m.permit.ID+"/partials", bytes.NewReader(body))
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			s.recordOutcome(ctx, m.permit, "federated-query", m.id, m.name, crossroads.OutcomeFailed, crossroads.ReasonPeerRefused, map[string]any{"peer": peer.Hub})
			return nil, "", &queryError{http.StatusBadGateway, crossroads.ReasonPeerRefused, fmt.Sprintf("peer hub %q unreachable", peer.Hub)}
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		var pr PartialResponse
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &pr) != nil {
			s.recordOutcome(ctx, m.permit, "federated-query", m.id, m.name, crossroads.OutcomeFailed, crossroads.ReasonPeerRefused,
				map[string]any{"peer": peer.Hub, "status": resp.StatusCode})
			return nil, "", &queryError{http.StatusBadGateway, crossroads.ReasonPeerRefused, fmt.Sprintf("peer hub %q refused the query (HTTP %d)", peer.Hub, resp.StatusCode)}
		}
		if err := s.record(ctx, m.permit, "federated-query", m.id, m.name, map[string]any{
			"peer": peer.Hub, "peerStatus": pr.Status, "partials": len(pr.Tables), "digest": audit.Digest(b)}); err != nil {
			return nil, "", err
		}
		if pr.Status != ReleasePass {
			return nil, fmt.Sprintf("peer hub %q refused to release its partial result: %s", peer.Hub, pr.Detail), nil
		}
		out = append(out, pr.Tables...)
	}
	return out, "", nil
}

// postPartial serves a peer hub's request for this hub's partials.
func (s *Service) postPartial(w http.ResponseWriter, r *http.Request) {
	caller, ok := crossroads.CallerFrom(r.Context())
	if !ok {
		problem.Error(w, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")
		return
	}
	id := r.PathValue("permit")
	a, ok := s.cfg.Permit(id)
	isPeer := false
	if ok && a.Kind == crossroads.KindDataPermit && a.Permit != nil {
		for _, p := range a.Permit.Peers {
			isPeer = isPeer || p.Hub == caller.ID
		}
	}
	if !isPeer || !permitID.MatchString(id) {
		problem.Error(w, http.StatusNotFound, crossroads.ReasonNoPermit, "no data permit with this id names you as a peer")
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
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonSPEUnavailable, "the workspace could not be opened")
		return
	}
	m := &member{id: caller.ID, permit: a, space: sp}
	if !crossroads.PermitActiveAt(a, s.cfg.Now()) || sp.done().Err() != nil {
		problem.Error(w, http.StatusForbidden, crossroads.ReasonWorkspaceHalted, "the workspace is halted or its permit not in force")
		return
	}
	var req PartialRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidQuery, "a partial request is {query, requester, hub}")
		return
	}
	resp, err := s.partials(r.Context(), m, req)
	if err != nil {
		s.writeErr(w, m, "partial query", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) partials(ctx context.Context, m *member, req PartialRequest) (*PartialResponse, error) {
	a, sp := m.permit, m.space
	q, err := parseQuery(a, req.Query)
	if err != nil {
		return nil, err
	}
	rs, err := rules(a)
	if err != nil {
		return nil, err
	}
	ups, err := s.cfg.Store.Uploads(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	resp := &PartialResponse{Status: ReleasePass}
	for _, up := range ups {
		if seen[up.Dataset] {
			continue
		}
		seen[up.Dataset] = true
		t, err := s.runLocal(ctx, sp, a, q, up.Dataset)
		if err != nil {
			return nil, err
		}
		res, err := outputcheck.Check(rs, t)
		if err != nil {
			return nil, err
		}
		if res.Status == outputcheck.StatusFail {
			resp = &PartialResponse{Status: ReleaseFail, Detail: fmt.Sprintf("the partial result of dataset %q fails this site's checks", up.Dataset)}
			break
		}
		for i := range t.Cells {
			t.Cells[i].Top = nil // individual contributions never leave
		}
		resp.Tables = append(resp.Tables, t)
	}
	if resp.Status == ReleasePass && len(resp.Tables) == 0 {
		resp = &PartialResponse{Status: ReleaseFail, Detail: "this site holds no uploaded dataset of the permit"}
	}
	b, _ := json.Marshal(resp)
	if err := s.record(ctx, a, "federated-partial", m.id, req.Requester, map[string]any{
		"hub": req.Hub, "status": resp.Status, "partials": len(resp.Tables), "query": audit.Digest(req.Query), "digest": audit.Digest(b)}); err != nil {
		return nil, err
	}
	return resp, nil
}
