// Package provider is for authentic sources behind a Crossroads hub: an
// http.Handler middleware that accepts only requests the hub made for this
// exchange, once (docs/provider.md).
//
// It reads the body within a limit, verifies the Crossroads-Hub-Signature
// against the network CA (pki.VerifyHubRequest: the hub signed it, it binds
// the method, request target, body digest and Crossroads headers, and was
// issued within the clock skew), refuses a second request with the same
// exchange id within the skew window, and passes the request on with the
// signed facts in its context (FromContext) and its body readable again.
// Refusals are RFC 9457 problems with a documented reason.
//
//	v := provider.New(provider.Config{Roots: networkCA})
//	mux.HandleFunc("GET /persons/{insz}", func(w http.ResponseWriter, r *http.Request) {
//		req, _ := provider.FromContext(r.Context())
//		... req.Requester, req.Purpose, req.Subject ...
//	})
//	http.Server{Handler: v.Wrap(mux), TLSConfig: ...}
package provider

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// Refusal reasons (the "reason" member of the problem; docs/provider.md).
const (
	// 401: no single, valid Crossroads-Hub-Signature by the hub, or one
	// that does not match the request (method, target, body, headers).
	ReasonInvalidSignature crossroads.Reason = "invalid-hub-signature"
	// 401: issued outside the allowed clock skew, or earlier than the
	// replay cache can still vouch for (it is full of fresher requests).
	ReasonStaleSignature crossroads.Reason = "stale-hub-signature"
	// 401: this exchange id has already been served.
	ReasonReplayed crossroads.Reason = "replayed-request"
	// 413: the body exceeds Config.MaxBody.
	ReasonBodyTooLarge = crossroads.ReasonBodyTooLarge
	// 400: the body could not be read.
	ReasonInvalidBody = crossroads.ReasonInvalidBody
)

// Defaults.
const (
	DefaultMaxBody      = 1 << 20
	DefaultMaxExchanges = 1 << 19 // ~38 MiB when full; ~8,700 exchanges/s sustained at a 1-minute skew
)

// Config configures a Verifier.
type Config struct {
	Roots *x509.CertPool // the network CA (ca.crt): the only trust anchor
	// MaxSkew is how far a signature's issuedAt may be from this server's
	// clock, either way (default pki.DefaultMaxSkew, one minute).
	MaxSkew time.Duration
	// MaxBody bounds the request body read (default DefaultMaxBody).
	MaxBody int64
	// MaxExchanges bounds the exchange ids remembered against replay
	// (default DefaultMaxExchanges). When full of ids still within the
	// window, the oldest second of them is forgotten and requests issued
	// that early are refused as stale: memory stays bounded and no replay
	// is ever accepted.
	MaxExchanges int
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger     // refusals are logged at Warn (default slog.Default())
}

// Verifier checks hub requests. Safe for concurrent use.
type Verifier struct {
	cfg  Config
	seen *replayCache
}

// New returns a Verifier. Roots is required.
func New(cfg Config) *Verifier {
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = pki.DefaultMaxSkew
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxExchanges <= 0 {
		cfg.MaxExchanges = DefaultMaxExchanges
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Verifier{cfg: cfg, seen: newReplayCache(cfg.MaxExchanges, cfg.MaxSkew)}
}

// Request is what the hub vouches for about a request: every field but
// Body comes from the signed claims.
type Request struct {
	ExchangeID    string // unique per exchange; quote it to the hub's operators
	Requester     string // participant id of the institution that asked
	User          string // the natural person on whose behalf it asked
	Purpose       string // the purpose code the authorisation covers
	Authorisation string // id of the authorisation that allowed the exchange
	Service       string // the service id
	Operation     string // the service operation the hub matched (e.g. read)
	// SubjectKind is the kind of Subject: person, enterprise, or "" when
	// the exchange is about no one. The claim's "" with a subject is read
	// as person (the wave-1 form).
	SubjectKind string
	Subject     string    // canonical identifier of the subject, if any
	Method      string    // = r.Method
	Target      string    // = r.URL.RequestURI(): escaped path and query
	IssuedAt    time.Time // when the hub signed
	Body        []byte    // the request body (also readable from r.Body)
}

type ctxKey struct{}

// FromContext returns the verified request facts the middleware put in a
// request's context.
func FromContext(ctx context.Context) (*Request, bool) {
	r, ok := ctx.Value(ctxKey{}).(*Request)
	return r, ok && r != nil
}

// NewContext returns ctx carrying req (for tests of handlers).
func NewContext(ctx context.Context, req *Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, req)
}

