// Package exchange is the hub's exchange pipeline (design §2):
//
//	authenticate → validate → decide → forward → minimise → seal → audit → release
//
// A participant calls {METHOD} /v1/exchange/{serviceId}/{path...}; the
// handler checks the call against the registers before it happens, forwards
// it over mutual TLS to the provider's registered endpoint, keeps only the
// granted fields of the answer, seals it, and releases it only once the
// audit record is durable. Denials and failures are audited too.
package exchange

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/policy"
	"github.com/crossroads-hub/crossroads/problem"
)

// Prefix is the path under which exchanges are served.
const Prefix = "/v1/exchange/"

// Header names of the exchange API.
const (
	HeaderPurpose       = "Crossroads-Purpose"
	HeaderUser          = "Crossroads-User"
	HeaderSubject       = "Crossroads-Subject"
	HeaderCorrelationID = "Crossroads-Correlation-Id"
	HeaderExchangeID    = "Crossroads-Exchange-Id"
	HeaderRequester     = "Crossroads-Requester"
	HeaderAuthorisation = "Crossroads-Authorisation"
	HeaderSeal          = "Crossroads-Seal"
	HeaderReceipt       = "Crossroads-Receipt"
)

// Directory is what the pipeline needs of the registers.
type Directory interface {
	policy.View
}

// Config wires the pipeline.
type Config struct {
	Directory   Directory
	Scheme      personid.Scheme
	Audit       crossroads.AuditLog
	Signer      *pki.Signer       // seals responses and signs forwarded requests
	Transport   http.RoundTripper // mTLS to providers with the hub's certificate
	Revocations *pki.Revocations  // checked on every request, not only at handshake
	Metrics     *Metrics
	Logger      *slog.Logger
	Limiter     *limit.Limiter // flow control: global in-flight cap, participant and authorisation limits (nil: none)

	ProviderTimeout time.Duration // default 10 s
	MaxRequestBody  int64         // default 1 MiB
	MaxResponseBody int64         // default 10 MiB
	AuditTimeout    time.Duration // default 5 s
	Now             func() time.Time
}

// Handler serves the exchange API.
type Handler struct {
	cfg    Config
	client *http.Client
	grants sync.Map // grantKey → *minimise.Grants
}

// grantKey names compiled grants; the entry remembers which authorisation
// value it was compiled from, so a reload replaces it (the cache stays
// bounded by authorisations × services and holds no old snapshot).
type grantKey struct {
	authorisation string
	service       string
}

type grantEntry struct {
	from   *crossroads.Authorisation
	grants *minimise.Grants
}

// New returns the exchange handler.
func New(cfg Config) *Handler {
	if cfg.ProviderTimeout == 0 {
		cfg.ProviderTimeout = 10 * time.Second
	}
	if cfg.MaxRequestBody == 0 {
		cfg.MaxRequestBody = 1 << 20
	}
	if cfg.MaxResponseBody == 0 {
		cfg.MaxResponseBody = 10 << 20
	}
	if cfg.AuditTimeout == 0 {
		cfg.AuditTimeout = 5 * time.Second
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
	return &Handler{
		cfg: cfg,
		client: &http.Client{
			Transport: cfg.Transport,
			// The provider's redirects are not followed: the hub calls only
			// the registered endpoint.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// state carries one exchange through the pipeline.
type state struct {
	start   time.Time
	rec     crossroads.AuditRecord
	svc     *crossroads.Service
	path    string // provider-relative path, escaped
	query   string
	body    []byte
	ctype   string
	subject string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	s := &state{start: now}
	s.rec.ExchangeID = newExchangeID()
	s.rec.Time = now.UTC()
	s.rec.Method = r.Method
	w.Header().Set(HeaderExchangeID, s.rec.ExchangeID)

	// shed load before doing any work (counted, not audited)
	leave, after, ok := h.cfg.Limiter.Enter()
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(after)))
		h.fail(w, s, http.StatusServiceUnavailable, crossroads.ReasonOverloaded, "the hub is at capacity; retry later", false)
		return
	}
	defer leave()

	// authenticate
	cert := peerCert(r)
	if cert == nil {
		h.cfg.Metrics.unauthenticated.Inc()
		h.fail(w, s, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required", false)
		return
	}
	id, err := pki.ParticipantID(cert)
	if err != nil {
		h.cfg.Metrics.unauthenticated.Inc()
		h.fail(w, s, http.StatusUnauthorized, crossroads.ReasonCertificateError, "the client certificate names no participant", false)
		return
	}
	s.rec.Requester = id
	// Checked on every request, not only at the handshake: a keep-alive
	// connection must not outlive its certificate's revocation or expiry.
	if _, _, err := pki.CheckPeer(r.TLS, h.cfg.Revocations, now); err != nil {
		h.deny(w, r, s, http.StatusForbidden, crossroads.ReasonCertificateRevoked, "the client certificate has been revoked or has expired")
		return
	}
	release, after, ok := h.cfg.Limiter.Acquire(id, "", nil)
	if !ok {
		h.rateLimited(w, r, s, after)
		return
	}
	defer release()

	// validate
	if status, reason, detail := h.validate(r, s); reason != "" {
		h.deny(w, r, s, status, reason, detail)
		return
	}

	// decide
	d := policy.Decide(h.cfg.Directory, policy.Request{
		Requester: s.rec.Requester, Service: s.rec.Service, Purpose: s.rec.Purpose, Subject: s.subject,
	}, now)
	if d.Authorisation != nil {
		s.rec.AuthorisationID, s.rec.AuthorisationRef = d.Authorisation.ID, d.Authorisation.Reference
	}
	if d.Allowed && s.svc == nil {
		// The service was registered between validation and decision: take
		// it now, or refuse if it has gone again.
		svc, ok := h.cfg.Directory.Service(s.rec.Service)
		if !ok {
			d = crossroads.Decision{Reason: crossroads.ReasonUnknownService}
		} else {
			s.svc, s.rec.Provider = svc, svc.Provider
		}
	}
	if !d.Allowed {
		status := http.StatusForbidden
		if d.Reason == crossroads.ReasonUnknownService {
			status = http.StatusNotFound
		}
		h.deny(w, r, s, status, d.Reason, "")
		return
	}
	if a := d.Authorisation; a != nil && a.Limits != nil {
		release, after, ok := h.cfg.Limiter.Acquire(id, a.ID, a.Limits)
		if !ok {
			h.rateLimited(w, r, s, after)
			return
		}
		defer release()
	}

	// forward
	resp, status, reason := h.forward(r.Context(), s)
	if reason != "" {
		h.failAudited(w, r, s, status, reason)
		return
	}
	s.rec.ProviderStatus = resp.status

	// minimise
	out, ok := h.minimise(s, d, resp)
	if !ok {
		h.failAudited(w, r, s, http.StatusBadGateway, crossroads.ReasonResponseNotGranted)
		return
	}

	// seal
	s.rec.ResponseDigest = pki.Digest(out)
	seal, err := h.cfg.Signer.Sign(pki.SealClaims{
		ExchangeID: s.rec.ExchangeID, Requester: s.rec.Requester, Service: s.rec.Service,
		Subject: s.rec.Subject, Purpose: s.rec.Purpose, ResponseDigest: s.rec.ResponseDigest, Time: s.rec.Time,
	})
	if err != nil {
		h.cfg.Logger.Error("seal response", "exchange", s.rec.ExchangeID, "err", err)
		h.failAudited(w, r, s, http.StatusInternalServerError, "seal-failed")
		return
	}

	// audit, then release
	s.rec.Outcome, s.rec.Reason = crossroads.OutcomeAllowed, crossroads.ReasonAllowed
	receipt, ok := h.audit(r, s)
	if !ok {
		h.cfg.Metrics.observe(s, crossroads.OutcomeFailed, crossroads.ReasonAuditUnavailable, h.cfg.Now())
		problem.Write(w, h.problem(s, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the exchange could not be recorded; nothing was released"))
		return
	}
	hdr := w.Header()
	hdr.Set(HeaderSeal, seal)
	hdr.Set(HeaderReceipt, receipt.Token)
	hdr.Set("Content-Type", resp.ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(out)))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(resp.status)
	w.Write(out)
	h.cfg.Metrics.observe(s, crossroads.OutcomeAllowed, crossroads.ReasonAllowed, h.cfg.Now())
}

// transportError strips the URL (which may hold a person id) from a client
// error before it is logged.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func peerCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

func newExchangeID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// validate checks path, headers and body; it fills s or returns a refusal.
func (h *Handler) validate(r *http.Request, s *state) (int, crossroads.Reason, string) {
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, Prefix) {
		return http.StatusBadRequest, crossroads.ReasonInvalidPath, "exchanges are served under " + Prefix
	}
	rest := raw[len(Prefix):]
	svcID, path, _ := strings.Cut(rest, "/")
	if !validID(svcID) {
		return http.StatusBadRequest, crossroads.ReasonInvalidPath, "the service id is missing or malformed"
	}
	s.rec.Service = svcID
	if err := checkPath(path); err != "" {
		return http.StatusBadRequest, crossroads.ReasonInvalidPath, err
	}
	s.path, s.query = path, r.URL.RawQuery
	if strings.ContainsAny(s.query, "\r\n\x00") {
		return http.StatusBadRequest, crossroads.ReasonInvalidPath, "the query has control characters"
	}
	// The record names what was asked of the provider (it is encrypted at
	// rest), so the trail shows the request, not only the declared subject.
	s.rec.Target = "/" + path
	if s.query != "" {
		s.rec.Target += "?" + s.query
	}

	purpose := r.Header.Get(HeaderPurpose)
	if purpose == "" {
		return http.StatusBadRequest, crossroads.ReasonMissingPurpose, "Crossroads-Purpose is required"
	}
	if !validID(purpose) {
		return http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-Purpose must be a purpose code ([a-z0-9._-], at most 63 characters)"
	}
	s.rec.Purpose = purpose
	user := r.Header.Get(HeaderUser)
	if user == "" {
		return http.StatusBadRequest, crossroads.ReasonMissingUser, "Crossroads-User is required: the natural person on whose behalf the call is made"
	}
	if !validText(user, 128) {
		return http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-User must be 1 to 128 printable characters"
	}
	s.rec.User = user
	if c := r.Header.Get(HeaderCorrelationID); c != "" {
		if !validText(c, 128) {
			return http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-Correlation-Id must be 1 to 128 printable characters"
		}
		s.rec.CorrelationID = c
	}
	if len(r.Header.Values(HeaderSubject)) > 1 || len(r.Header.Values(HeaderPurpose)) > 1 {
		return http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads headers must not repeat"
	}

	svc, known := h.cfg.Directory.Service(svcID)
	if known {
		s.svc = svc
		s.rec.Provider = svc.Provider
	}
	if subj := r.Header.Get(HeaderSubject); subj != "" && (!known || svc.ConcernsPerson) {
		canon, err := h.cfg.Scheme.Canonical(subj)
		if err != nil {
			return http.StatusBadRequest, crossroads.ReasonInvalidSubject, "Crossroads-Subject is not a valid person identifier of the network's scheme (" + h.cfg.Scheme.Name() + ")"
		}
		s.subject, s.rec.Subject = canon, canon
	} else if known && svc.ConcernsPerson {
		return http.StatusBadRequest, crossroads.ReasonMissingSubject, "this service concerns a person: Crossroads-Subject is required"
	}

	if r.ContentLength > h.cfg.MaxRequestBody {
		return http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the request body exceeds " + strconv.FormatInt(h.cfg.MaxRequestBody, 10) + " bytes"
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxRequestBody+1))
		if err != nil {
			return http.StatusBadRequest, crossroads.ReasonInvalidBody, "the request body could not be read"
		}
		if int64(len(body)) > h.cfg.MaxRequestBody {
			return http.StatusRequestEntityTooLarge, crossroads.ReasonBodyTooLarge, "the request body exceeds " + strconv.FormatInt(h.cfg.MaxRequestBody, 10) + " bytes"
		}
		s.body = body
		s.ctype = r.Header.Get("Content-Type")
		if len(body) > 0 {
			s.rec.RequestDigest = pki.Digest(body)
		}
	}
	return 0, "", ""
}

