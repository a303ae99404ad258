// Package crossroads holds the domain types of the Crossroads hub and the
// narrow interfaces through which the rest of the code reaches storage, the
// audit trail and the network. Everything here is plain data: no I/O.
package crossroads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status values shared by participants and authorisations.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusRevoked   = "revoked" // authorisations only
)

// Participant kinds.
const (
	KindInstitution     = "institution"      // a client institution that consumes services
	KindAuthenticSource = "authentic-source" // a provider of services
	KindNationalBackend = "national-backend" // a peer hub (federation profile)
	KindOperator        = "operator"         // runs the hub; uses the admin API
	KindAuditor         = "auditor"          // reads the audit trail
	// KindEnterpriseRepresentative represents one company (Participant.
	// Enterprise) and reads the trail about it (/v1/enterprise/…).
	KindEnterpriseRepresentative = "enterprise-representative"
)

// Participant is an institution, national backend or operator of the network.
type Participant struct {
	ID              string `json:"id" yaml:"id"`
	Name            string `json:"name" yaml:"name"`
	Kind            string `json:"kind" yaml:"kind"`
	Status          string `json:"status" yaml:"status"`
	IncidentContact string `json:"incidentContact,omitempty" yaml:"incidentContact,omitempty"`
	// Enterprise is, for a participant of kind enterprise-representative,
	// the enterprise number (CBE, canonical) of the company it represents.
	Enterprise string `json:"enterprise,omitempty" yaml:"enterprise,omitempty"`
	// Country is, for a participant of kind national-backend, its ISO
	// 3166-1 alpha-2 country code (the federation gateway's origin).
	Country string `json:"country,omitempty" yaml:"country,omitempty"`
}

// Subject kinds: what an exchange, an integration or a capacity is about
// (seed 001: a unique identification key for every person and company).
// Each kind has its own identifier scheme (personid.Kinds).
const (
	SubjectNone       = "none"       // a service about no one (reference data)
	SubjectPerson     = "person"     // natural persons: INSZ/NISS by default
	SubjectEnterprise = "enterprise" // enterprises and establishment units (CBE numbers)
)

// Service is an offering of an authentic source, reached through the hub.
// Only its declared operations can be called: the hub matches every call
// against them and builds the provider URL itself.
type Service struct {
	ID             string `json:"id" yaml:"id"`
	Provider       string `json:"provider" yaml:"provider"`
	BaseURL        string `json:"baseUrl" yaml:"baseUrl"`
	Description    string `json:"description,omitempty" yaml:"description,omitempty"`
	Classification int    `json:"classification" yaml:"classification"` // data classification 0–4 (seed 001)
	// Fields lists, as JSON pointers (RFC 6901), what the service may return.
	Fields []string `json:"fields" yaml:"fields"`
	// Subject is the kind of subject the service is about: SubjectPerson,
	// SubjectEnterprise or SubjectNone. Empty: read from ConcernsPerson.
	Subject string `json:"subject,omitempty" yaml:"subject,omitempty"`
	// ConcernsPerson is the wave-1 spelling of Subject: person (still read
	// from existing network files; SubjectKind prefers Subject).
	ConcernsPerson bool `json:"concernsPerson,omitempty" yaml:"concernsPerson,omitempty"`
	// Operations are the calls the service offers; a service without any
	// cannot be called.
	Operations []Operation `json:"operations,omitempty" yaml:"operations,omitempty"`
}

// SubjectKind returns the kind of subject the service is about.
func (s *Service) SubjectKind() string {
	switch {
	case s.Subject != "":
		return s.Subject
	case s.ConcernsPerson:
		return SubjectPerson
	default:
		return SubjectNone
	}
}

// Operation returns the service's operation with the given id.
func (s *Service) Operation(id string) (*Operation, bool) {
	for i := range s.Operations {
		if s.Operations[i].ID == id {
			return &s.Operations[i], true
		}
	}
	return nil, false
}

