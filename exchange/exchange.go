// Package exchange is the hub's exchange pipeline (design §2):
//
//	authenticate → validate → decide → forward → minimise → seal → audit → release
//
// Pipeline.Do runs one exchange, independent of the transport; Handler is
// its HTTP adapter ({METHOD} /v1/exchange/{serviceId}/{path...}); batch,
// push and the federation gateway are other adapters over the same seam.
// A call is matched against the service's declared operations (package
// operation) and the subject in the path is bound to the exchange; the hub
// builds the provider's request target itself, forwards over mutual TLS to
// the registered provider, keeps only the granted fields of the answer,
// seals it, and releases it only once the audit record is durable. Denials
// and failures are audited too: no record, no release.
package exchange

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/trace"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/operation"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/policy"
	"github.com/crossroads-hub/crossroads/problem"
)

// Prefix is the path under which exchanges are served.
const Prefix = "/v1/exchange/"

// Header names of the exchange API. They are pki's (the one definition of
// the protocol's headers), repeated here for the callers of this package.
const (
	HeaderPurpose       = pki.HeaderPurpose
	HeaderUser          = pki.HeaderUser
	HeaderSubject       = pki.HeaderSubject
	HeaderCorrelationID = pki.HeaderCorrelationID
	HeaderExchangeID    = pki.HeaderExchangeID
	HeaderRequester     = pki.HeaderRequester
	HeaderAuthorisation = pki.HeaderAuthorisation
	HeaderSeal          = pki.HeaderSeal
	HeaderReceipt       = pki.HeaderReceipt
)

// MaxRecordedTarget caps the request target kept in an audit record
// (bytes; the seal names it whole).
const MaxRecordedTarget = 512

// ErrNotRecorded is returned by Do when the exchange's audit record could
// not be made durable: the Result is then a 503 problem and nothing was
// released.
var ErrNotRecorded = errors.New("exchange: audit record not durable")

// Directory is what the pipeline needs of the registers.
type Directory interface {
	policy.View
}

// Config wires the pipeline.
type Config struct {
	Directory Directory
	// Kinds are the schemes of the network's subject kinds (the hub wires
	// personid.DefaultKinds(scheme)); nil: DefaultKinds(Scheme).
	Kinds       personid.Kinds
	Scheme      personid.Scheme // the person scheme, when Kinds is nil
	Audit       crossroads.AuditLog
	Signer      *pki.Signer       // signs forwarded requests
	Sealer      *pki.SealSigner   // seals responses when Audit does not seal in its commits (a SealingLog); nil: over Signer
	Transport   http.RoundTripper // mTLS to providers with the hub's certificate
	Revocations *pki.Revocations  // checked on every request, not only at handshake
	Metrics     *Metrics
	Logger      *slog.Logger
	Limiter     *limit.Limiter // flow control: global in-flight cap, participant and authorisation limits (nil: none)

	ProviderTimeout time.Duration // default 10 s
	MaxRequestBody  int64         // default 1 MiB
	MaxResponseBody int64         // default 10 MiB
	MaxBodyDepth    int           // nesting depth of a JSON request body; default 32
	AuditTimeout    time.Duration // default 5 s
	// AbuseWindow is the window over which refusals of unknown or suspended
	// participants are summarised in one audit record per actor (default
	// one minute); MaxAbuseActors bounds the actors tracked per window
	// (default 4096; beyond, they are summarised together).
	AbuseWindow    time.Duration
	MaxAbuseActors int
	Now            func() time.Time
}

// Pipeline runs exchanges. It is safe for concurrent use.
type Pipeline struct {
	cfg      Config
	client   *http.Client
	matchers operation.Cache
	grants   sync.Map // grantKey → *grantEntry
	abuse    *abuseWindows
	sealing  SealingLog // cfg.Audit, when it signs seals in its commits
}

