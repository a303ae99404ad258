package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/internal/httpjson"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// MaxPayloadDepth bounds the nesting of a mutation's payload.
const MaxPayloadDepth = 32

// Mutation is a parsed mutation body.
type Mutation struct {
	Type        string          // the operation id, if the body names it
	SubjectKind string          // empty: the service's
	Subject     string          // as sent; canonicalised by the publisher's handler
	Effective   time.Time       // midnight UTC for a date
	Payload     json.RawMessage // a JSON object, compacted
	Key         string          // idempotency key
}

type mutationBody struct {
	Type           string          `json:"type,omitempty"`
	SubjectKind    string          `json:"subjectKind,omitempty"`
	Subject        string          `json:"subject"`
	EffectiveDate  string          `json:"effectiveDate"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotencyKey"`
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ParseMutation parses a mutation body: a JSON object with subject,
// effectiveDate (YYYY-MM-DD or RFC 3339), payload (a JSON object, at most
// MaxPayloadDepth deep) and idempotencyKey (1–128 of A-Z a-z 0-9 . _ : -),
// optionally type (the mutation's id) and subjectKind; nothing else, no
// trailing data. Errors wrap crossroads.ErrInvalid and say what is wrong
// in words fit for a problem's detail.
func ParseMutation(b []byte) (Mutation, error) {
	bad := func(format string, args ...any) (Mutation, error) {
		return Mutation{}, fmt.Errorf("%w: %s", crossroads.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if err := minimise.Validate(bytes.NewReader(b), MaxPayloadDepth+1); err != nil {
		return bad("the body is not valid JSON (or nests deeper than %d)", MaxPayloadDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m mutationBody
	if err := dec.Decode(&m); err != nil {
		return bad("the body is not a mutation object (subject, effectiveDate, payload, idempotencyKey; type and subjectKind optional)")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("the body has trailing data")
	}
	if m.Subject == "" || len(m.Subject) > 64 {
		return bad("subject is required (at most 64 bytes)")
	}
	if !keyPattern.MatchString(m.IdempotencyKey) {
		return bad("idempotencyKey is required: 1 to 128 of A-Z a-z 0-9 . _ : -")
	}
	if len(m.Type) > 63 || len(m.SubjectKind) > 32 {
		return bad("type or subjectKind too long")
	}
	eff, err := parseEffective(m.EffectiveDate)
	if err != nil {
		return bad("effectiveDate must be a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	p := bytes.TrimSpace(m.Payload)
	if len(p) == 0 || p[0] != '{' {
		return bad("payload must be a JSON object")
	}
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return bad("payload is not valid JSON")
	}
	return Mutation{Type: m.Type, SubjectKind: m.SubjectKind, Subject: m.Subject, Effective: eff, Payload: c.Bytes(), Key: m.IdempotencyKey}, nil
}

func parseEffective(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, errors.New("bad time")
	}
	return t.UTC(), nil
}

// publishAnswer is the 202 body: how many subscribers, never who.
type publishAnswer struct {
	Publication string `json:"publication"`
	Routed      int    `json:"routed"`
	Duplicate   bool   `json:"duplicate"`
}

// publishDetail is the publication's audit record detail.
type publishDetail struct {
	Publication    string `json:"publication"`
	IdempotencyKey string `json:"idempotencyKey"`
	EffectiveDate  string `json:"effectiveDate"`
	Routed         int    `json:"routed"`
	Digest         string `json:"digest"`
	Error          string `json:"error,omitempty"`
}

// publish is POST /v1/mutations/{serviceId}/{operationId}.
func (p *Push) publish(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	now := p.cfg.Now().UTC()
	svc, ok := p.cfg.Directory.Service(r.PathValue("serviceId"))
	if !ok {
		p.refused(w, http.StatusNotFound, crossroads.ReasonUnknownService, "no such service")
		return
	}
	op, ok := svc.Operation(r.PathValue("operationId"))
	if !ok || op.Kind != crossroads.OperationMutation {
		p.refused(w, http.StatusNotFound, crossroads.ReasonUnknownMutation, "the service declares no such mutation")
		return
	}
	if caller.ID != svc.Provider {
		// Recorded: an authenticated participant tried to speak for an
		// authentic source.
		if rec, err := audit.Event(crossroads.RecordMutation, "publish", caller.ID, "", map[string]string{"service": svc.ID, "operation": op.ID}); err == nil {
			rec.Service, rec.Operation, rec.Provider = svc.ID, op.ID, svc.Provider
			rec.Outcome, rec.Reason, rec.Status = crossroads.OutcomeDenied, crossroads.ReasonNotPublisher, http.StatusForbidden
			if _, err := p.commit(r.Context(), rec); err != nil {
				p.refused(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the refusal could not be recorded")
				return
			}
		}
		p.refused(w, http.StatusForbidden, crossroads.ReasonNotPublisher, "only the service's provider publishes its mutations")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		p.refused(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "send application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxPayload))
	if err != nil {
		p.refused(w, http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the mutation is larger than "+strconv.FormatInt(p.cfg.MaxPayload, 10)+" bytes")
		return
	}
	m, err := ParseMutation(body)
	if err != nil {
		p.refused(w, http.StatusBadRequest, crossroads.ReasonInvalidMutation, trimInvalid(err))
		return
	}
	if m.Type != "" && m.Type != op.ID {
		p.refused(w, http.StatusBadRequest, crossroads.ReasonInvalidMutation, "type differs from the mutation in the path")
		return
	}
	kind := svc.SubjectKind()
	if kind == crossroads.SubjectNone || m.SubjectKind != "" && kindOf(m.SubjectKind) != kindOf(kind) {
		p.refused(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "the subject is not of the service's subject kind")
		return
	}
	subject, err := p.cfg.Kinds.Canonical(kind, m.Subject)
	if err != nil {
		p.refused(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "the subject is not a valid identifier of its kind")
		return
	}
	digest, _ := audit.CanonicalJSON(map[string]any{"service": svc.ID, "operation": op.ID, "subjectKind": kind, "subject": subject,
		"effectiveDate": m.Effective, "payload": m.Payload})
	pub := Publication{Publisher: caller.ID, Service: svc.ID, Operation: op.ID, Key: m.Key, Digest: audit.Digest(digest),
		SubjectKind: kind, Subject: subject, Effective: m.Effective, Payload: m.Payload, Time: now}

	// A retry of a stored publication is answered as the first one was.
	if old, err := p.cfg.Store.Publication(r.Context(), svc.ID, caller.ID, m.Key); err == nil {
		p.duplicate(w, old, pub)
		return
	} else if !errors.Is(err, crossroads.ErrNotFound) {
		p.cfg.Logger.Error("push: read publication", "err", err)
		p.refused(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the outbox could not be read; retry with the same idempotency key")
		return
	}

	subs, _ := p.Route(svc, op, kind, subject, m.Effective, now)
	pub.ID, pub.Routed = newID(), len(subs)
	entries := make([]Entry, len(subs))
	for i, s := range subs {
		entries[i] = Entry{Subscription: s.ID, Subscriber: s.Subscriber, Queue: s.Subscriber + " " + crossroads.SubjectKey(kind, subject),
			Delivery: s.Delivery, State: StatePending, NextAt: now, Since: now}
	}

	// No record, no routing: the record first, then the outbox.
	rec, err := p.publicationRecord(caller.ID, svc, op, pub, "")
	if err == nil {
		var receipt crossroads.Receipt
		if receipt, err = p.commit(r.Context(), rec); err == nil {
			w.Header().Set(pki.HeaderReceipt, receipt.Token)
		}
	}
	if err != nil {
		p.cfg.Logger.Error("push: publication not recorded; refused", "err", err)
		p.metrics.published.WithLabelValues("failed").Inc()
		p.refused(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the publication could not be recorded; nothing was routed, retry with the same idempotency key")
		return
	}
	if err := p.cfg.Store.Publish(r.Context(), pub, entries); err != nil {
		if errors.Is(err, crossroads.ErrConflict) { // the same key, concurrently
			if old, rerr := p.cfg.Store.Publication(r.Context(), svc.ID, caller.ID, m.Key); rerr == nil {
				w.Header().Del(pki.HeaderReceipt)
				p.duplicate(w, old, pub)
				return
			}
		}
		p.cfg.Logger.Error("push: outbox write failed", "publication", pub.ID, "err", err)
		if frec, ferr := p.publicationRecord(caller.ID, svc, op, pub, "outbox write failed"); ferr == nil {
			frec.Outcome, frec.Reason, frec.CorrelationID = crossroads.OutcomeFailed, reasonStoreUnavailable, rec.ExchangeID
			p.commit(r.Context(), frec)
		}
		p.metrics.published.WithLabelValues("failed").Inc()
		w.Header().Del(pki.HeaderReceipt)
		p.refused(w, http.StatusServiceUnavailable, reasonStoreUnavailable, "the publication could not be stored; retry with the same idempotency key")
		return
	}
	p.metrics.published.WithLabelValues("accepted").Inc()
	p.metrics.routed.Add(float64(len(entries)))
	if len(entries) > 0 {
		p.poke()
	}
	writeJSON(w, http.StatusAccepted, publishAnswer{Publication: pub.ID, Routed: pub.Routed})
}

// duplicate answers a retry: as the first publication if it is the same
// mutation, 409 if the key was used for another.
func (p *Push) duplicate(w http.ResponseWriter, old, pub Publication) {
	if old.Digest != pub.Digest {
		p.metrics.published.WithLabelValues("refused").Inc()
		p.refused(w, http.StatusConflict, crossroads.ReasonDuplicateMutation, "this idempotency key was used for another mutation")
		return
	}
	p.metrics.published.WithLabelValues("duplicate").Inc()
	writeJSON(w, http.StatusAccepted, publishAnswer{Publication: old.ID, Routed: old.Routed, Duplicate: true})
}

func (p *Push) publicationRecord(actor string, svc *crossroads.Service, op *crossroads.Operation, pub Publication, failure string) (*crossroads.AuditRecord, error) {
	rec, err := audit.Event(crossroads.RecordMutation, "publish", actor, "", publishDetail{
		Publication: pub.ID, IdempotencyKey: pub.Key, EffectiveDate: pub.Effective.Format(time.RFC3339), Routed: pub.Routed, Digest: pub.Digest, Error: failure,
	})
	if err != nil {
		return nil, err
	}
	rec.Service, rec.Operation, rec.Provider = svc.ID, op.ID, svc.Provider
	rec.SubjectKind, rec.Subject = pub.SubjectKind, pub.Subject
	rec.RequestDigest = pub.Digest
	rec.Status = http.StatusAccepted
	return rec, nil
}

// reasonStoreUnavailable is httpapi's store-unavailable (503).
const reasonStoreUnavailable crossroads.Reason = "store-unavailable"

func (p *Push) refused(w http.ResponseWriter, status int, reason crossroads.Reason, detail string) {
	if status != http.StatusConflict && status != http.StatusServiceUnavailable {
		p.metrics.published.WithLabelValues("refused").Inc()
	}
	problem.Error(w, status, reason, detail)
}

func trimInvalid(err error) string {
	s := err.Error()
	if p := crossroads.ErrInvalid.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }
