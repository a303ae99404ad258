package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/problem"
)

// Accountable integrations (issue 8 item 6, seed 001: which persons have
// files at which actors for which periods).
//
// Order of a change, so that there is never a change without a durable
// record of it:
//
//  1. validate (O(1) in the size of the registers: the directory's
//     in-memory indexes, at the registers' version V);
//  2. commit a RecordIntegration audit record (action register, end or
//     correct; outcome allowed) — if the trail cannot make it durable, the
//     change is refused (503 audit-unavailable) and nothing is written;
//  3. write the change and its history row in one store transaction, on
//     condition that the registers are still at V (an apply in between
//     makes the write fail: it is validated again and retried);
//  4. if the write fails, commit a second record (outcome failed,
//     correlationId naming the first) and answer with the error.
//
// A crash between 2 and 3 leaves a record of a change that did not happen,
// never the reverse; the failed record (4) and the directory's history
// tell the two apart.

// DefaultIntegrationLimits bound each participant's calls to the
// integrations API unless Config.IntegrationLimits overrides them: a
// sustained 20 changes a second, bursts of 100, 4 at a time.
var DefaultIntegrationLimits = crossroads.Limits{RatePerSecond: 20, Burst: 100, MaxConcurrent: 4}

// Reasons of the integrations API.
const (
	// ReasonBackdated (400): from (or a new end) lies before now minus the
	// configured tolerance; only operators may date a file in the past.
	ReasonBackdated crossroads.Reason = "backdated-integration"
	// ReasonInvalidIntegration (422): the integration breaks a rule of the
	// registers (problems lists them).
	ReasonInvalidIntegration crossroads.Reason = "invalid-integration"
	// ReasonIntegrationEnded (409): DELETE of a file whose period is over.
	ReasonIntegrationEnded crossroads.Reason = "integration-ended"
	// ReasonIntegrationNotStarted (409): DELETE of a file that starts in
	// the future (correct its period with PUT instead).
	ReasonIntegrationNotStarted crossroads.Reason = "integration-not-started"
	// ReasonIntegrationConflict (409): another change to the same file won.
	ReasonIntegrationConflict crossroads.Reason = "integration-conflict"
	// ReasonStoreUnavailable (503): the registers could not be written.
	ReasonStoreUnavailable crossroads.Reason = "store-unavailable"
)

// headerUser names the natural person on whose behalf a call is made.
const headerUser = "Crossroads-User"

// integrationBody is the body of PUT and DELETE /v1/integrations.
type integrationBody struct {
	Kind        string    `json:"kind,omitempty"` // subject kind; default person
	Person      string    `json:"person"`         // the subject's id, any accepted spelling
	Participant string    `json:"participant,omitempty"`
	Sector      string    `json:"sector"`
	Capacity    string    `json:"capacity"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to,omitzero"`
}

// user returns the Crossroads-User header, or writes the refusal.
func user(w http.ResponseWriter, r *http.Request) (string, bool) {
	u := r.Header.Get(headerUser)
	if u == "" {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonMissingUser, "Crossroads-User is required: the natural person on whose behalf the change is made")
		return "", false
	}
	if len(u) > 128 {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-User must be 1 to 128 printable characters")
		return "", false
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] > 0x7e {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-User must be 1 to 128 printable characters")
			return "", false
		}
	}
	return u, true
}

func (a *API) putIntegration(w http.ResponseWriter, r *http.Request) {
	a.changeIntegration(w, r, false)
}

// deleteIntegration ends a file: its period closes now. Nothing is
// removed; the history keeps every version.
func (a *API) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	a.changeIntegration(w, r, true)
}