// Wrap returns next behind the verification.
func (v *Verifier) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, reason, detail := v.Verify(r)
		if reason != "" {
			status := http.StatusUnauthorized
			switch reason {
			case ReasonBodyTooLarge:
				status = http.StatusRequestEntityTooLarge
			case ReasonInvalidBody:
				status = http.StatusBadRequest
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Crossroads-Hub-Signature realm="crossroads"`) // RFC 9110 §11.6.1
			}
			problem.Error(w, status, reason, detail)
			return
		}
		r = r.WithContext(NewContext(r.Context(), req))
		r.Body = io.NopCloser(bytes.NewReader(req.Body))
		r.ContentLength = int64(len(req.Body))
		next.ServeHTTP(w, r)
	})
}

// Verify reads r's body and checks r; on refusal it returns the reason and
// a detail fit for the client (no internals), having logged the cause.
// Wrap is Verify plus the problem answer.
func (v *Verifier) Verify(r *http.Request) (*Request, crossroads.Reason, string) {
	if r.ContentLength > v.cfg.MaxBody {
		return nil, ReasonBodyTooLarge, "the request body exceeds " + strconv.FormatInt(v.cfg.MaxBody, 10) + " bytes"
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, v.cfg.MaxBody+1))
		if err != nil {
			v.cfg.Logger.Warn("provider: request body unreadable", "err", err)
			return nil, ReasonInvalidBody, "the request body could not be read"
		}
		if int64(len(b)) > v.cfg.MaxBody {
			return nil, ReasonBodyTooLarge, "the request body exceeds " + strconv.FormatInt(v.cfg.MaxBody, 10) + " bytes"
		}
		body = b
	}
	now := v.cfg.Now()
	c, err := pki.VerifyHubRequest(r, body, v.cfg.Roots, now, v.cfg.MaxSkew)
	if err != nil {
		// pki's error texts name fields, never their values.
		v.cfg.Logger.Warn("provider: request without a valid hub signature refused", "method", r.Method, "err", err)
		if errors.Is(err, pki.ErrStale) {
			return nil, ReasonStaleSignature, "the hub signature is outside the allowed clock skew"
		}
		return nil, ReasonInvalidSignature, "requests must come from the hub, signed for exactly this request"
	}
	switch v.seen.first(c.ExchangeID, c.IssuedAt, now) {
	case replayed:
		v.cfg.Logger.Warn("provider: replayed hub request refused", "exchange", c.ExchangeID)
		return nil, ReasonReplayed, "this exchange has already been served"
	case tooOld:
		v.cfg.Logger.Warn("provider: hub request older than the replay cache refused", "exchange", c.ExchangeID)
		return nil, ReasonStaleSignature, "the hub signature is older than this source can check for replay; retry"
	}
	kind := c.SubjectKind
	if kind == "" && c.Subject != "" {
		kind = crossroads.SubjectPerson
	}
	return &Request{
		ExchangeID: c.ExchangeID, Requester: c.Requester, User: c.User, Purpose: c.Purpose,
		Authorisation: c.AuthorisationID, Service: c.Service, Operation: c.Operation,
		SubjectKind: kind, Subject: c.Subject, Method: c.Method, Target: c.Path, IssuedAt: c.IssuedAt, Body: body,
	}, "", ""
}
