package push

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

// Event is one entry of the pull feed: a CloudEvent in structured mode
// (JSON), the seal and the receipt as extensions. Data is the minimised
// payload exactly as sealed.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	EffectiveDate   string          `json:"effectivedate"`
	SubjectKind     string          `json:"subjectkind"`
	Subscription    string          `json:"subscription"`
	Publication     string          `json:"publication"`
	Sequence        string          `json:"sequence"`
	Seal            string          `json:"crossroadsseal"`
	Receipt         string          `json:"crossroadsreceipt"`
}

// Feed is the body of GET /v1/subscriptions/{id}/events.
type Feed struct {
	Events []Event `json:"events"`
	// Next is the sequence number to pass as after (and to acknowledge)
	// once these events are processed.
	Next   int64 `json:"next"`
	Cursor int64 `json:"cursor"` // acknowledged so far
}

// ToEvent renders an entry in structured mode.
func ToEvent(e Entry) Event {
	h := binaryHeaders(e)
	return Event{
		SpecVersion: CloudEventsVersion, ID: h["ce-id"], Source: h["ce-source"], Type: h["ce-type"], Subject: h["ce-subject"],
		Time: h["ce-time"], DataContentType: "application/json", Data: e.Sealed.Body, EffectiveDate: h["ce-"+ExtEffectiveDate],
		SubjectKind: h["ce-"+ExtSubjectKind], Subscription: e.Subscription, Publication: e.Publication.ID, Sequence: h["ce-"+ExtSequence],
		Seal: e.Sealed.Seal, Receipt: e.Sealed.Receipt,
	}
}

// ownSubscription returns the caller's subscription of the path, or writes
// the refusal: 404 if none, 403 if another's (operators read any).
func (p *Push) ownSubscription(w http.ResponseWriter, r *http.Request) (*crossroads.Subscription, *crossroads.Participant, bool) {
	caller, _ := crossroads.CallerFrom(r.Context())
	s, ok := p.Subscription(r.PathValue("id"))
	switch {
	case !ok:
		p.problem(w, http.StatusNotFound, crossroads.ReasonUnknownSubscription, "no such subscription")
		return nil, nil, false
	case s.Subscriber != caller.ID && caller.Kind != crossroads.KindOperator:
		p.problem(w, http.StatusForbidden, crossroads.ReasonNotSubscriber, "a participant reads only its own subscriptions")
		return nil, nil, false
	}
	return s, caller, true
}

// events is GET /v1/subscriptions/{id}/events?after=&limit=&wait=.
func (p *Push) events(w http.ResponseWriter, r *http.Request) {
	s, caller, ok := p.ownSubscription(w, r)
	if !ok {
		return
	}
	if s.Subscriber != caller.ID {
		p.problem(w, http.StatusForbidden, crossroads.ReasonNotSubscriber, "only the subscriber reads its feed")
		return
	}
	if s.Delivery != crossroads.DeliveryPull {
		p.problem(w, http.StatusConflict, crossroads.ReasonNotPull, "this subscription is delivered by push")
		return
	}
	q := r.URL.Query()
	cursor, err := p.cfg.Store.Cursor(r.Context(), s.ID)
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the feed could not be read")
		return
	}
	after := cursor
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidCursor, "after must be a sequence number (0 or more)")
			return
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "limit must be 1 to 1000")
			return
		}
	}
	wait := 20 * time.Second
	if v := q.Get("wait"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "wait must be a number of seconds")
			return
		}
		wait = time.Duration(secs) * time.Second
	}
	wait = min(wait, p.cfg.MaxWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		signal := p.feedSignal()
		entries, err := p.cfg.Store.Feed(r.Context(), s.ID, after, limit)
		if err != nil {
			p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the feed could not be read")
			return
		}
		if len(entries) > 0 || wait == 0 {
			f := Feed{Events: make([]Event, len(entries)), Next: after, Cursor: cursor}
			for i, e := range entries {
				f.Events[i] = ToEvent(e)
				f.Next = e.Seq
			}
			writeJSON(w, http.StatusOK, f)
			return
		}
		// Long poll: woken by this node's sealing, or every second for
		// another node's.
		tick := time.NewTimer(time.Second)
		select {
		case <-r.Context().Done():
			tick.Stop()
			return
		case <-deadline.C:
			wait = 0
		case <-signal:
		case <-tick.C:
		}
		tick.Stop()
	}
}

type ackBody struct {
	Seq int64 `json:"seq"`
}

// ack is POST /v1/subscriptions/{id}/ack {"seq": n}: everything up to n
// is processed. The cursor never moves back.
func (p *Push) ack(w http.ResponseWriter, r *http.Request) {
	s, caller, ok := p.ownSubscription(w, r)
	if !ok {
		return
	}
	if s.Subscriber != caller.ID {
		p.problem(w, http.StatusForbidden, crossroads.ReasonNotSubscriber, "only the subscriber acknowledges its feed")
		return
	}
	if s.Delivery != crossroads.DeliveryPull {
		p.problem(w, http.StatusConflict, crossroads.ReasonNotPull, "this subscription is delivered by push")
		return
	}
	var b ackBody
	if !decodeJSON(w, r, &b, 1<<10) {
		return
	}
	if b.Seq < 1 {
		p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidCursor, "seq must be a sequence number of the feed")
		return
	}
	// The acknowledged entry must be one the feed has shown.
	shown, err := p.cfg.Store.Feed(r.Context(), s.ID, b.Seq-1, 1)
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the feed could not be read")
		return
	}
	if len(shown) == 0 || shown[0].Seq != b.Seq {
		p.problem(w, http.StatusBadRequest, crossroads.ReasonInvalidCursor, "seq is not an event of this feed")
		return
	}
	rec, err := audit.Event(crossroads.RecordDelivery, "acknowledge", caller.ID, "", deliveryDetail{Subscription: s.ID, Seq: b.Seq})
	if err == nil {
		_, err = p.commit(r.Context(), rec)
	}
	if err != nil {
		p.problem(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the acknowledgement could not be recorded")
		return
	}
	if err := p.cfg.Store.Ack(r.Context(), s.ID, b.Seq, p.cfg.Now()); err != nil {
		p.problem(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the acknowledgement could not be stored")
		return
	}
	p.metrics.deliveries.WithLabelValues("acknowledged").Inc()
	cursor, err := p.cfg.Store.Cursor(r.Context(), s.ID)
	if err != nil {
		cursor = b.Seq
	}
	writeJSON(w, http.StatusOK, map[string]int64{"cursor": cursor})
}