// Operation is one call a service offers: a method and a path template
// relative to the service's base URL. A template has literal segments and
// typed parameters: {subject} (the subject the exchange is about, validated
// by the scheme of the service's subject kind), {name} (a safe segment),
// {name:int} and {name:date} (YYYY-MM-DD).
type Operation struct {
	ID     string `json:"id" yaml:"id"`
	Method string `json:"method" yaml:"method"` // GET, POST, PUT, PATCH or DELETE
	Path   string `json:"path" yaml:"path"`     // e.g. /persons/{subject}
	// Query lists the only query parameters accepted (none when empty).
	Query []string `json:"query,omitempty" yaml:"query,omitempty"`
	// Fields lists, as JSON pointers, what this operation may return; empty:
	// the service's Fields.
	Fields []string `json:"fields,omitempty" yaml:"fields,omitempty"`
	// Body is the media type of the request body the operation accepts
	// (e.g. application/json); empty: the operation takes no body.
	Body string `json:"body,omitempty" yaml:"body,omitempty"`
	// Kind is OperationCall ("") or OperationMutation (subscription.go).
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
}

// Capacity is the role in which a participant holds a file on a person,
// e.g. sector "17" (unemployment) capacity "beneficiary".
type Capacity struct {
	Sector string `json:"sector" yaml:"sector"`
	Code   string `json:"code" yaml:"code"`
	// Kind is the subject kind the capacity is held on; empty: person.
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
}

// WholePayload, as a permitted field, grants the entire response (the only
// way a non-JSON response can pass).
const WholePayload = ""

// Authorisation is a public deliberation or data permit.
type Authorisation struct {
	ID        string   `json:"id" yaml:"id"`
	Reference string   `json:"reference" yaml:"reference"` // public reference, e.g. deliberation number
	Grantee   string   `json:"grantee" yaml:"grantee"`
	Services  []string `json:"services" yaml:"services"`
	Purposes  []string `json:"purposes" yaml:"purposes"`
	// Fields maps a service id to the JSON pointers the grantee may receive.
	// A pointer of "" (WholePayload) grants the whole response.
	Fields     map[string][]string `json:"fields" yaml:"fields"`
	Capacities []Capacity          `json:"capacities,omitempty" yaml:"capacities,omitempty"`
	// Operations maps a service id to the operation ids granted. A service
	// absent from the map is granted only its GET operations (and HEAD).
	Operations map[string][]string `json:"operations,omitempty" yaml:"operations,omitempty"`
	ValidFrom  time.Time           `json:"validFrom" yaml:"validFrom"`
	ValidTo    time.Time           `json:"validTo" yaml:"validTo"` // exclusive; zero means open-ended
	Status     string              `json:"status" yaml:"status"`
	Limits     *Limits             `json:"limits,omitempty" yaml:"limits,omitempty"`
	Kind       string              `json:"kind,omitempty" yaml:"kind,omitempty"`     // "" (a deliberation) or KindDataPermit (permit.go)
	Permit     *Permit             `json:"permit,omitempty" yaml:"permit,omitempty"` // the terms of a data permit
}

// Limits bound the traffic a participant or authorisation may send.
type Limits struct {
	RatePerSecond float64 `json:"ratePerSecond,omitempty" yaml:"ratePerSecond,omitempty"`
	Burst         int     `json:"burst,omitempty" yaml:"burst,omitempty"`
	MaxConcurrent int     `json:"maxConcurrent,omitempty" yaml:"maxConcurrent,omitempty"`
}

// ActiveAt reports whether the authorisation is active at t.
func (a *Authorisation) ActiveAt(t time.Time) bool {
	return a.Status == StatusActive && !t.Before(a.ValidFrom) && (a.ValidTo.IsZero() || t.Before(a.ValidTo))
}

// GrantsOperation reports whether the authorisation grants op of service:
// explicitly through Operations, or, when the service is absent from
// Operations, because op is a GET operation.
func (a *Authorisation) GrantsOperation(service string, op *Operation) bool {
	ids, ok := a.Operations[service]
	if !ok {
		return op.Method == "GET"
	}
	for _, id := range ids {
		if id == op.ID {
			return true
		}
	}
	return false
}

