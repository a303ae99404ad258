package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Event builds the audit record of an act on the registers or the trail
// (design §2): kind is one of the crossroads.Record* event kinds, action
// says what was done (register, end, correct, apply, issue, revoke,
// rotate, search…), actor is the participant who acted (an operator, an
// auditor, an institution; for offline commands the hub's own id) and
// user the natural person, when known. detail is the event's content; it
// is stored as canonical JSON (object keys sorted, no insignificant
// space) and encrypted with the record. The record gets a fresh event id
// ("ev-…"), the current time and the outcome allowed.
//
// The caller commits it with Trail.Commit (crossroads.AuditLog) before it
// acknowledges the act, and refuses the act when Commit fails:
//
//	rec, err := audit.Event(crossroads.RecordKey, "rotate", pki.HubParticipant, "", map[string]any{"key": "kek", "id": newID})
//	if err == nil {
//		_, err = trail.Commit(ctx, rec)
//	}
//	if err != nil { /* refuse: the act is not recorded */ }
//
// Set rec.Subject and rec.SubjectKind for an event about a person or an
// enterprise: the subject then sees it in their own view.
func Event(kind, action, actor, user string, detail any) (*crossroads.AuditRecord, error) {
	if kind == crossroads.RecordExchange || action == "" || actor == "" {
		return nil, fmt.Errorf("audit: an event needs a kind, an action and an actor: %w", crossroads.ErrInvalid)
	}
	d, err := CanonicalJSON(detail)
	if err != nil {
		return nil, err
	}
	return &crossroads.AuditRecord{
		Kind: kind, Action: action, ExchangeID: NewEventID(), Time: time.Now().UTC(),
		Requester: actor, User: user, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed,
		Detail: d,
	}, nil
}

// IntegrationEvent builds the event of a change to the person directory:
// the subject of the record is the integration's subject (so that they see
// it at /v1/me/files or /v1/enterprise/files) and the detail is the
// integration as it is after the change (for "end": with its To set).
// action is register, end or correct; actor the participant whose file it
// is, or the operator who changed it.
func IntegrationEvent(action, actor, user string, in crossroads.Integration) (*crossroads.AuditRecord, error) {
	rec, err := Event(crossroads.RecordIntegration, action, actor, user, in)
	if err != nil {
		return nil, err
	}
	rec.Subject = in.Person
	rec.SubjectKind = in.Kind
	if rec.SubjectKind == "" {
		rec.SubjectKind = crossroads.SubjectPerson
	}
	return rec, nil
}

// NewEventID returns a fresh, random event id.
func NewEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "ev-" + hex.EncodeToString(b)
}

// CanonicalJSON encodes v as canonical JSON: object keys sorted, numbers
// as written, no insignificant space. nil gives nil.
func CanonicalJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: event detail: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("audit: event detail: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil { // maps are encoded with sorted keys
		return nil, fmt.Errorf("audit: event detail: %w", err)
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// Digest is the "sha-256=:base64:" digest (RFC 9530 form) of b, as the
// records write digests.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
}