// checkPath refuses dot segments, encoded separators and control
// characters in the provider-relative path.
func checkPath(p string) string {
	if len(p) > 2048 {
		return "the path is too long"
	}
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%2e") || strings.Contains(lower, "%00") {
		return "the path must not contain encoded separators, dots or NUL"
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			return "the path must not contain dot segments"
		}
		if seg == "" && i < len(segs)-1 {
			return "the path must not contain empty segments"
		}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return "the path has control characters, spaces or backslashes"
		}
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "the path has a bad escape"
	}
	if strings.ContainsFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "the path must not contain encoded control characters"
	}
	return ""
}

func validID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-'))) {
			return false
		}
	}
	return true
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

type providerResponse struct {
	status int
	ctype  string
	body   []byte
}

// forward calls the provider over mTLS with the hub's signature.
func (h *Handler) forward(ctx context.Context, s *state) (*providerResponse, int, crossroads.Reason) {
	target := strings.TrimSuffix(s.svc.BaseURL, "/") + "/" + s.path
	if s.query != "" {
		target += "?" + s.query
	}
	ctx, cancel := context.WithTimeout(crossroads.WithProvider(ctx, s.svc.Provider), h.cfg.ProviderTimeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if len(s.body) > 0 {
		body = bytes.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, s.rec.Method, target, body)
	if err != nil {
		return nil, http.StatusBadRequest, crossroads.ReasonInvalidPath
	}
	hdr := req.Header
	hdr.Set(HeaderExchangeID, s.rec.ExchangeID)
	hdr.Set(HeaderRequester, s.rec.Requester)
	hdr.Set(HeaderUser, s.rec.User)
	hdr.Set(HeaderPurpose, s.rec.Purpose)
	hdr.Set(HeaderAuthorisation, s.rec.AuthorisationID)
	if s.subject != "" {
		hdr.Set(HeaderSubject, s.subject)
	}
	if s.rec.CorrelationID != "" {
		hdr.Set(HeaderCorrelationID, s.rec.CorrelationID)
	}
	if s.ctype != "" {
		hdr.Set("Content-Type", s.ctype)
	}
	hdr.Set("Accept", "application/json")
	if err := pki.SignRequest(h.cfg.Signer, req, s.body, pki.RequestClaims{
		ExchangeID: s.rec.ExchangeID, Requester: s.rec.Requester, User: s.rec.User, Purpose: s.rec.Purpose,
		AuthorisationID: s.rec.AuthorisationID, Service: s.rec.Service, Method: req.Method, Path: req.URL.EscapedPath(),
		BodyDigest: pki.Digest(s.body), IssuedAt: s.start,
	}); err != nil {
		h.cfg.Logger.Error("sign forwarded request", "exchange", s.rec.ExchangeID, "err", err)
		return nil, http.StatusInternalServerError, "signing-failed"
	}
	t0 := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			h.cfg.Metrics.providerError(s.rec.Service, "timeout")
			return nil, http.StatusGatewayTimeout, crossroads.ReasonProviderTimeout
		}
		h.cfg.Metrics.providerError(s.rec.Service, "unreachable")
		h.cfg.Logger.Warn("provider unreachable", "exchange", s.rec.ExchangeID, "service", s.rec.Service, "err", transportError(err))
		return nil, http.StatusBadGateway, crossroads.ReasonProviderUnreachable
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, h.cfg.MaxResponseBody+1))
	h.cfg.Metrics.providerSeconds.WithLabelValues(s.rec.Service).Observe(time.Since(t0).Seconds())
	s.rec.ProviderStatus = resp.StatusCode
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			h.cfg.Metrics.providerError(s.rec.Service, "timeout")
			return nil, http.StatusGatewayTimeout, crossroads.ReasonProviderTimeout
		}
		h.cfg.Metrics.providerError(s.rec.Service, "read")
		return nil, http.StatusBadGateway, crossroads.ReasonProviderError
	}
	if int64(len(b)) > h.cfg.MaxResponseBody {
		h.cfg.Metrics.providerError(s.rec.Service, "too-large")
		return nil, http.StatusBadGateway, crossroads.ReasonProviderError
	}
	switch {
	case resp.StatusCode >= 500:
		h.cfg.Metrics.providerError(s.rec.Service, "5xx")
		return nil, http.StatusBadGateway, crossroads.ReasonProviderError
	case resp.StatusCode >= 400:
		// Passed on as our own problem, without the provider's body: it may
		// carry data the authorisation does not grant, or internals.
		return nil, resp.StatusCode, crossroads.ReasonProviderRejected
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		h.cfg.Metrics.providerError(s.rec.Service, "unexpected-status")
		return nil, http.StatusBadGateway, crossroads.ReasonProviderError
	}
	return &providerResponse{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}, 0, ""
}