// Integration records that a participant has a file on a subject (a person
// or, with Kind enterprise, an enterprise) in a capacity for a period: one
// row of the reference directory (seed 001).
type Integration struct {
	// Kind is the subject kind; empty: person.
	Kind        string    `json:"kind,omitempty" yaml:"kind,omitempty"`
	Person      string    `json:"person" yaml:"person"` // canonical subject id (of Kind's scheme)
	Participant string    `json:"participant" yaml:"participant"`
	Sector      string    `json:"sector" yaml:"sector"`
	Capacity    string    `json:"capacity" yaml:"capacity"`
	From        time.Time `json:"from" yaml:"from"`
	To          time.Time `json:"to,omitempty" yaml:"to,omitempty"` // exclusive; zero means open-ended
}

// ActiveAt reports whether the integration's period contains t.
func (i *Integration) ActiveAt(t time.Time) bool {
	return !t.Before(i.From) && (i.To.IsZero() || t.Before(i.To))
}

// Reason explains a decision or a refusal. The set is part of the public API.
type Reason string

// Decision and refusal reasons.
const (
	ReasonAllowed                Reason = "allowed"
	ReasonUnknownService         Reason = "unknown-service"
	ReasonNoAuthorisation        Reason = "no-authorisation"
	ReasonPurposeNotCovered      Reason = "purpose-not-covered"
	ReasonAuthorisationNotActive Reason = "authorisation-not-active"
	ReasonNoIntegration          Reason = "no-integration"
	ReasonCapacityNotCovered     Reason = "capacity-not-covered"
	ReasonParticipantSuspended   Reason = "participant-suspended"
	ReasonProviderSuspended      Reason = "provider-suspended"
	ReasonUnknownParticipant     Reason = "unknown-participant"
	ReasonOperationNotCovered    Reason = "operation-not-covered" // 403: the authorisation does not grant the operation

	// The call matches no declared operation.
	ReasonUnknownOperation Reason = "unknown-operation"      // 404: no operation's path matches
	ReasonMethodNotAllowed Reason = "method-not-allowed"     // 405 (+ Allow): the path matches, the method does not
	ReasonUnknownParameter Reason = "unknown-parameter"      // 400: a query parameter the operation does not declare
	ReasonInvalidParameter Reason = "invalid-parameter"      // 400: a typed path parameter that does not parse
	ReasonSubjectMismatch  Reason = "subject-mismatch"       // 400: Crossroads-Subject differs from the subject in the path
	ReasonUnsupportedMedia Reason = "unsupported-media-type" // 415: body of another type than declared, or a body where none is
	ReasonCrossSite        Reason = "cross-site-request"     // 403: a state-changing admin request from another site (Origin, Sec-Fetch-Site)

	// Bad input (400).
	ReasonInvalidSubject     Reason = "invalid-subject"
	ReasonMissingSubject     Reason = "missing-subject"
	ReasonMissingPurpose     Reason = "missing-purpose"
	ReasonMissingUser        Reason = "missing-user"
	ReasonInvalidHeader      Reason = "invalid-header"
	ReasonInvalidPath        Reason = "invalid-path"
	ReasonBodyTooLarge       Reason = "body-too-large"
	ReasonInvalidBody        Reason = "invalid-body"
	ReasonCertificateError   Reason = "certificate-required"
	ReasonCertificateRevoked Reason = "certificate-revoked"

	// Failures after an allowed decision.
	ReasonProviderRejected      Reason = "provider-rejected"      // the provider's own 4xx, without its body
	ReasonNotFoundAtProvider    Reason = "not-found-at-provider"  // 404 from the provider, without its body
	ReasonProviderConflict      Reason = "provider-conflict"      // 409 from the provider, without its body
	ReasonProviderUnprocessable Reason = "provider-unprocessable" // 422 from the provider, without its body
	ReasonProviderError         Reason = "provider-error"         // 502
	ReasonProviderTimeout       Reason = "provider-timeout"       // 504
	ReasonProviderUnreachable   Reason = "provider-unreachable"   // 502
	ReasonResponseNotGranted    Reason = "response-not-granted"   // 502: non-JSON without whole-payload grant
	ReasonAuditUnavailable      Reason = "audit-unavailable"      // 503
	ReasonRateLimited           Reason = "rate-limited"           // 429
	ReasonOverloaded            Reason = "overloaded"             // 503
)

