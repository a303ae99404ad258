package spe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/aggregate"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/dp"
	"github.com/crossroads-hub/crossroads/outputcheck"
	"github.com/crossroads-hub/crossroads/problem"
)

// Software is the name a permit's Software list gives the hub's own query
// engine (package aggregate); a permit that lists software without it
// allows no queries (FCR-3, FCR-4).
const Software = "crossroads-aggregate"

// QueryRequest is the body of POST /v1/spe/permits/{permit}/queries.
type QueryRequest struct {
	// Query is the declarative query (aggregate.Query as JSON).
	Query json.RawMessage `json:"query"`
	// Datasets, when set, run the query on each of these datasets (several
	// holders) as partial results, each checked before it is merged, the
	// merged table checked again; Query's dataset is then ignored.
	Datasets []string `json:"datasets,omitempty"`
	// Federated also fans the query out to the permit's peer hubs
	// (FCR-5): each checks its own partial before it leaves.
	Federated bool `json:"federated,omitempty"`
	// Noise asks for a differentially private release (counts and sums)
	// charged to the permit's budget.
	Noise *dp.Params `json:"noise,omitempty"`
}

// ReleaseView is what the API shows of a release. Result is there once
// released (and, for reviewers, while held for review); Cells lists, for
// a failed result, the cells to suppress and why (never their values).
type ReleaseView struct {
	Release
	Result       *aggregate.Table      `json:"result,omitempty"`
	Noisy        *dp.Release           `json:"noisyResult,omitempty"`
	Cells        []FailedCell          `json:"cells,omitempty"`
	Differencing []outputcheck.Finding `json:"differencing,omitempty"`
	Reviews      []Review              `json:"reviews,omitempty"`
	Detail       string                `json:"detail,omitempty"`
}

// FailedCell is a cell the checker would suppress.
type FailedCell struct {
	Index  []string           `json:"index"`
	Column []string           `json:"column"`
	Fails  []outputcheck.Rule `json:"fails"`
}