func (a *API) changeIntegration(w http.ResponseWriter, r *http.Request, end bool) {
	caller, _ := crossroads.CallerFrom(r.Context())
	release, retry, ok := a.intLimiter.Acquire(caller.ID, "", nil)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(retry)))
		problem.Error(w, http.StatusTooManyRequests, crossroads.ReasonRateLimited, "too many changes to the person directory; retry later")
		return
	}
	defer release()
	usr, ok := user(w, r)
	if !ok {
		return
	}
	var b integrationBody
	if !decodeJSON(w, r, &b) {
		return
	}
	operator := caller.Kind == crossroads.KindOperator
	holder := caller.ID
	if b.Participant != "" && b.Participant != caller.ID {
		if !operator {
			problem.Error(w, http.StatusForbidden, "forbidden", "participants manage only their own integrations")
			return
		}
		holder = b.Participant
	}
	now := a.cfg.Now().UTC()
	if b.From.IsZero() && !end {
		b.From = now.Truncate(time.Second)
	}
	in := crossroads.Integration{Kind: b.Kind, Person: b.Person, Participant: holder, Sector: b.Sector, Capacity: b.Capacity, From: b.From.UTC(), To: b.To.UTC()}
	if b.To.IsZero() {
		in.To = time.Time{}
	}
	if a.cfg.Audit == nil {
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "changes to the person directory are recorded in the audit trail, which is not available")
		return
	}
	// To the second: a file dated "now" by a client whose clock runs a
	// little behind, or defaulted to this second, is not backdated.
	earliest := now.Add(-a.cfg.IntegrationBackdate).Truncate(time.Second)
	store := a.cfg.Directory.Store()
	var first *crossroads.AuditRecord
	var receipt crossroads.Receipt
	for attempt := 1; ; attempt++ {
		snap := a.cfg.Directory.Current()
		if err := apply.CheckIntegration(&in, a.cfg.Kinds, snap); err != nil {
			a.integrationInvalid(w, r, first, err)
			return
		}
		old, found := findIntegration(a.cfg.Directory.Integrations(crossroads.SubjectKey(in.Kind, in.Person), in.Participant), in)
		var action string
		switch {
		case end && !found:
			a.integrationRefused(w, r, first, http.StatusNotFound, "not-found", "no such integration of yours")
			return
		case end && !old.To.IsZero() && !old.To.After(now):
			a.integrationRefused(w, r, first, http.StatusConflict, ReasonIntegrationEnded, "the file's period is already over")
			return
		case end && !old.From.Before(now):
			a.integrationRefused(w, r, first, http.StatusConflict, ReasonIntegrationNotStarted, "the file has not started; correct its period with PUT instead")
			return
		case end:
			action, in.To = crossroads.IntegrationEnd, now
		case !found:
			action = crossroads.IntegrationRegister
			if !operator && (in.From.Before(earliest) || !in.To.IsZero() && in.To.Before(earliest)) {
				a.integrationRefused(w, r, first, http.StatusBadRequest, ReasonBackdated, "from and to may not lie in the past: only an operator may backdate a file")
				return
			}
		case old.To.Equal(in.To) && first == nil:
			writeJSON(w, http.StatusOK, map[string]any{"integration": old, "changed": false})
			return
		case old.To.Equal(in.To):
			a.integrationRefused(w, r, first, http.StatusConflict, ReasonIntegrationConflict, "the file changed meanwhile; nothing was written, read it and try again")
			return
		default:
			action = crossroads.IntegrationCorrect
			if !operator && (!in.To.IsZero() && in.To.Before(earliest) || !old.To.IsZero() && old.To.Before(earliest)) {
				a.integrationRefused(w, r, first, http.StatusBadRequest, ReasonBackdated, "a file's end may not be moved from or into the past: only an operator may")
				return
			}
		}
		ev := crossroads.IntegrationEvent{Action: action, Integration: in, Actor: caller.ID, User: usr}
		if first == nil {
			rec := integrationRecord(ev, now)
			var err error
			if receipt, err = a.cfg.Audit.Commit(r.Context(), rec); err != nil {
				a.cfg.Logger.Error("integration: audit", "err", err)
				problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the change could not be recorded in the audit trail; nothing was written")
				return
			}
			first = rec
		} else if first.Action != action {
			a.integrationRefused(w, r, first, http.StatusConflict, ReasonIntegrationConflict, "the file changed meanwhile; nothing was written, read it and try again")
			return
		}
		done, err := store.ChangeIntegration(r.Context(), ev, snap.Version())
		if errors.Is(err, crossroads.ErrStale) && attempt < 3 {
			continue // the registers changed: validate again against them
		}
		if err != nil {
			a.integrationWriteFailed(w, r, first, err)
			return
		}
		w.Header().Set("Crossroads-Receipt", receipt.Token)
		status := http.StatusOK
		if action == crossroads.IntegrationRegister {
			status = http.StatusCreated
		}
		writeJSON(w, status, map[string]any{"integration": done.Integration, "changed": true, "action": action, "seq": done.Seq, "auditRecord": first.ExchangeID})
		return
	}
}