// NewPipeline returns the pipeline.
func NewPipeline(cfg Config) *Pipeline {
	if cfg.ProviderTimeout == 0 {
		cfg.ProviderTimeout = 10 * time.Second
	}
	if cfg.MaxRequestBody == 0 {
		cfg.MaxRequestBody = 1 << 20
	}
	if cfg.MaxResponseBody == 0 {
		cfg.MaxResponseBody = 10 << 20
	}
	if cfg.MaxBodyDepth == 0 {
		cfg.MaxBodyDepth = 32
	}
	if cfg.AuditTimeout == 0 {
		cfg.AuditTimeout = 5 * time.Second
	}
	if cfg.AbuseWindow == 0 {
		cfg.AbuseWindow = time.Minute
	}
	if cfg.MaxAbuseActors == 0 {
		cfg.MaxAbuseActors = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Kinds == nil {
		cfg.Kinds = personid.DefaultKinds(cfg.Scheme)
	}
	if cfg.Sealer == nil && cfg.Signer != nil {
		cfg.Sealer = pki.NewSealSigner(cfg.Signer)
	}
	p := &Pipeline{
		cfg: cfg,
		client: &http.Client{
			Transport: cfg.Transport,
			// The provider's redirects are not followed: the hub calls only
			// the registered endpoint.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		abuse: newAbuseWindows(cfg.AbuseWindow, cfg.MaxAbuseActors),
	}
	if sl, ok := cfg.Audit.(SealingLog); ok && sl.SealsInCommit() {
		p.sealing = sl
	}
	return p
}

// Request is one exchange as a transport adapter hands it to the pipeline.
type Request struct {
	// TLS is the caller's connection: its verified client certificate
	// authenticates the requester.
	TLS    *tls.ConnectionState
	Method string
	// Service is the service id; Path the escaped path relative to the
	// service ("" or "/…"); RawQuery the query as sent.
	Service  string
	Path     string
	RawQuery string
	// Header holds the protocol headers (Crossroads-Purpose, -User,
	// -Subject, -Correlation-Id) and Content-Type, as sent.
	Header http.Header
	// Body is the request body (nil: none), ContentLength its length if
	// known (-1: unknown).
	Body          io.Reader
	ContentLength int64
	// Caller, when TLS is nil, is a client certificate an adapter verified
	// against the network CA earlier (batch items run after the
	// submitter's connection is gone, even after a restart). It is checked
	// as a connection's is: revocation, expiry, the participant's status.
	Caller *x509.Certificate
}

// Result is what the pipeline releases: a status, the headers to send and
// the body (the minimised, sealed response or RFC 9457 problem details).
// For HEAD the adapter sends the headers only.
type Result struct {
	Status     int
	Header     http.Header
	Body       []byte
	ExchangeID string
	Outcome    string            // crossroads.OutcomeAllowed, -Denied, -Failed
	Reason     crossroads.Reason // the problem's reason, or allowed
}

// refusal is why the pipeline stops: an HTTP status, a reason and a
// detail for the problem (never internals).
type refusal struct {
	status int
	reason crossroads.Reason
	detail string
}

func refuse(status int, reason crossroads.Reason, detail string) *refusal {
	return &refusal{status, reason, detail}
}

// state carries one exchange through the pipeline.
type state struct {
	start  time.Time
	rec    crossroads.AuditRecord
	hdr    http.Header
	svc    *crossroads.Service
	match  operation.Match
	kind   string // subject kind of the service
	target string // canonical request target, relative to the base URL
	body   []byte
}

// Do runs one exchange through the pipeline. Every refusal is a Result
// (problem details); err is non-nil only with ErrNotRecorded.
func (p *Pipeline) Do(ctx context.Context, req Request) (Result, error) {
	now := p.cfg.Now()
	s := &state{start: now, hdr: make(http.Header, 8)}
	s.rec.ExchangeID = newExchangeID()
	s.rec.Time = now.UTC()
	s.rec.Method = req.Method
	s.hdr.Set(HeaderExchangeID, s.rec.ExchangeID)

	// shed load before doing any work (counted, not audited)
	leave, after, ok := p.cfg.Limiter.Enter()
	if !ok {
		s.hdr.Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(after)))
		return p.unrecorded(s, refuse(http.StatusServiceUnavailable, crossroads.ReasonOverloaded, "the hub is at capacity; retry later")), nil
	}
	defer leave()

	// authenticate
	if req.TLS == nil && req.Caller != nil {
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{req.Caller}, VerifiedChains: [][]*x509.Certificate{{req.Caller}}}
	}
	var cert = peerCert(req.TLS)
	if cert == nil {
		p.cfg.Metrics.unauthenticated.Inc()
		return p.unrecorded(s, refuse(http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")), nil
	}
	id, err := pki.ParticipantID(cert)
	if err != nil {
		p.cfg.Metrics.unauthenticated.Inc()
		return p.unrecorded(s, refuse(http.StatusUnauthorized, crossroads.ReasonCertificateError, "the client certificate names no participant")), nil
	}
	s.rec.Requester = id
	// Checked on every request, not only at the handshake: a keep-alive
	// connection must not outlive its certificate's revocation or expiry.
	if _, _, err := pki.CheckPeer(req.TLS, p.cfg.Revocations, now); err != nil {
		return p.deny(ctx, s, refuse(http.StatusForbidden, crossroads.ReasonCertificateRevoked, "the client certificate has been revoked or has expired"))
	}
	// An unknown or suspended participant is refused before any work on a
	// person, and summarised rather than recorded request by request.
	if part, ok := p.cfg.Directory.Participant(id); !ok || part.Status != crossroads.StatusActive {
		reason := crossroads.ReasonUnknownParticipant
		if ok {
			reason = crossroads.ReasonParticipantSuspended
		}
		return p.abusive(s, reason), nil
	}
	release, after, ok := p.cfg.Limiter.Acquire(id, "", nil)
	if !ok {
		return p.rateLimited(ctx, s, after)
	}
	defer release()

	// validate
	if r := p.validate(&req, s); r != nil {
		return p.deny(ctx, s, r)
	}
	if req.Method == http.MethodOptions {
		// Answered by the hub from the public catalogue of operations; the
		// provider is not called, nothing about a person is looked at, and
		// nothing is recorded (docs/api.md), so the answer names no exchange.
		s.hdr.Del(HeaderExchangeID)
		s.hdr.Set("Allow", s.match.Allow)
		p.cfg.Metrics.options.Inc()
		return Result{Status: http.StatusNoContent, Header: s.hdr, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}, nil
	}

	// decide
	d := p.decide(s, now)
	if !d.Allowed {
		status := http.StatusForbidden
		switch d.Reason {
		case crossroads.ReasonUnknownService:
			status = http.StatusNotFound
		case crossroads.ReasonInvalidSubject:
			status = http.StatusBadRequest
		}
		return p.deny(ctx, s, refuse(status, d.Reason, ""))
	}
	if a := d.Authorisation; a.Limits != nil {
		release, after, ok := p.cfg.Limiter.Acquire(id, a.ID, a.Limits)
		if !ok {
			return p.rateLimited(ctx, s, after)
		}
		defer release()
	}

	// forward
	end := region(ctx, "exchange.forward")
	resp, cleanup, r := p.forward(ctx, s)
	end()
	if r != nil {
		return p.failed(ctx, s, r)
	}
	defer cleanup()

	// minimise
	g, err := p.grantsFor(d.Authorisation, s.svc, s.match.Operation)
	if err != nil {
		p.cfg.Logger.Error("authorisation has a bad field grant", "authorisation", d.Authorisation.ID, "service", s.svc.ID, "err", err)
		return p.failed(ctx, s, refuse(http.StatusBadGateway, crossroads.ReasonResponseNotGranted, ""))
	}
	out, ctype, r := p.minimise(s, g, resp)
	if r != nil {
		return p.failed(ctx, s, r)
	}
	s.rec.Status, s.rec.ContentType = resp.StatusCode, ctype

	// seal
	s.rec.ResponseDigest = pki.Digest(out)
	claims := &pki.SealClaims{
		ExchangeID: s.rec.ExchangeID, Requester: s.rec.Requester, Service: s.rec.Service,
		Operation: s.rec.Operation, Method: s.rec.Method, Target: s.target,
		SubjectKind: s.rec.SubjectKind, Subject: s.rec.Subject, Purpose: s.rec.Purpose,
		AuthorisationID: s.rec.AuthorisationID, RequestDigest: s.rec.RequestDigest,
		Status: s.rec.Status, ContentType: ctype, ResponseDigest: s.rec.ResponseDigest, Time: s.rec.Time,
	}
	s.rec.Outcome, s.rec.Reason = crossroads.OutcomeAllowed, crossroads.ReasonAllowed
	// The seal is signed with the other seals of the record's group
	// commit once the record is durable (a SealingLog), or here, first.
	var seal string
	inCommit := claims
	if p.sealing == nil {
		inCommit = nil
		end = region(ctx, "exchange.seal")
		// Once the provider has answered, the exchange is sealed and
		// recorded even if the client has gone away (as audit does); a
		// wait for a signature in progress is short.
		var err error
		seal, err = p.cfg.Sealer.Seal(context.WithoutCancel(ctx), *claims)
		end()
		if err != nil {
			p.cfg.Logger.Error("seal response", "exchange", s.rec.ExchangeID, "err", err)
			s.rec.Status, s.rec.ContentType = 0, ""
			return p.failed(ctx, s, refuse(http.StatusInternalServerError, "seal-failed", ""))
		}
	}

	// audit, then release
	receipt, sealed, err := p.commit(ctx, s, inCommit)
	switch {
	case errors.Is(err, crossroads.ErrNotSealed):
		p.cfg.Logger.Error("seal response", "exchange", s.rec.ExchangeID, "err", err)
		p.cfg.Metrics.observe(s, crossroads.OutcomeFailed, "seal-failed", p.cfg.Now())
		s.hdr.Set(HeaderReceipt, receipt.Token)
		return p.problem(s, refuse(http.StatusInternalServerError, "seal-failed", ""), crossroads.OutcomeFailed), nil
	case err != nil:
		p.cfg.Metrics.observe(s, crossroads.OutcomeFailed, crossroads.ReasonAuditUnavailable, p.cfg.Now())
		return p.problem(s, refuse(http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the exchange could not be recorded; nothing was released"), crossroads.OutcomeFailed), ErrNotRecorded
	}
	if inCommit != nil {
		seal = sealed
	}
	s.hdr.Set(HeaderSeal, seal)
	s.hdr.Set(HeaderReceipt, receipt.Token)
	if ctype != "" {
		s.hdr.Set("Content-Type", ctype)
	}
	s.hdr.Set("Cache-Control", "no-store")
	s.hdr.Set("X-Content-Type-Options", "nosniff")
	p.cfg.Metrics.observe(s, crossroads.OutcomeAllowed, crossroads.ReasonAllowed, p.cfg.Now())
	return Result{Status: resp.StatusCode, Header: s.hdr, Body: out, ExchangeID: s.rec.ExchangeID, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}, nil
}

// decide runs the preventive check and fills the record's authorisation.
func (p *Pipeline) decide(s *state, now time.Time) crossroads.Decision {
	d := policy.Decide(p.cfg.Directory, policy.Request{
		Requester: s.rec.Requester, Service: s.rec.Service, Operation: s.match.Operation,
		Purpose: s.rec.Purpose, SubjectKind: s.kind, Subject: s.rec.Subject,
	}, now)
	if d.Authorisation != nil {
		s.rec.AuthorisationID, s.rec.AuthorisationRef = d.Authorisation.ID, d.Authorisation.Reference
	}
	return d
}

// region marks a phase of an exchange in an execution trace (go tool
// trace: user-defined regions), when one is being taken.
func region(ctx context.Context, name string) func() {
	if !trace.IsEnabled() {
		return noRegion
	}
	return trace.StartRegion(ctx, name).End
}

func noRegion() {}

func peerCert(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

func newExchangeID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// audit commits the record; false when it is not durable.
func (p *Pipeline) audit(ctx context.Context, s *state) (crossroads.Receipt, bool) {
	receipt, _, err := p.commit(ctx, s, nil)
	return receipt, err == nil
}

// SealingLog is an audit log that signs the seals of its group commit's
// records together, once they are durable (audit.Trail with a Sealer):
// the pipeline hands it the seal's claims with the record.
type SealingLog interface {
	CommitSealed(ctx context.Context, rec *crossroads.AuditRecord, claims *pki.SealClaims) (crossroads.Receipt, string, error)
	SealsInCommit() bool
}

// commit makes the record durable and returns its receipt, and, when
// claims is set, its seal signed in the commit (then err wraps
// crossroads.ErrNotSealed when the record is durable but unsealed).
func (p *Pipeline) commit(ctx context.Context, s *state, claims *pki.SealClaims) (receipt crossroads.Receipt, seal string, err error) {
	s.rec.LatencyMicros = p.cfg.Now().Sub(s.start).Microseconds()
	// The record is written even if the client has gone away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AuditTimeout)
	defer cancel()
	end := region(ctx, "exchange.audit")
	if claims != nil {
		receipt, seal, err = p.sealing.CommitSealed(ctx, &s.rec, claims)
	} else {
		receipt, err = p.cfg.Audit.Commit(ctx, &s.rec)
	}
	end()
	if err != nil && !errors.Is(err, crossroads.ErrNotSealed) {
		p.cfg.Metrics.auditFailures.Inc()
		p.cfg.Logger.Error("audit record not durable; refusing", "exchange", s.rec.ExchangeID, "err", err)
	}
	return receipt, seal, err
}

// deny audits a refusal and answers with problem details.
func (p *Pipeline) deny(ctx context.Context, s *state, r *refusal) (Result, error) {
	s.rec.Outcome = crossroads.OutcomeDenied
	return p.answerAudited(ctx, s, r)
}

// failed audits a failure after an allowed decision.
func (p *Pipeline) failed(ctx context.Context, s *state, r *refusal) (Result, error) {
	s.rec.Outcome = crossroads.OutcomeFailed
	return p.answerAudited(ctx, s, r)
}

// rateLimited audits a refusal by flow control: 429 with Retry-After.
func (p *Pipeline) rateLimited(ctx context.Context, s *state, after time.Duration) (Result, error) {
	s.hdr.Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(after)))
	return p.deny(ctx, s, refuse(http.StatusTooManyRequests, crossroads.ReasonRateLimited, "too many requests: retry after the time in Retry-After"))
}

func (p *Pipeline) answerAudited(ctx context.Context, s *state, r *refusal) (Result, error) {
	s.rec.Reason = r.reason
	s.rec.Status, s.rec.ContentType = r.status, problem.ContentType
	if len(s.rec.Target) > MaxRecordedTarget {
		s.rec.Target = s.rec.Target[:MaxRecordedTarget]
	}
	receipt, ok := p.audit(ctx, s)
	if !ok {
		p.cfg.Metrics.observe(s, s.rec.Outcome, crossroads.ReasonAuditUnavailable, p.cfg.Now())
		s.hdr.Del("Allow")
		s.hdr.Del("Retry-After")
		return p.problem(s, refuse(http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the exchange could not be recorded"), s.rec.Outcome), ErrNotRecorded
	}
	s.hdr.Set(HeaderReceipt, receipt.Token)
	p.cfg.Metrics.observe(s, s.rec.Outcome, r.reason, p.cfg.Now())
	return p.problem(s, r, s.rec.Outcome), nil
}

// unrecorded answers without an audit record: only for requests with no
// authenticated actor to record (they are counted in the metrics).
func (p *Pipeline) unrecorded(s *state, r *refusal) Result {
	p.cfg.Metrics.observe(s, crossroads.OutcomeDenied, r.reason, p.cfg.Now())
	return p.problem(s, r, crossroads.OutcomeDenied)
}

func (p *Pipeline) problem(s *state, r *refusal, outcome string) Result {
	d := problem.New(r.status, r.reason, r.detail)
	d.ExchangeID = s.rec.ExchangeID
	b, err := json.Marshal(d)
	if err != nil {
		b = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		r = refuse(http.StatusInternalServerError, "", "")
	}
	s.hdr.Set("Content-Type", problem.ContentType)
	s.hdr.Set("X-Content-Type-Options", "nosniff")
	s.hdr.Set("Cache-Control", "no-store")
	return Result{Status: r.status, Header: s.hdr, Body: b, ExchangeID: s.rec.ExchangeID, Outcome: outcome, Reason: r.reason}
}

// grantKey names compiled grants: an authorisation's fields for a service,
// intersected with what the operation (or the service) may return. The
// entry remembers the values it was compiled from, so a reload replaces it
// (the cache stays bounded by authorisations × operations).
type grantKey struct {
	authorisation, service, operation string
}

type grantEntry struct {
	auth   *crossroads.Authorisation
	svc    *crossroads.Service
	grants *minimise.Grants
}

func (p *Pipeline) grantsFor(a *crossroads.Authorisation, svc *crossroads.Service, op *crossroads.Operation) (*minimise.Grants, error) {
	k := grantKey{a.ID, svc.ID, op.ID}
	if v, ok := p.grants.Load(k); ok {
		if e := v.(*grantEntry); e.auth == a && e.svc == svc {
			return e.grants, nil
		}
	}
	fields := op.Fields
	if len(fields) == 0 {
		fields = svc.Fields
	}
	granted, err := minimise.Compile(a.Fields[svc.ID])
	if err != nil {
		return nil, err
	}
	offered, err := minimise.Compile(fields)
	if err != nil {
		return nil, err
	}
	g := minimise.Intersect(granted, offered)
	p.grants.Store(k, &grantEntry{auth: a, svc: svc, grants: g})
	return g, nil
}
