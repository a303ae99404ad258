package citizen_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/citizen"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// issuer is a local OpenID Connect issuer: discovery document and JWKS over
// TLS, ID tokens signed with an ES256 test key.
type issuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	iss := &issuer{key: newKey(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.srv.URL,
			"authorization_endpoint":                iss.srv.URL + "/authorize",
			"token_endpoint":                        iss.srv.URL + "/token",
			"jwks_uri":                              iss.srv.URL + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &iss.key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"},
		}})
	})
	iss.srv = httptest.NewTLSServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// token signs claims with key (the issuer's when nil) under key id k1.
func (iss *issuer) token(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	if key == nil {
		key = iss.key
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (iss *issuer) claims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.srv.URL, "aud": "crossroads-citizen", "sub": sub,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// insz returns the valid INSZ of nine digits (born before 2000).
func insz(nine string) string {
	n, _ := strconv.ParseInt(nine, 10, 64)
	return fmt.Sprintf("%s%02d", nine, 97-n%97)
}

var (
	alice = insz("850730033")
	bob   = insz("900101123")
)

type env struct {
	iss   *issuer
	h     *citizen.Handler
	trail *audit.Trail
}

func setup(t *testing.T, mods ...func(*citizen.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.OpenAudit(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return setupOn(t, dir, st, mods...)
}

// setupOn sets up the trail on the audit store st (data directory dir).
func setupOn(t *testing.T, dir string, st audit.Store, mods ...func(*citizen.Config)) *env {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := audit.Open(ctx, audit.Config{Dir: dir, Store: st, MaxMergeDelay: 400 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	now := time.Now().UTC()
	recs := []struct {
		subject string
		age     time.Duration
	}{{alice, time.Hour}, {bob, 2 * time.Hour}, {alice, 24 * time.Hour}, {alice, 400 * 24 * time.Hour}, {bob, 3 * time.Hour}, {"", time.Hour}}
	for i, r := range recs {
		if _, err := tr.Commit(ctx, &crossroads.AuditRecord{
			ExchangeID: fmt.Sprintf("ex-%d", i), Time: now.Add(-r.age), Requester: "inst-a", Provider: "src-b",
			Service: "svc-income", Subject: r.subject, Purpose: "benefit-check", AuthorisationRef: "DEL-24/123",
			Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed,
		}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := note.NewVerifier(tr.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // stops a hung test only
	for {
		cp, err := tr.Checkpoint(ctx)
		if err == nil {
			if c, err := verify.OpenCheckpoint(cp, v); err == nil && c.N == int64(len(recs)) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("records not integrated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	iss := newIssuer(t)
	cfg := citizen.Config{
		Issuer: iss.srv.URL, ClientID: "crossroads-citizen", Scheme: personid.INSZ{}, Trail: tr,
		HTTPClient: iss.srv.Client(), Logger: quiet,
	}
	for _, m := range mods {
		m(&cfg)
	}
	h, err := citizen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{iss: iss, h: h, trail: tr}
}

func (e *env) get(t *testing.T, token, query string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, citizen.Path+query, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) citizen.Response {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp citizen.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOwnRecordsWithProofs(t *testing.T) {
	e := setup(t)
	// The identifier may carry the usual separators.
	sub := alice[:2] + "." + alice[2:4] + "." + alice[4:6] + "-" + alice[6:9] + "." + alice[9:]
	resp := decode(t, e.get(t, e.iss.token(t, nil, e.iss.claims(sub)), ""))
	if len(resp.Exchanges) != 2 {
		t.Fatalf("%d exchanges in the last 12 months, want 2: %+v", len(resp.Exchanges), resp.Exchanges)
	}
	v, err := note.NewVerifier(resp.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range resp.Exchanges {
		if x.ExchangeID != "ex-0" && x.ExchangeID != "ex-2" {
			t.Errorf("exchange %s is not about the caller", x.ExchangeID)
		}
		if x.Institution != "inst-a" || x.Service != "svc-income" || x.Purpose != "benefit-check" || x.AuthorisationRef != "DEL-24/123" || x.Time.IsZero() {
			t.Errorf("entry %+v", x)
		}
		p, err := verify.ParseProof([]byte(x.Proof))
		if err != nil {
			t.Fatalf("%s: %v", x.ExchangeID, err)
		}
		if _, err := verify.CheckProof(p, v, tlog.Hash(audit.LeafHash(p.Extra))); err != nil {
			t.Fatalf("%s: %v", x.ExchangeID, err)
		}
	}
	// A longer period includes the older record.
	resp = decode(t, e.get(t, e.iss.token(t, nil, e.iss.claims(alice)), "?from="+time.Now().AddDate(-2, 0, 0).Format(time.DateOnly)))
	if len(resp.Exchanges) != 3 {
		t.Fatalf("%d exchanges in two years, want 3", len(resp.Exchanges))
	}
	resp = decode(t, e.get(t, e.iss.token(t, nil, e.iss.claims(bob)), ""))
	if len(resp.Exchanges) != 2 || resp.Exchanges[0].ExchangeID != "ex-1" && resp.Exchanges[0].ExchangeID != "ex-4" {
		t.Fatalf("bob: %+v", resp.Exchanges)
	}
	// Nobody else's records.
	resp = decode(t, e.get(t, e.iss.token(t, nil, e.iss.claims(insz("770101001"))), ""))
	if len(resp.Exchanges) != 0 {
		t.Fatalf("stranger sees %+v", resp.Exchanges)
	}
	if rec := e.get(t, e.iss.token(t, nil, e.iss.claims(alice)), "?from=tomorrow"); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad from: %d", rec.Code)
	}
}

func TestSubjectClaim(t *testing.T) {
	e := setup(t, func(c *citizen.Config) { c.SubjectClaim = "national_id" })
	c := e.iss.claims("opaque-pairwise-id")
	c["national_id"] = bob
	if resp := decode(t, e.get(t, e.iss.token(t, nil, c), "")); len(resp.Exchanges) != 2 {
		t.Fatalf("%d exchanges, want 2", len(resp.Exchanges))
	}
	// A token without a valid identifier in the claim is refused.
	if rec := e.get(t, e.iss.token(t, nil, e.iss.claims(bob)), ""); rec.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", rec.Code)
	}
}

func TestTokenRefused(t *testing.T) {
	e := setup(t)
	other := newIssuer(t)
	expired := e.iss.claims(alice)
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	audience := e.iss.claims(alice)
	audience["aud"] = "another-client"
	wrongIss := e.iss.claims(alice)
	wrongIss["iss"] = other.srv.URL
	for name, c := range map[string]struct{ tok, reason string }{
		"missing":        {"", "Authentication required"},
		"garbage":        {"not-a-jwt", "malformed token"},
		"expired":        {e.iss.token(t, nil, expired), "token expired"},
		"wrong audience": {e.iss.token(t, nil, audience), "wrong audience"},
		"wrong issuer":   {e.iss.token(t, nil, wrongIss), "wrong issuer"},
		"other issuer":   {other.token(t, nil, other.claims(alice)), "bad signature"},
		"bad signature":  {e.iss.token(t, newKey(t), e.iss.claims(alice)), "bad signature"},
	} {
		t.Run(name, func(t *testing.T) {
			tok := c.tok
			rec := e.get(t, tok, "")
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			var p struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 401 {
				t.Errorf("problem %s: %v", rec.Body, err)
			}
			if !strings.Contains(rec.Body.String(), c.reason) {
				t.Errorf("problem %s does not say %q", rec.Body, c.reason)
			}
			if strings.Contains(rec.Body.String(), alice) {
				t.Error("person id echoed")
			}
		})
	}
}

func TestIssuerUnreachable(t *testing.T) {
	e := setup(t)
	tok := e.iss.token(t, nil, e.iss.claims(alice))
	e.iss.srv.Close()
	if rec := e.get(t, tok, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}