// Decision is the result of the preventive check.
type Decision struct {
	Allowed       bool
	Reason        Reason
	Authorisation *Authorisation // the covering authorisation, when one was found
	Fields        []string       // permitted JSON pointers for the service
}

// Outcome of an exchange, as recorded in the audit trail.
const (
	OutcomeAllowed = "allowed" // decided allowed and released
	OutcomeDenied  = "denied"  // refused by the preventive check or input validation
	OutcomeFailed  = "failed"  // allowed, but the provider or the hub failed
)

// Record kinds. Besides exchanges, whoever acts on the registers or the
// trail leaves a record in the same verifiable log (design §2).
const (
	RecordExchange     = ""               // an exchange through the hub (the default)
	RecordIntegration  = "integration"    // a change to the person directory
	RecordApply        = "register-apply" // a change to the registers (apply)
	RecordCertificate  = "certificate"    // a certificate issued, renewed or revoked
	RecordKey          = "key"            // a key created, rotated or destroyed
	RecordAuditSearch  = "audit-search"   // an auditor's search of the trail
	RecordAbuseSummary = "abuse-summary"  // refusals of one actor in a window, summarised

	// Beyond request/response (each item or delivery that carries data is
	// also an exchange record of its own).
	RecordMutation   = "mutation"   // a mutation published by an authentic source, routed to subscribers (push)
	RecordDelivery   = "delivery"   // a mutation delivered, acknowledged, dead-lettered or redelivered (push)
	RecordBatch      = "batch"      // a batch consultation submitted, fetched or expired
	RecordFederation = "federation" // the federation gateway: upload, download, audit download, callback, member change
	RecordSPE        = "spe"        // secure processing: permit, workspace, transfer, query, release, review, halt
	RecordConsole    = "console"    // a console session opened or closed (its acts are recorded as their API twins)
)

// AuditRecord is what the hub records of every exchange, allowed, denied or
// failed, and of every act on the registers or the trail (Kind). It holds
// personal data (the subject), so it is stored encrypted.
type AuditRecord struct {
	Kind             string    `json:"kind,omitempty"`   // RecordExchange (empty) or an event kind
	Action           string    `json:"action,omitempty"` // for events: e.g. register, end, correct, apply, issue, revoke, rotate, search
	ExchangeID       string    `json:"exchangeId"`
	Time             time.Time `json:"time"`
	Requester        string    `json:"requester"`
	User             string    `json:"user,omitempty"`
	Service          string    `json:"service,omitempty"`
	Provider         string    `json:"provider,omitempty"`
	SubjectKind      string    `json:"subjectKind,omitempty"` // kind of Subject; empty: person
	Subject          string    `json:"subject,omitempty"`
	Purpose          string    `json:"purpose,omitempty"`
	AuthorisationID  string    `json:"authorisationId,omitempty"`
	AuthorisationRef string    `json:"authorisationRef,omitempty"`
	CorrelationID    string    `json:"correlationId,omitempty"`
	Operation        string    `json:"operation,omitempty"` // the service operation matched
	Method           string    `json:"method,omitempty"`
	Target           string    `json:"target,omitempty"` // canonical request target asked of the provider (length-capped)
	Outcome          string    `json:"outcome"`
	Reason           Reason    `json:"reason"`
	ProviderStatus   int       `json:"providerStatus,omitempty"`
	RequestDigest    string    `json:"requestDigest,omitempty"`  // "sha-256=:base64:" of the request body
	ResponseDigest   string    `json:"responseDigest,omitempty"` // of the released (minimised) body
	Status           int       `json:"status,omitempty"`         // HTTP status released to the requester
	ContentType      string    `json:"contentType,omitempty"`    // content type released to the requester
	// Detail is an event's own content (canonical JSON; e.g. the integration
	// changed, the digest of an applied diff), encrypted with the record.
	Detail        json.RawMessage `json:"detail,omitempty"`
	LatencyMicros int64           `json:"latencyMicros"`
}

