package pki

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HTTP headers of the exchange protocol (canonical MIME form, so they can
// index http.Header directly).
const (
	HeaderExchangeID    = "Crossroads-Exchange-Id"
	HeaderRequester     = "Crossroads-Requester"
	HeaderUser          = "Crossroads-User"
	HeaderPurpose       = "Crossroads-Purpose"
	HeaderSubject       = "Crossroads-Subject"
	HeaderAuthorisation = "Crossroads-Authorisation"
	HeaderCorrelationID = "Crossroads-Correlation-Id"
	HeaderHubSignature  = "Crossroads-Hub-Signature"
	HeaderSeal          = "Crossroads-Seal"
	HeaderReceipt       = "Crossroads-Receipt" // the audit receipt of an exchange
)

// Errors of request and seal verification. Wrapped; test with errors.Is.
var (
	// ErrClaimsMismatch: the signed claims differ from the request or body.
	ErrClaimsMismatch = errors.New("pki: signed claims do not match the message")
	// ErrStale: the signature's time is outside the allowed skew.
	ErrStale = errors.New("pki: signature too old or in the future")
)

// DefaultMaxSkew is VerifyHubRequest's freshness window when none is given.
const DefaultMaxSkew = time.Minute

// timeLayout is RFC 3339 in UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// msTime is a time.Time that marshals as RFC 3339 UTC with milliseconds.
type msTime time.Time

func (t msTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

func (t *msTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	*t = msTime(v.UTC())
	return nil
}

// SealClaims is what the hub signs on every released response (the
// Crossroads-Seal header): exchange metadata, the digest of the released
// body and the time.
type SealClaims struct {
	ExchangeID      string    `json:"exchangeId"`
	Requester       string    `json:"requester"`
	Service         string    `json:"service"`
	Operation       string    `json:"operation,omitempty"`   // the service operation matched
	Method          string    `json:"method,omitempty"`      // the method asked
	Target          string    `json:"target,omitempty"`      // canonical request target: the template filled with the validated parameters, and the query
	SubjectKind     string    `json:"subjectKind,omitempty"` // kind of Subject; empty: person
	Subject         string    `json:"subject,omitempty"`
	Purpose         string    `json:"purpose"`
	AuthorisationID string    `json:"authorisationId,omitempty"`
	RequestDigest   string    `json:"requestDigest,omitempty"` // Digest of the request body, when there was one
	Status          int       `json:"status,omitempty"`        // HTTP status released
	ContentType     string    `json:"contentType,omitempty"`   // Content-Type released
	ResponseDigest  string    `json:"responseDigest"`          // Digest of the released body
	Time            time.Time `json:"time"`                    // RFC 3339, UTC, milliseconds
}

func (SealClaims) jwsType() string { return TypeSeal }

// MarshalJSON writes Time as RFC 3339 with milliseconds.
func (c SealClaims) MarshalJSON() ([]byte, error) {
	type plain SealClaims
	return json.Marshal(struct {
		plain
		Time msTime `json:"time"`
	}{plain(c), msTime(c.Time)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *SealClaims) UnmarshalJSON(b []byte) error {
	type plain SealClaims
	aux := struct {
		*plain
		Time msTime `json:"time"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	c.Time = time.Time(aux.Time)
	return nil
}

// RequestClaims is what the hub signs on every request it forwards to a
// provider (the Crossroads-Hub-Signature header).
type RequestClaims struct {
	ExchangeID      string `json:"exchangeId"`        // = Crossroads-Exchange-Id
	Requester       string `json:"requester"`         // = Crossroads-Requester
	User            string `json:"user,omitempty"`    // = Crossroads-User
	Purpose         string `json:"purpose"`           // = Crossroads-Purpose
	Subject         string `json:"subject,omitempty"` // = Crossroads-Subject
	AuthorisationID string `json:"authorisationId"`   // = Crossroads-Authorisation
	Service         string `json:"service"`
	Operation       string `json:"operation,omitempty"`   // the service operation the hub matched
	SubjectKind     string `json:"subjectKind,omitempty"` // kind of Subject; empty: person
	Method          string `json:"method"`
	// Path is the request target: escaped path and, if any, "?" and query
	// (url.URL.RequestURI).
	Path       string    `json:"path"`
	BodyDigest string    `json:"bodyDigest"` // Digest of the request body
	IssuedAt   time.Time `json:"issuedAt"`   // RFC 3339, UTC, milliseconds
}

func (RequestClaims) jwsType() string { return TypeRequest }

// MarshalJSON writes IssuedAt as RFC 3339 with milliseconds.
func (c RequestClaims) MarshalJSON() ([]byte, error) {
	type plain RequestClaims
	return json.Marshal(struct {
		plain
		IssuedAt msTime `json:"issuedAt"`
	}{plain(c), msTime(c.IssuedAt)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *RequestClaims) UnmarshalJSON(b []byte) error {
	type plain RequestClaims
	aux := struct {
		*plain
		IssuedAt msTime `json:"issuedAt"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	c.IssuedAt = time.Time(aux.IssuedAt)
	return nil
}

type headerBinding struct {
	name  string
	claim *string
}

// headerBindings lists the claims that must equal a request header.
func (c *RequestClaims) headerBindings() [6]headerBinding {
	return [6]headerBinding{
		{HeaderExchangeID, &c.ExchangeID},
		{HeaderRequester, &c.Requester},
		{HeaderUser, &c.User},
		{HeaderPurpose, &c.Purpose},
		{HeaderSubject, &c.Subject},
		{HeaderAuthorisation, &c.AuthorisationID},
	}
}

// checkHeaders reports the first header that differs from its claim. An
// absent header equals an empty claim; a repeated header never matches. With
// fill, an empty claim first takes the value of its header.
func (c *RequestClaims) checkHeaders(h http.Header, fill bool) error {
	for _, b := range c.headerBindings() {
		vals := h[b.name]
		if len(vals) > 1 {
			return fmt.Errorf("%w: header %s repeated", ErrClaimsMismatch, b.name)
		}
		v := ""
		if len(vals) == 1 {
			v = vals[0]
		}
		if fill && *b.claim == "" {
			*b.claim = v
		}
		if *b.claim != v {
			return fmt.Errorf("%w: header %s", ErrClaimsMismatch, b.name)
		}
	}
	return nil
}

func requestMethod(r *http.Request) string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// SignRequest signs an outgoing request whose Crossroads headers are already
// set, so that the signature covers exactly what is sent: it sets
// claims.Method, Path and BodyDigest from r and body, IssuedAt to the
// current time if zero, and each empty header-bound claim (ExchangeID,
// Requester, User, Purpose, Subject, AuthorisationID) to its header. A
// non-empty claim that differs from its header is an error. On success it
// sets Crossroads-Hub-Signature.
func SignRequest(s *Signer, r *http.Request, body []byte, claims RequestClaims) error {
	if r.URL == nil {
		return errors.New("pki: sign request: no URL")
	}
	claims.Method = requestMethod(r)
	claims.Path = r.URL.RequestURI()
	claims.BodyDigest = Digest(body)
	if claims.IssuedAt.IsZero() {
		claims.IssuedAt = time.Now()
	}
	if err := claims.checkHeaders(r.Header, true); err != nil {
		return fmt.Errorf("pki: sign request: %w", err)
	}
	tok, err := s.Sign(claims)
	if err != nil {
		return fmt.Errorf("pki: sign request: %w", err)
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header[HeaderHubSignature] = []string{tok}
	return nil
}

// VerifyHubRequest is for providers: it verifies the request's
// Crossroads-Hub-Signature against roots at now, that the hub (participant
// "hub") made it, that its claims equal the request's Crossroads headers,
// method, request target and the digest of body, and that it was issued
// within maxSkew (DefaultMaxSkew if <= 0) of now. Any difference is an
// error; error texts name fields, never their values. Within the skew window
// a captured request could be replayed: providers that care should refuse a
// second use of one exchange id.
func VerifyHubRequest(r *http.Request, body []byte, roots *x509.CertPool, now time.Time, maxSkew time.Duration) (RequestClaims, error) {
	var c RequestClaims
	if now.IsZero() {
		now = time.Now()
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	toks := r.Header[HeaderHubSignature]
	if len(toks) != 1 {
		return c, fmt.Errorf("pki: verify hub request: want one %s header, got %d: %w", HeaderHubSignature, len(toks), ErrInvalidSignature)
	}
	signer, err := Verify(toks[0], roots, now, &c)
	if err != nil {
		return RequestClaims{}, fmt.Errorf("pki: verify hub request: %w", err)
	}
	if signer != HubParticipant {
		return RequestClaims{}, fmt.Errorf("pki: verify hub request: signed by %q: %w", signer, ErrUnexpectedSigner)
	}
	switch {
	case c.Method != requestMethod(r):
		err = fmt.Errorf("%w: method", ErrClaimsMismatch)
	case r.URL == nil || c.Path != r.URL.RequestURI():
		err = fmt.Errorf("%w: path", ErrClaimsMismatch)
	case c.BodyDigest != Digest(body):
		err = fmt.Errorf("%w: body digest", ErrClaimsMismatch)
	default:
		err = c.checkHeaders(r.Header, false)
	}
	if err != nil {
		return RequestClaims{}, fmt.Errorf("pki: verify hub request: %w", err)
	}
	if d := now.Sub(c.IssuedAt); d > maxSkew || d < -maxSkew {
		return RequestClaims{}, fmt.Errorf("pki: verify hub request: issued %s from now: %w", d.Round(time.Millisecond), ErrStale)
	}
	return c, nil
}

// VerifySeal is for requesters: it verifies a Crossroads-Seal token against
// roots at now (pass the seal's own time to check an archived seal after the
// hub certificate expired), that the hub made it and that its response
// digest is the digest of body. It accepts v2 seals (a batch JWS, the claims
// and their inclusion proof: see SealSigner) and v1 seals (a compact JWS
// over the claims, Signer.Sign).
func VerifySeal(token string, body []byte, roots *x509.CertPool, now time.Time) (SealClaims, error) {
	var c SealClaims
	var signer string
	var err error
	if strings.Contains(token, SealSeparator) {
		signer, err = verifySealBatch(token, roots, now, &c)
	} else {
		signer, err = Verify(token, roots, now, &c)
	}
	if err != nil {
		return SealClaims{}, fmt.Errorf("pki: verify seal: %w", err)
	}
	if signer != HubParticipant {
		return SealClaims{}, fmt.Errorf("pki: verify seal: signed by %q: %w", signer, ErrUnexpectedSigner)
	}
	if c.ResponseDigest != Digest(body) {
		return SealClaims{}, fmt.Errorf("pki: verify seal: %w: response digest", ErrClaimsMismatch)
	}
	return c, nil
}