// minimise keeps only the granted fields; false when the response cannot
// pass (non-JSON without a whole-payload grant, or JSON that is not JSON).
func (h *Handler) minimise(s *state, d crossroads.Decision, resp *providerResponse) ([]byte, bool) {
	k := grantKey{d.Authorisation.ID, s.rec.Service}
	var g *minimise.Grants
	if v, ok := h.grants.Load(k); ok && v.(grantEntry).from == d.Authorisation {
		g = v.(grantEntry).grants
	} else {
		compiled, err := minimise.Compile(d.Fields)
		if err != nil {
			h.cfg.Logger.Error("authorisation has a bad field grant", "authorisation", d.Authorisation.ID, "err", err)
			return nil, false
		}
		h.grants.Store(k, grantEntry{from: d.Authorisation, grants: compiled})
		g = compiled
	}
	if !isJSON(resp.ctype) {
		if g.Whole() {
			return resp.body, true
		}
		return nil, false
	}
	if len(resp.body) == 0 && resp.status == http.StatusNoContent {
		return resp.body, true
	}
	out, err := g.JSON(resp.body)
	if err != nil {
		h.cfg.Metrics.providerError(s.rec.Service, "bad-json")
		return nil, false
	}
	return out, true
}

func isJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// audit commits the record; false when it is not durable.
func (h *Handler) audit(r *http.Request, s *state) (crossroads.Receipt, bool) {
	s.rec.LatencyMicros = h.cfg.Now().Sub(s.start).Microseconds()
	// The record is written even if the client has gone away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.AuditTimeout)
	defer cancel()
	receipt, err := h.cfg.Audit.Commit(ctx, &s.rec)
	if err != nil {
		h.cfg.Metrics.auditFailures.Inc()
		h.cfg.Logger.Error("audit record not durable; refusing", "exchange", s.rec.ExchangeID, "err", err)
		return receipt, false
	}
	return receipt, true
}