func findIntegration(list []crossroads.Integration, in crossroads.Integration) (crossroads.Integration, bool) {
	for _, o := range list {
		if o.Sector == in.Sector && o.Capacity == in.Capacity && o.From.Equal(in.From) && apply.CanonicalKind(o.Kind) == apply.CanonicalKind(in.Kind) {
			return o, true
		}
	}
	return crossroads.Integration{}, false
}

// integrationDetail is the content of a RecordIntegration record: the
// file after the change, in the shape of crossroads.Integration (the
// subject is the record's own), fields in key order so that the JSON is
// canonical (sorted keys, compact).
type integrationDetail struct {
	Capacity    string    `json:"capacity"`
	From        time.Time `json:"from"`
	Participant string    `json:"participant"` // who holds the file (the requester acts, possibly an operator)
	Sector      string    `json:"sector"`
	To          time.Time `json:"to,omitzero"`
}

// integrationRecord is the audit record of a change to the person directory.
func integrationRecord(ev crossroads.IntegrationEvent, now time.Time) *crossroads.AuditRecord {
	in := ev.Integration
	kind := in.Kind
	if kind == "" {
		kind = crossroads.SubjectPerson
	}
	detail, _ := json.Marshal(integrationDetail{Capacity: in.Capacity, From: in.From.UTC(), Participant: in.Participant, Sector: in.Sector, To: in.To.UTC()})
	return &crossroads.AuditRecord{
		Kind: crossroads.RecordIntegration, Action: ev.Action, ExchangeID: newRecordID(), Time: now,
		Requester: ev.Actor, User: ev.User, SubjectKind: kind, Subject: in.Person,
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed, Detail: detail,
	}
}

func newRecordID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// integrationFailed records that the change recorded in first did not happen. Its
// own failure is logged: the first record stays, with the history showing
// that nothing changed.
func (a *API) integrationFailed(ctx context.Context, first *crossroads.AuditRecord, reason crossroads.Reason) {
	if first == nil {
		return
	}
	rec := *first
	rec.ExchangeID, rec.CorrelationID, rec.Time = newRecordID(), first.ExchangeID, a.cfg.Now().UTC()
	rec.Outcome, rec.Reason = crossroads.OutcomeFailed, reason
	if _, err := a.cfg.Audit.Commit(context.WithoutCancel(ctx), &rec); err != nil {
		a.cfg.Logger.Error("integration: audit of a failed change", "record", first.ExchangeID, "err", err)
	}
}

func (a *API) integrationRefused(w http.ResponseWriter, r *http.Request, first *crossroads.AuditRecord, status int, reason crossroads.Reason, detail string) {
	a.integrationFailed(r.Context(), first, reason)
	problem.Error(w, status, reason, detail)
}

func (a *API) integrationInvalid(w http.ResponseWriter, r *http.Request, first *crossroads.AuditRecord, err error) {
	a.integrationFailed(r.Context(), first, ReasonInvalidIntegration)
	p := problem.New(http.StatusUnprocessableEntity, ReasonInvalidIntegration, "the integration is invalid; nothing was written")
	var probs apply.Problems
	if errors.As(err, &probs) {
		for _, it := range probs {
			p.Problems = append(p.Problems, problem.Item{Path: strings.TrimPrefix(strings.TrimPrefix(it.Path, "integration"), "."), Message: it.Message})
		}
	}
	problem.Write(w, p)
}