// sealedResult is what a workspace keeps of a release (sealed).
type sealedResult struct {
	Query  aggregate.Query    `json:"query"`
	Table  aggregate.Table    `json:"table"` // redacted (no individual contributions)
	Check  outputcheck.Result `json:"check"`
	Noisy  *dp.Release        `json:"noisy,omitempty"`
	Detail string             `json:"detail,omitempty"`
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rules are the permit's disclosure-control rules over the defaults.
func rules(a *crossroads.Authorisation) (outputcheck.Rules, error) {
	if len(a.Permit.Rules) == 0 {
		return outputcheck.DefaultRules(), nil
	}
	b, err := json.Marshal(a.Permit.Rules)
	if err != nil {
		return outputcheck.Rules{}, err
	}
	return outputcheck.ParseRules(b)
}

// queryError is a refusal of a query with its problem.
type queryError struct {
	status int
	reason crossroads.Reason
	detail string
}

func (e *queryError) Error() string { return e.detail }

func badQuery(detail string) error {
	return &queryError{http.StatusBadRequest, crossroads.ReasonInvalidQuery, detail}
}

// parseQuery validates a query against the permit.
func parseQuery(a *crossroads.Authorisation, raw json.RawMessage) (aggregate.Query, error) {
	q, err := aggregate.ParseQuery(raw)
	if err != nil {
		return q, badQuery(err.Error())
	}
	if !a.Permit.AllowsStatistic(string(q.Statistic)) {
		return q, badQuery(fmt.Sprintf("the permit does not allow the statistic %q", q.Statistic))
	}
	if len(a.Permit.Software) > 0 && !slices.Contains(a.Permit.Software, Software) {
		return q, badQuery("the permit does not authorise the hub's query engine (" + Software + ")")
	}
	return q, nil
}

// latestUpload returns the newest upload of a dataset of the permit.
func (s *Service) latestUpload(ctx context.Context, a *crossroads.Authorisation, dataset string) (Upload, error) {
	if _, ok := a.Permit.Dataset(dataset); !ok {
		return Upload{}, &queryError{http.StatusBadRequest, crossroads.ReasonUnknownDataset, fmt.Sprintf("the permit names no dataset %q", dataset)}
	}
	ups, err := s.cfg.Store.Uploads(ctx, a.ID)
	if err != nil {
		return Upload{}, err
	}
	for i := len(ups) - 1; i >= 0; i-- {
		if ups[i].Dataset == dataset {
			return ups[i], nil
		}
	}
	return Upload{}, &queryError{http.StatusConflict, crossroads.ReasonUnknownDataset, fmt.Sprintf("dataset %q has not been uploaded yet", dataset)}
}

// runLocal runs q on one dataset of the workspace, reading the sealed
// upload; a halt or the permit's end stops it at the next segment.
func (s *Service) runLocal(ctx context.Context, sp *space, a *crossroads.Authorisation, q aggregate.Query, dataset string) (aggregate.Table, error) {
	up, err := s.latestUpload(ctx, a, dataset)
	if err != nil {
		return aggregate.Table{}, err
	}
	key, err := s.contentKey(ctx, sp)
	if err != nil {
		return aggregate.Table{}, err
	}
	f, err := sp.root.Open("uploads/" + up.ID + ".data")
	if err != nil {
		return aggregate.Table{}, fmt.Errorf("spe: dataset %s: %w", dataset, err)
	}
	defer f.Close()
	live := s.live(sp)
	var read int64
	check := func() error {
		if pr := s.cfg.Progress; pr != nil {
			pr(sp.permit, "query", read)
		}
		read += SegmentSize
		return live()
	}
	o, err := newOpener(f, key, sp.permit, up.ID, up.Size, check)
	if err != nil {
		return aggregate.Table{}, err
	}
	q.Dataset = dataset
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	t, err := aggregate.Run(ctx, o, q, aggregate.Limits{})
	switch {
	case errors.Is(err, ErrHalted), context.Cause(ctx) != nil && errors.Is(context.Cause(ctx), ErrHalted):
		return t, ErrHalted
	case errors.Is(err, aggregate.ErrInvalidQuery), errors.Is(err, aggregate.ErrBadData), errors.Is(err, aggregate.ErrTooLarge):
		return t, badQuery(err.Error())
	}
	return t, err
}

// history reads the permit's differencing history (sealed in the workspace).
func (s *Service) history(ctx context.Context, sp *space) (outputcheck.History, error) {
	var h outputcheck.History
	b, err := s.readSealed(ctx, sp, "history")
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

// readSealed and writeSealed keep small sealed files in the workspace: one
// segment per SegmentSize, the plaintext size in the first 8 bytes.
func (s *Service) readSealed(ctx context.Context, sp *space, name string) ([]byte, error) {
	key, err := s.contentKey(ctx, sp)
	if err != nil {
		return nil, err
	}
	b, err := sp.root.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, ErrCorrupt
	}
	size := int64(0)
	for _, c := range b[:8] {
		size = size<<8 | int64(c)
	}
	o, err := newOpener(bytes.NewReader(b[8:]), key, sp.permit, name, size, nil)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

func (s *Service) writeSealed(ctx context.Context, sp *space, name string, plain []byte) error {
	key, err := s.contentKey(ctx, sp)
	if err != nil {
		return err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	out := make([]byte, 8, 8+len(plain)+64)
	n := uint64(len(plain))
	for i := 7; i >= 0; i-- {
		out[i] = byte(n)
		n >>= 8
	}
	for i, idx := 0, uint64(0); i < len(plain) || idx == 0; idx++ {
		end := min(i+SegmentSize, len(plain))
		out = sealSegment(out, aead, sp.permit, name, idx, plain[i:end])
		i = end
		if i >= len(plain) {
			break
		}
	}
	tmp := name + ".tmp"
	f, err := sp.root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(out)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return sp.root.Rename(tmp, name)
}

// postQuery runs a researcher's query: the result is computed inside the
// workspace, checked against the permit's rules and the permit's earlier
// releases, and released, held for review, or refused.
func (s *Service) postQuery(w http.ResponseWriter, r *http.Request, m *member) {
	var req QueryRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Query) == 0 {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidQuery, `send {"query": {…}} (see the OpenAPI document)`)
		return
	}
	view, err := s.query(r.Context(), m, req)
	if err != nil {
		s.writeErr(w, m, "query", err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func (s *Service) writeErr(w http.ResponseWriter, m *member, what string, err error) {
	var qe *queryError
	switch {
	case errors.As(err, &qe):
		problem.Error(w, qe.status, qe.reason, qe.detail)
	case errors.Is(err, ErrHalted):
		problem.Error(w, http.StatusForbidden, crossroads.ReasonWorkspaceHalted, "the workspace was halted or its permit ended during the "+what)
		panic(http.ErrAbortHandler) // and the session goes with it
	default:
		s.cfg.Logger.Error("spe: "+what, "permit", m.permit.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonSPEUnavailable, "the "+what+" could not be completed or recorded")
	}
}

func (s *Service) query(ctx context.Context, m *member, req QueryRequest) (*ReleaseView, error) {
	a, sp := m.permit, m.space
	q, err := parseQuery(a, req.Query)
	if err != nil {
		return nil, err
	}
	rs, err := rules(a)
	if err != nil {
		return nil, err
	}
	datasets := req.Datasets
	if len(datasets) == 0 {
		datasets = []string{q.Dataset}
	}
	if req.Noise != nil && (req.Federated || len(datasets) > 1) {
		return nil, badQuery("a noisy release is of one dataset of this workspace")
	}
	// One query at a time per workspace: the history and the budget are
	// read, checked and written together.
	sp.queryMu.Lock()
	defer sp.queryMu.Unlock()

	rel := Release{Permit: a.ID, ID: newID(), Requester: m.id, Query: req.Query, Created: s.cfg.Now().UTC(),
		Noisy: req.Noise != nil, Federated: req.Federated || len(datasets) > 1}
	var parts []aggregate.Table
	for _, ds := range datasets {
		t, err := s.runLocal(ctx, sp, a, q, ds)
		if err != nil {
			return nil, err
		}
		parts = append(parts, t)
	}
	var sealed sealedResult
	sealed.Query = q
	if req.Federated {
		peerParts, detail, err := s.fanOut(ctx, m, req.Query, datasets)
		if err != nil {
			return nil, err
		}
		if detail != "" {
			sealed.Detail = detail
			rel.Status = ReleaseRefused
		}
		parts = append(parts, peerParts...)
	}
	if len(parts) > 1 && rel.Status == "" {
		// Each partial is checked before it is merged (FCR-6 at every site).
		for i, p := range parts[:len(datasets)] {
			res, err := outputcheck.Check(rs, p)
			if err != nil {
				return nil, err
			}
			if res.Status == outputcheck.StatusFail {
				rel.Status, sealed.Detail = ReleaseRefused, fmt.Sprintf("the partial result of dataset %q fails the checks", datasets[i])
			}
		}
	}
	var t aggregate.Table
	if rel.Status == "" {
		if len(parts) == 1 {
			t = parts[0]
		} else if t, err = aggregate.Merge(parts...); err != nil {
			return nil, badQuery(err.Error())
		}
	}
	hist, err := s.history(ctx, sp)
	if err != nil {
		return nil, err
	}
	switch {
	case rel.Status != "":
	case req.Noise != nil:
		if err := s.noisy(ctx, a, &rel, &sealed, t, *req.Noise); err != nil {
			return nil, err
		}
	default:
		res, err := outputcheck.CheckRelease(rs, hist, q, t)
		if err != nil {
			return nil, err
		}
		sealed.Check, sealed.Table = res, t.Redact()
		switch {
		case res.Refused:
			rel.Status = ReleaseRefused
		case res.Status == outputcheck.StatusFail:
			rel.Status = ReleaseFail
		case res.Status == outputcheck.StatusReview || res.Review:
			rel.Status = ReleaseReview
		default:
			rel.Status = ReleasePass
		}
	}
	if rel.Status == ReleasePass && !rel.Noisy {
		rel.Decided = rel.Created
		hist.Add(outputcheck.NewRelease(rel.ID, rel.Created, q, t, sealed.Check))
	}
	// No record, no release: the event first, then the result.
	b, err := json.Marshal(sealed)
	if err != nil {
		return nil, err
	}
	if err := s.writeSealed(ctx, sp, "results/"+rel.ID, b); err != nil {
		return nil, err
	}
	if err := s.record(ctx, a, "query", m.id, m.name, map[string]any{
		"release": rel.ID, "status": rel.Status, "datasets": datasets, "federated": rel.Federated, "noisy": rel.Noisy,
		"query": audit.Digest(req.Query), "resultDigest": audit.Digest(b),
	}); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutRelease(ctx, rel); err != nil {
		return nil, err
	}
	if rel.Status == ReleasePass && !rel.Noisy {
		hb, err := json.Marshal(hist)
		if err != nil {
			return nil, err
		}
		if err := s.writeSealed(ctx, sp, "history", hb); err != nil {
			return nil, err
		}
	}
	return s.view(rel, sealed, nil, rel.Released()), nil
}

// noisy releases t with noise under the permit's budget (basic
// composition: the ε and δ of every release add up). The budget is
// charged in the store before anything is drawn; a spend that would pass
// it is refused and nothing is released.
func (s *Service) noisy(ctx context.Context, a *crossroads.Authorisation, rel *Release, sealed *sealedResult, t aggregate.Table, p dp.Params) error {
	limit := a.Permit.Budget
	if limit == nil {
		return &queryError{http.StatusForbidden, crossroads.ReasonBudgetExhausted, "the permit grants no differential-privacy budget"}
	}
	spent, err := s.cfg.Store.Spent(ctx, a.ID)
	if err != nil {
		return err
	}
	b := dp.Budget{Epsilon: limit.Epsilon, Delta: limit.Delta, SpentEpsilon: spent.Epsilon, SpentDelta: spent.Delta}
	var out dp.Release
	switch t.Statistic {
	case aggregate.Count:
		out, err = dp.Count(&b, rel.ID, rel.Created, t, p)
	case aggregate.Sum:
		out, err = dp.Sum(&b, rel.ID, rel.Created, t, p)
	default:
		return badQuery("noise is for counts and sums")
	}
	switch {
	case errors.Is(err, dp.ErrExhausted):
		return s.refuseBudget(ctx, a, rel, p)
	case errors.Is(err, dp.ErrInvalid):
		return badQuery(err.Error())
	case err != nil:
		return err
	}
	if _, err := s.cfg.Store.SpendBudget(ctx, a.ID, out.Epsilon, out.Delta, *limit); errors.Is(err, ErrBudget) {
		return s.refuseBudget(ctx, a, rel, p)
	} else if err != nil {
		return err
	}
	rel.Status, rel.Decided = ReleasePass, rel.Created
	sealed.Noisy = &out
	return nil
}

func (s *Service) refuseBudget(ctx context.Context, a *crossroads.Authorisation, rel *Release, p dp.Params) error {
	if err := s.recordOutcome(ctx, a, "query", rel.Requester, "", crossroads.OutcomeDenied, crossroads.ReasonBudgetExhausted,
		map[string]any{"release": rel.ID, "epsilon": p.Epsilon, "delta": p.Delta}); err != nil {
		return err
	}
	return &queryError{http.StatusForbidden, crossroads.ReasonBudgetExhausted, "the permit's differential-privacy budget would be exceeded: nothing was released"}
}

// view is what the API shows; reveal adds the result table when the
// caller may see it (released, or a reviewer's look at a held one).
func (s *Service) view(rel Release, sealed sealedResult, reviews []Review, reveal bool) *ReleaseView {
	v := &ReleaseView{Release: rel, Reviews: reviews, Detail: sealed.Detail, Differencing: sealed.Check.Differencing}
	if rel.Status == ReleaseFail {
		for _, c := range sealed.Check.Cells {
			if c.Suppress || len(c.Fails) > 0 {
				v.Cells = append(v.Cells, FailedCell{Index: c.Index, Column: c.Column, Fails: c.Fails})
			}
		}
	}
	if reveal && (rel.Released() || rel.Status == ReleaseReview) {
		if sealed.Noisy != nil {
			v.Noisy = sealed.Noisy
		} else {
			t := sealed.Check.Released(sealed.Table)
			v.Result = &t
		}
	}
	return v
}

// release reads a release and its sealed result.
func (s *Service) release(ctx context.Context, m *member, id string) (Release, sealedResult, error) {
	var sealed sealedResult
	if !uploadID.MatchString(id) {
		return Release{}, sealed, &queryError{http.StatusNotFound, crossroads.ReasonNoSuchRelease, "no such release"}
	}
	rel, err := s.cfg.Store.Release(ctx, m.permit.ID, id)
	if errors.Is(err, crossroads.ErrNotFound) {
		return rel, sealed, &queryError{http.StatusNotFound, crossroads.ReasonNoSuchRelease, "no such release"}
	}
	if err != nil {
		return rel, sealed, err
	}
	b, err := s.readSealed(ctx, m.space, "results/"+id)
	if err != nil {
		return rel, sealed, err
	}
	return rel, sealed, json.Unmarshal(b, &sealed)
}

func (s *Service) listReleases(w http.ResponseWriter, r *http.Request, m *member) {
	rs, err := s.cfg.Store.Releases(r.Context(), m.permit.ID)
	if err != nil {
		s.writeErr(w, m, "listing", err)
		return
	}
	if rs == nil {
		rs = []Release{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": rs})
}

func (s *Service) getRelease(w http.ResponseWriter, r *http.Request, m *member) {
	rel, sealed, err := s.release(r.Context(), m, r.PathValue("release"))
	if err != nil {
		s.writeErr(w, m, "read", err)
		return
	}
	reviews, err := s.cfg.Store.Reviews(r.Context(), m.permit.ID, rel.ID)
	if err != nil {
		s.writeErr(w, m, "read", err)
		return
	}
	reveal := rel.Released() && slices.Contains(m.roles, crossroads.RoleResearcher) ||
		rel.Status == ReleaseReview && slices.Contains(m.roles, crossroads.RoleReviewer)
	writeJSON(w, http.StatusOK, s.view(rel, sealed, reviews, reveal))
}

// getResult downloads a released result (EHDSR-12: only released results
// leave), with Range support so that a download can resume.
func (s *Service) getResult(w http.ResponseWriter, r *http.Request, m *member) {
	rel, sealed, err := s.release(r.Context(), m, r.PathValue("release"))
	if err != nil {
		s.writeErr(w, m, "download", err)
		return
	}
	if !rel.Released() {
		problem.Error(w, http.StatusForbidden, crossroads.ReasonNotReleased, "only released results can be downloaded")
		return
	}
	v := s.view(rel, sealed, nil, true)
	var body any = v.Result
	if v.Noisy != nil {
		body = v.Noisy
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.writeErr(w, m, "download", err)
		return
	}
	if err := s.record(r.Context(), m.permit, "download", m.id, m.name, map[string]any{"release": rel.ID, "digest": audit.Digest(b)}); err != nil {
		s.writeErr(w, m, "download", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Repr-Digest", audit.Digest(b))
	http.ServeContent(w, r, "", rel.Decided, bytes.NewReader(b))
}

// ReviewRequest is the body of a review.
type ReviewRequest struct {
	Decision string `json:"decision"` // approve or reject
	Note     string `json:"note,omitempty"`
}

// Reviewers is how many approvals release a held result.
const Reviewers = 2

// postReview records a reviewer's decision on a result held for review:
// two reviewers, neither the requester; one rejection rejects it; the
// second approval releases it, if the differencing check still passes.
func (s *Service) postReview(w http.ResponseWriter, r *http.Request, m *member) {
	var req ReviewRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Decision != DecisionApprove && req.Decision != DecisionReject || len(req.Note) > 2000 {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, `send {"decision": "approve"|"reject", "note": "…"}`)
		return
	}
	ctx := r.Context()
	m.space.queryMu.Lock()
	defer m.space.queryMu.Unlock()
	rel, sealed, err := s.release(ctx, m, r.PathValue("release"))
	if err != nil {
		s.writeErr(w, m, "review", err)
		return
	}
	if rel.Status != ReleaseReview {
		problem.Error(w, http.StatusConflict, crossroads.ReasonReviewConflict, "this result is not held for review")
		return
	}
	if rel.Requester == m.id {
		problem.Error(w, http.StatusConflict, crossroads.ReasonReviewConflict, "the requester of a result cannot review it")
		return
	}
	prev, err := s.cfg.Store.Reviews(ctx, m.permit.ID, rel.ID)
	if err != nil {
		s.writeErr(w, m, "review", err)
		return
	}
	if slices.ContainsFunc(prev, func(p Review) bool { return p.Reviewer == m.id }) {
		problem.Error(w, http.StatusConflict, crossroads.ReasonReviewConflict, "you have decided this result already")
		return
	}
	now := s.cfg.Now().UTC()
	rv := Review{Permit: m.permit.ID, Release: rel.ID, Reviewer: m.id, Decision: req.Decision, Note: req.Note, At: now}
	approvals := 0
	for _, p := range append(prev, rv) {
		if p.Decision == DecisionApprove {
			approvals++
		}
	}
	var hist outputcheck.History
	switch {
	case req.Decision == DecisionReject:
		rel.Status, rel.Decided = ReleaseRejected, now
	case approvals >= Reviewers:
		if hist, err = s.history(ctx, m.space); err != nil {
			s.writeErr(w, m, "review", err)
			return
		}
		rs, err := rules(m.permit)
		if err != nil {
			s.writeErr(w, m, "review", err)
			return
		}
		// What was released since the result was held may now combine with it.
		if f := hist.Check(rs, outputcheck.NewRelease(rel.ID, now, sealed.Query, sealed.Table, sealed.Check)); len(f) > 0 && rs.Action(outputcheck.Differencing) == outputcheck.Fail {
			rel.Status, rel.Decided = ReleaseRefused, now
		} else {
			rel.Status, rel.Decided = ReleaseReleased, now
			hist.Add(outputcheck.NewRelease(rel.ID, now, sealed.Query, sealed.Table, sealed.Check))
		}
	}
	if err := s.record(ctx, m.permit, "review", m.id, m.name, map[string]any{
		"release": rel.ID, "decision": req.Decision, "status": rel.Status, "approvals": approvals}); err != nil {
		s.writeErr(w, m, "review", err)
		return
	}
	if err := s.cfg.Store.AddReview(ctx, rv); errors.Is(err, crossroads.ErrConflict) {
		problem.Error(w, http.StatusConflict, crossroads.ReasonReviewConflict, "you have decided this result already")
		return
	} else if err != nil {
		s.writeErr(w, m, "review", err)
		return
	}
	if rel.Status != ReleaseReview {
		if err := s.cfg.Store.PutRelease(ctx, rel); err != nil {
			s.writeErr(w, m, "review", err)
			return
		}
	}
	if rel.Status == ReleaseReleased {
		hb, err := json.Marshal(hist)
		if err == nil {
			err = s.writeSealed(ctx, m.space, "history", hb)
		}
		if err != nil {
			s.writeErr(w, m, "review", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.view(rel, sealed, append(prev, rv), true))
}
