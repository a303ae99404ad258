package push

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/problem"
)

// Routes are push's routes, for the hub's API.
func (p *Push) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "POST", Pattern: "/v1/mutations/{serviceId}/{operationId}", Access: httpapi.Participant, Handler: http.HandlerFunc(p.publish)},
		{Method: "GET", Pattern: "/v1/subscriptions", Access: httpapi.Participant, Handler: http.HandlerFunc(p.listSubscriptions)},
		{Method: "GET", Pattern: "/v1/subscriptions/{id}", Access: httpapi.Participant, Handler: http.HandlerFunc(p.getSubscription)},
		{Method: "PUT", Pattern: "/v1/subscriptions/{id}", Access: httpapi.Participant, Handler: http.HandlerFunc(p.putSubscription)},
		{Method: "DELETE", Pattern: "/v1/subscriptions/{id}", Access: httpapi.Participant, Handler: http.HandlerFunc(p.deleteSubscription)},
		{Method: "GET", Pattern: "/v1/subscriptions/{id}/events", Access: httpapi.Participant, Handler: http.HandlerFunc(p.events)},
		{Method: "POST", Pattern: "/v1/subscriptions/{id}/ack", Access: httpapi.Participant, Handler: http.HandlerFunc(p.ack)},
		{Method: "GET", Pattern: "/v1/admin/subscriptions/{id}/entries", Access: httpapi.Operator, Handler: http.HandlerFunc(p.listEntries)},
		{Method: "POST", Pattern: "/v1/admin/subscriptions/{id}/redeliver", Access: httpapi.Operator, Handler: http.HandlerFunc(p.redeliver)},
	}
}

