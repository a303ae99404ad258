// Package citizen serves data subjects their part of the audit trail:
// "who looked at my data, when, for what purpose" and "who has a file on
// me" (design §3), for persons and for enterprises.
//
// A citizen authenticates with an OpenID Connect ID token issued by the
// configured issuer for the configured client, sent as
// "Authorization: Bearer <ID token>". The person identifier is taken from a
// claim of the token (default "sub"), canonicalised with the network's
// person id scheme, and the citizen sees the records about that person
// only — never those about an enterprise, even one whose number is written
// alike — each with its inclusion proof in the verifiable log.
//
// A company's representative sees the records about that enterprise,
// through the same API shape, either with an ID token carrying the
// enterprise number in a configured claim (EnterpriseClaim), or with the
// client certificate of a participant of kind enterprise-representative
// (crossroads.KindEnterpriseRepresentative), whose Enterprise names it.
//
// Every view pages, newest first, with an opaque, tamper-proof page token
// and a next link: nothing is ever dropped silently.
package citizen

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/problem"
)

// Routes of the views.
const (
	Path                    = "/v1/me/exchanges" // a person's exchanges (and searches of the trail for them)
	FilesPath               = "/v1/me/files"     // institutions' files on a person
	EnterpriseExchangesPath = "/v1/enterprise/exchanges"
	EnterpriseFilesPath     = "/v1/enterprise/files"
)

// DefaultPeriod is the period covered by the exchanges views when the
// request gives no from.
const DefaultPeriod = 12 // months

// DefaultLimit is the page size when the request gives none.
const DefaultLimit = 100

// Trail is what the handler needs of the audit trail (*audit.Trail).
type Trail interface {
	SubjectPage(ctx context.Context, q audit.SubjectQuery) (*audit.SubjectPage, error)
	VerifierKey() string
}

// Config configures a Handler.
type Config struct {
	// Issuer is the OpenID Connect issuer URL (discovery at
	// Issuer/.well-known/openid-configuration). Empty: no ID tokens are
	// accepted (only representatives' certificates, for the enterprise
	// views).
	Issuer string
	// ClientID is the audience ID tokens must be issued for.
	ClientID string
	// SubjectClaim names the claim holding the person identifier
	// (default "sub").
	SubjectClaim string
	// EnterpriseClaim names the claim holding the enterprise number of the
	// company the token's holder represents (validated with the CBE
	// scheme). Empty: ID tokens do not open the enterprise views.
	EnterpriseClaim string
	// Scheme validates and canonicalises the person identifier.
	Scheme personid.Scheme
	// Trail answers the lookups.
	Trail Trail
	// HTTPClient fetches the issuer's discovery document and keys
	// (default: TLS 1.3, no redirects, 10 s timeout).
	HTTPClient *http.Client
	// Logger receives operational messages (never personal data).
	Logger *slog.Logger
	// Now defaults to time.Now (token expiry and the default period).
	Now func() time.Time
}

// Handler serves the views: GET Path, FilesPath, EnterpriseExchangesPath
// and EnterpriseFilesPath, each with ?from=&to= (RFC 3339 times or
// YYYY-MM-DD dates; for exchanges the default is the last 12 months, for
// files all time), &limit= (1–1000, default 100) and &pageToken= (from the
// previous page's next link). ServeHTTP serves the person's exchanges.
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
	if cfg.Issuer != "" && cfg.ClientID == "" {
		return nil, errors.New("citizen: a client id is required with an issuer")
	}
	if cfg.Trail == nil || cfg.Scheme == nil {
		return nil, errors.New("citizen: trail and person id scheme are required")
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout:       10 * time.Second,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13}, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
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

// HTTPClient is the client that reaches the issuer (for another relying
// party of the same issuer, e.g. the console's login).
func (h *Handler) HTTPClient() *http.Client { return h.cfg.HTTPClient }

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

