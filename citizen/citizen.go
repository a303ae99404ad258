// Package citizen serves data subjects their part of the audit trail:
// "who looked at my data, when, for what purpose" (design §3).
//
// A citizen authenticates with an OpenID Connect ID token issued by the
// configured issuer for the configured client, sent as
// "Authorization: Bearer <ID token>". The person identifier is taken from a
// claim of the token (default "sub"), canonicalised with the network's
// person id scheme, and the citizen sees the exchanges about that person
// only, each with its inclusion proof in the verifiable log.
package citizen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/problem"
)

// Path is the route of the handler.
const Path = "/v1/me/exchanges"

// DefaultPeriod is the period covered when the request gives no from.
const DefaultPeriod = 12 // months

// Trail is what the handler needs of the audit trail (*audit.Trail).
type Trail interface {
	BySubject(ctx context.Context, subject string, from, to time.Time) ([]audit.SubjectEntry, error)
	VerifierKey() string
}

// Config configures a Handler.
type Config struct {
	// Issuer is the OpenID Connect issuer URL (discovery at
	// Issuer/.well-known/openid-configuration).
	Issuer string
	// ClientID is the audience ID tokens must be issued for.
	ClientID string
	// SubjectClaim names the claim holding the person identifier
	// (default "sub").
	SubjectClaim string
	// Scheme validates and canonicalises the person identifier.
	Scheme personid.Scheme
	// Trail answers the lookups.
	Trail Trail
	// HTTPClient fetches the issuer's discovery document and keys
	// (default: 10 s timeout).
	HTTPClient *http.Client
	// Logger receives operational messages (never personal data).
	Logger *slog.Logger
	// Now defaults to time.Now (token expiry and the default period).
	Now func() time.Time
}

// Handler serves GET /v1/me/exchanges?from=&to= (RFC 3339 times or
// YYYY-MM-DD dates; default the last 12 months).
type Handler struct {
	cfg Config
	log *slog.Logger
	ctx context.Context // for discovery and key fetches

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // nil until discovery succeeded
}

// New returns a handler. The issuer's discovery document is fetched on
// first use (and again until it succeeds), so the hub starts even while
// the issuer is unreachable.
func New(cfg Config) (*Handler, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("citizen: issuer and client id are required")
	}
	if cfg.Trail == nil || cfg.Scheme == nil {
		return nil, errors.New("citizen: trail and person id scheme are required")
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{
		cfg: cfg,
		log: cfg.Logger.With("component", "citizen"),
		ctx: oidc.ClientContext(context.Background(), cfg.HTTPClient),
	}, nil
}

// idVerifier returns the ID token verifier, discovering the issuer first.
func (h *Handler) idVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.verifier != nil {
		return h.verifier, nil
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, h.cfg.HTTPClient), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, h.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("citizen: discovery of %s: %w", h.cfg.Issuer, err)
	}
	// The key set keeps h.ctx (its HTTP client), not the discovery timeout.
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, fmt.Errorf("citizen: discovery of %s: no jwks_uri", h.cfg.Issuer)
	}
	ks := oidc.NewRemoteKeySet(h.ctx, meta.JWKS)
	h.verifier = oidc.NewVerifier(h.cfg.Issuer, ks, &oidc.Config{
		ClientID: h.cfg.ClientID, SupportedSigningAlgs: supportedAlgs(meta.Algs), Now: h.cfg.Now,
	})
	return h.verifier, nil
}

// supportedAlgs keeps the asymmetric algorithms the issuer advertises
// (RS256 when it advertises none).
func supportedAlgs(advertised []string) []string {
	ok := map[string]bool{
		oidc.RS256: true, oidc.RS384: true, oidc.RS512: true, oidc.ES256: true, oidc.ES384: true,
		oidc.ES512: true, oidc.PS256: true, oidc.PS384: true, oidc.PS512: true, oidc.EdDSA: true,
	}
	var out []string
	for _, a := range advertised {
		if ok[a] {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{oidc.RS256}
	}
	return out
}

// Response is the answer to GET /v1/me/exchanges.
type Response struct {
	From      time.Time            `json:"from"`
	To        time.Time            `json:"to"`
	Exchanges []audit.SubjectEntry `json:"exchanges"`
	// LogKey is the note verifier key of the log's checkpoints, to check
	// the proofs with.
	LogKey string `json:"logKey"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeProblem(w, http.StatusMethodNotAllowed, "Method not allowed", "")
		return
	}
	raw, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads"`)
		writeProblem(w, http.StatusUnauthorized, "Authentication required", "Send an OpenID Connect ID token as a bearer token.")
		return
	}
	v, err := h.idVerifier(r.Context())
	if err != nil {
		h.log.Error("citizen identity provider unavailable", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "Identity provider unavailable", "")
		return
	}
	tok, err := v.Verify(r.Context(), raw)
	if err != nil {
		h.log.Info("citizen token refused", "reason", refusal(err))
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Invalid token", "The ID token is not valid for this service: "+refusal(err)+".")
		return
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Invalid token", "The ID token's claims cannot be read.")
		return
	}
	id, _ := claims[h.cfg.SubjectClaim].(string)
	subject, err := h.cfg.Scheme.Canonical(id)
	if id == "" || err != nil {
		h.log.Info("citizen token refused", "reason", "no valid person identifier", "claim", h.cfg.SubjectClaim)
		writeProblem(w, http.StatusForbidden, "No person identifier", "The ID token carries no valid person identifier in the claim "+h.cfg.SubjectClaim+".")
		return
	}
	from, to, err := h.period(r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid query", err.Error())
		return
	}
	ents, err := h.cfg.Trail.BySubject(r.Context(), subject, from, to)
	if err != nil {
		h.log.Error("citizen lookup", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "Audit trail unavailable", "")
		return
	}
	h.log.Info("citizen lookup", "records", len(ents))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(&Response{From: from, To: to, Exchanges: ents, LogKey: h.cfg.Trail.VerifierKey()})
}

// bearer returns the bearer token of the request.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

// refusal names why a token was refused, without echoing its content.
func refusal(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "token expired"
	case strings.Contains(msg, "different provider"):
		return "wrong issuer"
	case strings.Contains(msg, "audience"):
		return "wrong audience"
	case strings.Contains(msg, "signature"):
		return "bad signature"
	case strings.Contains(msg, "malformed"):
		return "malformed token"
	}
	return "verification failed"
}

// period parses from and to (default: the last DefaultPeriod months).
func (h *Handler) period(r *http.Request) (from, to time.Time, err error) {
	q := r.URL.Query()
	to = h.cfg.Now().UTC()
	if s := q.Get("to"); s != "" {
		if to, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	from = to.AddDate(0, -DefaultPeriod, 0)
	if s := q.Get("from"); s != "" {
		if from, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	}
	if !from.Before(to) {
		return from, to, errors.New("from must be before to")
	}
	return from, to, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time or a YYYY-MM-DD date")
}

// writeProblem answers with RFC 9457 problem details (package problem),
// with a title of its own.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	p := problem.New(status, "", detail)
	p.Title = title
	problem.Write(w, p)
}