// Receipt is the hub's signed promise that a record will be included in the
// verifiable log (design §3).
type Receipt struct {
	ExchangeID string `json:"exchangeId"`
	// Token is the compact, signed form sent in the Crossroads-Receipt header.
	Token string `json:"token"`
}

// AuditLog makes audit records durable. Commit returns only once rec is
// durable; the caller must not release anything before that. An error means
// the record is not durable and nothing may be released.
type AuditLog interface {
	Commit(ctx context.Context, rec *AuditRecord) (Receipt, error)
}

// Network is a set of register entries: the content of a network.yaml, or
// a snapshot of the registers.
type Network struct {
	Participants   []Participant   `json:"participants,omitempty" yaml:"participants,omitempty"`
	Services       []Service       `json:"services,omitempty" yaml:"services,omitempty"`
	Authorisations []Authorisation `json:"authorisations,omitempty" yaml:"authorisations,omitempty"`
	Integrations   []Integration   `json:"integrations,omitempty" yaml:"integrations,omitempty"`
	Subscriptions  []Subscription  `json:"subscriptions,omitempty" yaml:"subscriptions,omitempty"` // subscription.go
	// Version is the version of the registers (participants, services,
	// authorisations) that a snapshot was read at (RegisterStore.Registers).
	// Given to Apply, non-zero, it is a precondition: the apply fails with
	// ErrConflict if the registers have changed since (optimistic
	// concurrency). Not part of a network file.
	Version int64 `json:"-" yaml:"-"`
}

// RegisterStore persists the registers. Every method is atomic.
type RegisterStore interface {
	// Registers returns all participants, services and authorisations.
	Registers(ctx context.Context) (*Network, error)
	// Apply upserts every entry of n (integrations included) in one
	// transaction: all or nothing. When n.Version is non-zero the registers
	// must still be at that version, or Apply writes nothing and fails with
	// ErrConflict. An Apply that writes a participant, service or
	// authorisation bumps the version.
	Apply(ctx context.Context, n *Network) error
	// ChangeIntegration makes one accountable change to the person
	// directory and appends it to the directory's history, in one
	// transaction: IntegrationRegister inserts ev.Integration (ErrConflict
	// if its key exists); IntegrationEnd and IntegrationCorrect replace the
	// end of the existing one (ErrNotFound if absent). When version is
	// non-zero the registers must still be at that version (ErrConflict
	// otherwise): the change was validated against them. It returns the
	// event as recorded (Seq and At set).
	ChangeIntegration(ctx context.Context, ev IntegrationEvent, version int64) (IntegrationEvent, error)
	// IntegrationHistory lists recorded changes to the person directory in
	// order, filtered by q.
	IntegrationHistory(ctx context.Context, q HistoryQuery) ([]IntegrationEvent, error)
	// PutIntegration inserts or replaces the integration with the same
	// (person, participant, sector, capacity, from).
	PutIntegration(ctx context.Context, in Integration) error
	// DeleteIntegration removes it; ErrNotFound when absent.
	DeleteIntegration(ctx context.Context, in Integration) error
	// Integrations lists integrations, filtered by participant and/or person when non-empty.
	Integrations(ctx context.Context, participant, person string) ([]Integration, error)
	// EachIntegration streams every integration (to build the in-memory index at start).
	EachIntegration(ctx context.Context, fn func(Integration) error) error
	// IntegrationChanges returns, in order, up to limit changes to the
	// person directory recorded after sequence number after (0: from the
	// start), whoever wrote them: how hub nodes sharing a store learn each
	// other's writes. Sequence numbers follow commit order.
	IntegrationChanges(ctx context.Context, after int64, limit int) ([]IntegrationChange, error)
	// LastIntegrationChange is the sequence number of the latest change (0: none).
	LastIntegrationChange(ctx context.Context) (int64, error)
	// PruneIntegrationChanges drops changes recorded before the given time
	// and returns how many it dropped.
	PruneIntegrationChanges(ctx context.Context, before time.Time) (int64, error)
}

// Integration change actions (IntegrationEvent.Action, AuditRecord.Action
// of RecordIntegration records).
const (
	IntegrationRegister = "register" // a new file
	IntegrationEnd      = "end"      // a file's period closed
	IntegrationCorrect  = "correct"  // a file's end corrected
)