// Response is the answer of the exchanges views.
type Response struct {
	// Enterprise is the enterprise number, in the enterprise views.
	Enterprise string    `json:"enterprise,omitempty"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	// Exchanges are the exchanges about the subject and the searches of
	// the trail for them (kind audit-search), newest first.
	Exchanges []audit.SubjectEntry `json:"exchanges"`
	// Next is the link to the next page; absent on the last one.
	Next          string `json:"next,omitempty"`
	NextPageToken string `json:"nextPageToken,omitempty"`
	// LogKey is the note verifier key of the log's checkpoints, to check
	// the proofs with.
	LogKey string `json:"logKey"`
}

// FilesResponse is the answer of the files views.
type FilesResponse struct {
	Enterprise string     `json:"enterprise,omitempty"`
	From       *time.Time `json:"from,omitempty"`
	To         *time.Time `json:"to,omitempty"`
	// Files are the changes to institutions' files on the subject
	// (kind integration, action register, end or correct; file says which
	// institution, sector, capacity and period), newest first.
	Files         []audit.SubjectEntry `json:"files"`
	Next          string               `json:"next,omitempty"`
	NextPageToken string               `json:"nextPageToken,omitempty"`
	LogKey        string               `json:"logKey"`
}

// ServeHTTP serves the person's exchanges (Path).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false, false) }

// Files serves FilesPath.
func (h *Handler) Files() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false, true) })
}

// EnterpriseExchanges serves EnterpriseExchangesPath.
func (h *Handler) EnterpriseExchanges() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true, false) })
}

// EnterpriseFiles serves EnterpriseFilesPath.
func (h *Handler) EnterpriseFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true, true) })
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, enterprise, files bool) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeProblem(w, http.StatusMethodNotAllowed, "Method not allowed", "")
		return
	}
	var subject string
	var ok bool
	if enterprise {
		subject, ok = h.enterprise(w, r)
	} else {
		subject, ok = h.person(w, r)
	}
	if !ok {
		return
	}
	from, to, err := h.period(r, !files)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid query", err.Error())
		return
	}
	limit := DefaultLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > audit.MaxLimit {
			writeProblem(w, http.StatusBadRequest, "Invalid query", "limit: want 1 to 1000")
			return
		}
	}
	q := audit.SubjectQuery{Kind: crossroads.SubjectPerson, Subject: subject, Records: audit.ExchangeKinds,
		From: from, To: to, PageToken: r.URL.Query().Get("pageToken"), Limit: limit}
	if enterprise {
		q.Kind = crossroads.SubjectEnterprise
	}
	if files {
		q.Records = audit.FileKinds
	}
	p, err := h.cfg.Trail.SubjectPage(r.Context(), q)
	if errors.Is(err, crossroads.ErrInvalid) {
		writeProblem(w, http.StatusBadRequest, "Invalid query", "Bad page token: it does not continue this view.")
		return
	}
	if err != nil {
		h.log.Error("citizen lookup", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "Audit trail unavailable", "")
		return
	}
	next := ""
	if p.NextPageToken != "" {
		// The next page continues this very period, whatever "now" is then.
		nr := r.Clone(r.Context())
		v := nr.URL.Query()
		if !from.IsZero() {
			v.Set("from", from.Format(time.RFC3339Nano))
		}
		if !to.IsZero() {
			v.Set("to", to.Format(time.RFC3339Nano))
		}
		nr.URL.RawQuery = v.Encode()
		next = audit.NextLink(nr, p.NextPageToken)
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	h.log.Info("citizen lookup", "enterprise", enterprise, "files", files, "records", len(p.Entries))
	ent := ""
	if enterprise {
		ent = subject
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if files {
		resp := &FilesResponse{Enterprise: ent, Files: p.Entries, Next: next, NextPageToken: p.NextPageToken, LogKey: h.cfg.Trail.VerifierKey()}
		if !from.IsZero() {
			resp.From = &from
		}
		if !to.IsZero() {
			resp.To = &to
		}
		json.NewEncoder(w).Encode(resp)
		return
	}
	json.NewEncoder(w).Encode(&Response{Enterprise: ent, From: from, To: to, Exchanges: p.Entries, Next: next,
		NextPageToken: p.NextPageToken, LogKey: h.cfg.Trail.VerifierKey()})
}

// claims verifies the request's ID token and returns its claims; false
// (and the answer written) when there is none or it is not valid.
func (h *Handler) claims(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	raw, ok := bearer(r)
	if !ok || h.cfg.Issuer == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads"`)
		writeProblem(w, http.StatusUnauthorized, "Authentication required", "Send an OpenID Connect ID token as a bearer token.")
		return nil, false
	}
	v, err := h.idVerifier(r.Context())
	if err != nil {
		h.log.Error("citizen identity provider unavailable", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "Identity provider unavailable", "")
		return nil, false
	}
	tok, err := v.Verify(r.Context(), raw)
	if err != nil {
		h.log.Info("citizen token refused", "reason", refusal(err))
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Invalid token", "The ID token is not valid for this service: "+refusal(err)+".")
		return nil, false
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="crossroads", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Invalid token", "The ID token's claims cannot be read.")
		return nil, false
	}
	return claims, true
}