func (a *API) integrationWriteFailed(w http.ResponseWriter, r *http.Request, first *crossroads.AuditRecord, err error) {
	switch {
	case errors.Is(err, crossroads.ErrNotFound):
		a.integrationRefused(w, r, first, http.StatusNotFound, "not-found", "no such integration of yours")
	case errors.Is(err, crossroads.ErrStale):
		a.integrationRefused(w, r, first, http.StatusConflict, ReasonConcurrentChange, "the registers kept changing; nothing was written, try again")
	case errors.Is(err, crossroads.ErrConflict):
		a.integrationRefused(w, r, first, http.StatusConflict, ReasonIntegrationConflict, "the file changed meanwhile; nothing was written, read it and try again")
	case errors.Is(err, crossroads.ErrInvalid):
		a.integrationFailed(r.Context(), first, ReasonInvalidIntegration)
		problem.Error(w, http.StatusUnprocessableEntity, ReasonInvalidIntegration, "the integration is invalid; nothing was written")
	default:
		a.cfg.Logger.Error("integration: write", "err", err)
		a.integrationRefused(w, r, first, http.StatusServiceUnavailable, ReasonStoreUnavailable, "the directory could not be written; nothing was changed")
	}
}

// subjectQuery reads ?person= and ?kind= (default person), canonicalising
// the id by the kind's scheme; an empty person means all.
func (a *API) subjectQuery(w http.ResponseWriter, r *http.Request) (person, kind string, ok bool) {
	q := r.URL.Query()
	kind = apply.CanonicalKind(q.Get("kind"))
	v := q.Get("person")
	if v == "" {
		return "", kind, true
	}
	c, err := a.cfg.Kinds.Canonical(kind, v)
	if err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "person is not a valid identifier of its kind")
		return "", "", false
	}
	return c, kind, true
}

// maxHistoryPage bounds a page of the integration history.
const maxHistoryPage = 1000

// integrationHistory serves GET /v1/audit/integrations to auditors and
// operators: the person directory's history, filtered by ?person= (with
// ?kind=) and ?participant=, paged by ?after= (the next cursor of the
// previous page) and ?limit= (default 100, at most 1000). The search is
// itself recorded in the trail (RecordAuditSearch) before it is answered.
func (a *API) integrationHistory(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	usr, ok := user(w, r)
	if !ok {
		return
	}
	person, kind, ok := a.subjectQuery(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	hq := crossroads.HistoryQuery{Kind: kind, Person: person, Participant: q.Get("participant"), Limit: 100}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "after must be the next cursor of a previous page")
			return
		}
		hq.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryPage {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "limit must be 1 to 1000")
			return
		}
		hq.Limit = n
	}
	if a.cfg.Audit == nil {
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "searches of the directory's history are recorded in the audit trail, which is not available")
		return
	}
	detail, _ := json.Marshal(map[string]any{"what": "integration-history", "participant": hq.Participant, "after": hq.After, "limit": hq.Limit})
	rec := &crossroads.AuditRecord{Kind: crossroads.RecordAuditSearch, Action: "search", ExchangeID: newRecordID(), Time: a.cfg.Now().UTC(),
		Requester: caller.ID, User: usr, Subject: person, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed, Detail: detail}
	if person != "" {
		rec.SubjectKind = kind
		if rec.SubjectKind == "" {
			rec.SubjectKind = crossroads.SubjectPerson
		}
	}
	if _, err := a.cfg.Audit.Commit(r.Context(), rec); err != nil {
		a.cfg.Logger.Error("integration history: audit", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the search could not be recorded in the audit trail")
		return
	}
	events, err := a.cfg.Directory.Store().IntegrationHistory(r.Context(), hq)
	if err != nil {
		a.cfg.Logger.Error("integration history", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, ReasonStoreUnavailable, "the directory's history could not be read")
		return
	}
	if events == nil {
		events = []crossroads.IntegrationEvent{}
	}
	out := map[string]any{"events": events}
	if len(events) == hq.Limit {
		out["next"] = strconv.FormatInt(events[len(events)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}