// IntegrationEvent is one change to the person directory as its history
// keeps it: the integration as it is after the change.
type IntegrationEvent struct {
	Seq         int64       `json:"seq"`
	Action      string      `json:"action"`
	Integration Integration `json:"integration"`
	Actor       string      `json:"actor,omitempty"` // participant who made the change; empty for an apply
	User        string      `json:"user,omitempty"`  // the natural person acting
	At          time.Time   `json:"at"`
}

// HistoryQuery filters IntegrationHistory. Empty fields match everything.
type HistoryQuery struct {
	Kind        string // subject kind; with Person. Empty: person
	Person      string // canonical subject id
	Participant string
	After       int64 // only events with Seq > After (paging cursor)
	Limit       int   // at most this many; <= 0: 100
}

// IntegrationChange is one write to the person directory: the integration
// as it is after the change, or as it was before a deletion.
type IntegrationChange struct {
	Seq         int64
	Integration Integration
	Deleted     bool
}

// Common errors. Wrap them; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrStale: the registers are no longer at the version a write was
	// validated against (it also matches ErrConflict). Read and retry.
	ErrStale = fmt.Errorf("%w: the registers have changed", ErrConflict)
	// ErrNotSealed: an audit record is durable but the seal of what its
	// exchange would release could not be signed; nothing is released.
	ErrNotSealed = errors.New("record durable, seal not signed")
)

// Certificate is a certificate issued by the network CA to a participant.
type Certificate struct {
	Serial           string    `json:"serial"` // lowercase hex, no separators
	Participant      string    `json:"participant"`
	NotBefore        time.Time `json:"notBefore"`
	NotAfter         time.Time `json:"notAfter"`
	RevokedAt        time.Time `json:"revokedAt,omitzero"` // zero when not revoked
	RevocationReason string    `json:"revocationReason,omitempty"`
	PEM              string    `json:"pem,omitempty"`
}

// ValidSerial checks a certificate serial's form: 1 to 128 lowercase hex
// digits, no separators (as pki.SerialHex writes it).
func ValidSerial(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%w: certificate serial must be 1 to 128 hex digits", ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: certificate serial must be lowercase hex without separators", ErrInvalid)
		}
	}
	return nil
}

// CertificateStore records issued certificates and their revocation.
type CertificateStore interface {
	RecordCertificate(ctx context.Context, c Certificate) error
	// RevokeCertificate marks the certificate revoked; ErrNotFound if unknown.
	// Revoking twice keeps the first time.
	RevokeCertificate(ctx context.Context, serial string, at time.Time, reason string) error
	Certificates(ctx context.Context) ([]Certificate, error)
	// RevokedSince returns the serials revoked after cursor (0 for all) and
	// the new cursor; cheap enough to poll several times a second.
	RevokedSince(ctx context.Context, cursor int64) (serials []string, next int64, err error)
}

type callerKey struct{}

// WithCaller returns ctx carrying the authenticated participant.
func WithCaller(ctx context.Context, p *Participant) context.Context {
	return context.WithValue(ctx, callerKey{}, p)
}

// CallerFrom returns the authenticated participant of a request, if any.
func CallerFrom(ctx context.Context) (*Participant, bool) {
	p, ok := ctx.Value(callerKey{}).(*Participant)
	return p, ok && p != nil
}

type providerKey struct{}

// WithProvider returns ctx naming the provider participant whose server
// certificate the hub must find at the other end of a request it forwards:
// the forwarding transport refuses any other (design §2, forward).
func WithProvider(ctx context.Context, participant string) context.Context {
	return context.WithValue(ctx, providerKey{}, participant)
}

// ProviderFrom returns the provider participant a forwarded request must reach.
func ProviderFrom(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(providerKey{}).(string)
	return p, ok && p != ""
}

// SubjectKey is how the person directory keys a subject: the canonical id
// for a person, "kind:id" for any other kind, so that identifiers of two
// kinds' schemes never meet.
func SubjectKey(kind, id string) string {
	if kind == "" || kind == SubjectPerson {
		return id
	}
	return kind + ":" + id
}