// person returns the canonical person id of the request's ID token.
func (h *Handler) person(w http.ResponseWriter, r *http.Request) (string, bool) {
	claims, ok := h.claims(w, r)
	if !ok {
		return "", false
	}
	id, _ := claims[h.cfg.SubjectClaim].(string)
	subject, err := h.cfg.Scheme.Canonical(id)
	if id == "" || err != nil {
		h.log.Info("citizen token refused", "reason", "no valid person identifier", "claim", h.cfg.SubjectClaim)
		writeProblem(w, http.StatusForbidden, "No person identifier", "The ID token carries no valid person identifier in the claim "+h.cfg.SubjectClaim+".")
		return "", false
	}
	return subject, true
}

// enterprise returns the canonical enterprise number the caller
// represents: that of its participant (kind enterprise-representative,
// authenticated by its certificate) or of its ID token's EnterpriseClaim.
func (h *Handler) enterprise(w http.ResponseWriter, r *http.Request) (string, bool) {
	if p, ok := crossroads.CallerFrom(r.Context()); ok {
		n, err := personid.Enterprise{}.Canonical(p.Enterprise)
		if p.Kind != crossroads.KindEnterpriseRepresentative || err != nil {
			writeProblem(w, http.StatusForbidden, "Not a representative", "Only participants of kind enterprise-representative naming a valid enterprise number see an enterprise's trail.")
			return "", false
		}
		return n, true
	}
	if h.cfg.EnterpriseClaim == "" {
		if _, ok := bearer(r); ok {
			writeProblem(w, http.StatusForbidden, "No enterprise identifier", "This hub does not accept ID tokens for enterprises; use a representative's certificate.")
			return "", false
		}
		writeProblem(w, http.StatusUnauthorized, "Authentication required", "Present the client certificate of an enterprise representative.")
		return "", false
	}
	claims, ok := h.claims(w, r)
	if !ok {
		return "", false
	}
	id, _ := claims[h.cfg.EnterpriseClaim].(string)
	n, err := personid.Enterprise{}.Canonical(id)
	if id == "" || err != nil {
		h.log.Info("enterprise token refused", "reason", "no valid enterprise number", "claim", h.cfg.EnterpriseClaim)
		writeProblem(w, http.StatusForbidden, "No enterprise identifier", "The ID token carries no valid enterprise number in the claim "+h.cfg.EnterpriseClaim+".")
		return "", false
	}
	return n, true
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

// period parses from and to. With defaults: to is now, from the last
// DefaultPeriod months; without, absent bounds stay zero (unbounded).
func (h *Handler) period(r *http.Request, defaults bool) (from, to time.Time, err error) {
	q := r.URL.Query()
	if defaults {
		to = h.cfg.Now().UTC()
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	if defaults {
		from = to.AddDate(0, -DefaultPeriod, 0)
	}
	if s := q.Get("from"); s != "" {
		if from, err = parseTime(s); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
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