// listSubscriptions is GET /v1/subscriptions: the caller's own; an
// operator's: every one, or ?subscriber='s.
func (p *Push) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	who := caller.ID
	if caller.Kind == crossroads.KindOperator {
		who = r.URL.Query().Get("subscriber")
	}
	out := []crossroads.Subscription{}
	for _, s := range p.cfg.Directory.Snapshot().Subscriptions {
		if who == "" || s.Subscriber == who {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": out})
}

func (p *Push) getSubscription(w http.ResponseWriter, r *http.Request) {
	s, _, ok := p.ownSubscription(w, r)
	if !ok {
		return
	}
	out := map[string]any{"subscription": s}
	if s.Delivery == crossroads.DeliveryPull {
		if c, err := p.cfg.Store.Cursor(r.Context(), s.ID); err == nil {
			out["cursor"] = c
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// putSubscription is PUT /v1/subscriptions/{id}: create or replace a
// subscription of the caller's (an operator's: of anyone). Order as for
// integrations: validate, record (RecordApply, action subscribe), write
// at the registers' version validated against.
func (p *Push) putSubscription(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	var s crossroads.Subscription
	if !decodeJSON(w, r, &s, 64<<10) {
		return
	}
	if s.ID != "" && s.ID != r.PathValue("id") {
		p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "the id in the body differs from the path")
		return
	}
	s.ID = r.PathValue("id")
	if s.Subscriber == "" {
		s.Subscriber = caller.ID
	}
	if s.Status == "" {
		s.Status = crossroads.StatusActive
	}
	p.writeSubscription(w, r, caller, s, "subscribe")
}

// deleteSubscription suspends the subscription (the table keeps it).
func (p *Push) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	s, _, ok := p.ownSubscription(w, r)
	if !ok {
		return
	}
	c := *s
	c.Status = crossroads.StatusSuspended
	p.writeSubscription(w, r, caller, c, "unsubscribe")
}

func (p *Push) writeSubscription(w http.ResponseWriter, r *http.Request, caller *crossroads.Participant, s crossroads.Subscription, action string) {
	if s.Subscriber != caller.ID && caller.Kind != crossroads.KindOperator {
		p.problem(w, http.StatusForbidden, crossroads.ReasonNotSubscriber, "participants manage only their own subscriptions")
		return
	}
	if old, ok := p.Subscription(s.ID); ok && old.Subscriber != caller.ID && caller.Kind != crossroads.KindOperator {
		p.problem(w, http.StatusForbidden, crossroads.ReasonNotSubscriber, "this subscription is another participant's")
		return
	}
	recorded := false
	for attempt := 1; ; attempt++ {
		snap := p.cfg.Directory.Snapshot()
		if err := apply.CheckSubscription(&s, p.cfg.Directory); err != nil {
			var ps apply.Problems
			d := problem.New(http.StatusUnprocessableEntity, crossroads.ReasonInvalidSubscription, "the subscription breaks a rule of the registers")
			if errors.As(err, &ps) {
				for _, x := range ps {
					d.Problems = append(d.Problems, problem.Item{Path: x.Path, Message: x.Message})
				}
			}
			problem.Write(w, d)
			return
		}
		if old, ok := p.Subscription(s.ID); ok && equalSubscription(old, &s) {
			writeJSON(w, http.StatusOK, map[string]any{"subscription": s, "changed": false})
			return
		}
		if !recorded {
			rec, err := audit.Event(crossroads.RecordApply, action, caller.ID, r.Header.Get("Crossroads-User"), s)
			if err == nil {
				_, err = p.commit(r.Context(), rec)
			}
			if err != nil {
				p.problem(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the change could not be recorded; nothing was written")
				return
			}
			recorded = true
		}
		err := p.cfg.Directory.Store().Apply(r.Context(), &crossroads.Network{Subscriptions: []crossroads.Subscription{s}, Version: snap.Version})
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, map[string]any{"subscription": s, "changed": true})
			return
		case errors.Is(err, crossroads.ErrStale) && attempt < 3:
			continue
		case errors.Is(err, crossroads.ErrInvalid):
			p.problem(w, http.StatusUnprocessableEntity, crossroads.ReasonInvalidSubscription, "the registers refused the subscription")
			return
		default:
			p.cfg.Logger.Error("push: write subscription", "err", err)
			p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the registers could not be written")
			return
		}
	}
}

func equalSubscription(a, b *crossroads.Subscription) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// listEntries is GET /v1/admin/subscriptions/{id}/entries?state=&after=:
// the outbox of a subscription, without payloads.
func (p *Push) listEntries(w http.ResponseWriter, r *http.Request) {
	q := EntryQuery{Subscription: r.PathValue("id"), State: r.URL.Query().Get("state")}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidCursor, "after must be a sequence number")
			return
		}
		q.After = n
	}
	entries, err := p.cfg.Store.Entries(r.Context(), q)
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the outbox could not be read")
		return
	}
	type row struct {
		Seq         int64  `json:"seq"`
		Publication string `json:"publication"`
		State       string `json:"state"`
		Attempts    int    `json:"attempts"`
		NextAt      string `json:"nextAt,omitempty"`
		LastError   string `json:"lastError,omitempty"`
	}
	out := make([]row, len(entries))
	for i, e := range entries {
		out[i] = row{Seq: e.Seq, Publication: e.Publication.ID, State: e.State, Attempts: e.Attempts, LastError: e.LastError}
		if e.State == StatePending {
			out[i].NextAt = e.NextAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}

type redeliverBody struct {
	Seqs []int64 `json:"seqs,omitempty"` // empty: every dead letter of the subscription
}

// redeliver is POST /v1/admin/subscriptions/{id}/redeliver: an operator
// makes entries pending again (recorded first).
func (p *Push) redeliver(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	id := r.PathValue("id")
	if _, ok := p.Subscription(id); !ok {
		p.problem(w, http.StatusNotFound, crossroads.ReasonUnknownSubscription, "no such subscription")
		return
	}
	var b redeliverBody
	if r.ContentLength != 0 && !decodeJSON(w, r, &b, 64<<10) {
		return
	}
	rec, err := audit.Event(crossroads.RecordDelivery, "redeliver", caller.ID, r.Header.Get("Crossroads-User"), map[string]any{"subscription": id, "seqs": b.Seqs})
	if err == nil {
		_, err = p.commit(r.Context(), rec)
	}
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the redelivery could not be recorded; nothing was changed")
		return
	}
	n, err := p.cfg.Store.Redeliver(r.Context(), id, b.Seqs, p.cfg.Now())
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the outbox could not be written")
		return
	}
	p.metrics.redelivered.Add(float64(n))
	p.poke()
	writeJSON(w, http.StatusOK, map[string]int64{"redelivered": n})
}

func (p *Push) problem(w http.ResponseWriter, status int, reason crossroads.Reason, detail string) {
	problem.Error(w, status, reason, detail)
}

// decodeJSON decodes one JSON object of at most max bytes, strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, max int64) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		problem.Error(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
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