// deny audits a refusal and answers with problem details.
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, s *state, status int, reason crossroads.Reason, detail string) {
	s.rec.Outcome, s.rec.Reason = crossroads.OutcomeDenied, reason
	h.answerAudited(w, r, s, status, reason, detail)
}

// rateLimited audits a refusal by flow control: 429 with Retry-After.
func (h *Handler) rateLimited(w http.ResponseWriter, r *http.Request, s *state, after time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(after)))
	h.deny(w, r, s, http.StatusTooManyRequests, crossroads.ReasonRateLimited, "too many requests: retry after the time in Retry-After")
}

// failAudited audits a failure after an allowed decision.
func (h *Handler) failAudited(w http.ResponseWriter, r *http.Request, s *state, status int, reason crossroads.Reason) {
	s.rec.Outcome, s.rec.Reason = crossroads.OutcomeFailed, reason
	h.answerAudited(w, r, s, status, reason, "")
}

func (h *Handler) answerAudited(w http.ResponseWriter, r *http.Request, s *state, status int, reason crossroads.Reason, detail string) {
	receipt, ok := h.audit(r, s)
	if !ok {
		h.cfg.Metrics.observe(s, s.rec.Outcome, crossroads.ReasonAuditUnavailable, h.cfg.Now())
		problem.Write(w, h.problem(s, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the exchange could not be recorded"))
		return
	}
	w.Header().Set(HeaderReceipt, receipt.Token)
	h.cfg.Metrics.observe(s, s.rec.Outcome, reason, h.cfg.Now())
	problem.Write(w, h.problem(s, status, reason, detail))
}

// fail answers without an audit record: only for requests with no
// authenticated actor to record (they are counted in the metrics).
func (h *Handler) fail(w http.ResponseWriter, s *state, status int, reason crossroads.Reason, detail string, _ bool) {
	h.cfg.Metrics.observe(s, crossroads.OutcomeDenied, reason, h.cfg.Now())
	problem.Write(w, h.problem(s, status, reason, detail))
}

func (h *Handler) problem(s *state, status int, reason crossroads.Reason, detail string) *problem.Details {
	p := problem.New(status, reason, detail)
	p.ExchangeID = s.rec.ExchangeID
	return p
}
