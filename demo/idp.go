package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The demo's citizen login: an OpenID Connect provider (authorisation code
// flow with PKCE, ES256 ID tokens) standing in for the national eID login,
// and the citizen app registered with it.
const (
	CitizenClientID = "crossroads-demo-citizen"
	// CitizenRedirect is the citizen app's loopback redirect (RFC 8252).
	CitizenRedirect = "http://127.0.0.1/callback"
)

// IdentityProvider is a small but real OpenID Connect provider: discovery,
// JWKS, an authorisation endpoint and a token endpoint, over HTTPS with a
// self-signed certificate, signing ID tokens with a P-256 key it generates.
// It authenticates the demo's synthetic people only: where a real eID login
// reads the person's card, the demo person is named by login_hint.
type IdentityProvider struct {
	Issuer  string // https://127.0.0.1:port
	CertPEM []byte // its self-signed certificate: the root to trust

	key    *ecdsa.PrivateKey
	kid    string
	people map[string]bool
	srv    *http.Server
	roots  *x509.CertPool

	mu    sync.Mutex
	codes map[string]grant
}

// grant is an issued authorisation code.
type grant struct {
	subject, nonce, challenge string
	expires                   time.Time
}

// codeLifetime bounds an authorisation code; tokenLifetime an ID token.
const (
	codeLifetime  = time.Minute
	tokenLifetime = 10 * time.Minute
)

// StartIdentityProvider serves the provider on a loopback port for the
// given people until Close.
func StartIdentityProvider(people []Person, logger *slog.Logger) (*IdentityProvider, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity provider key: %w", err)
	}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity provider TLS key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "Crossroads demo identity provider"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().AddDate(0, 0, 30),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &tlsKey.PublicKey, tlsKey)
	if err != nil {
		return nil, fmt.Errorf("identity provider certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	thumb := sha256.Sum256(elliptic.MarshalCompressed(elliptic.P256(), key.X, key.Y))
	p := &IdentityProvider{
		Issuer:  "https://" + ln.Addr().String(),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key, kid: base64.RawURLEncoding.EncodeToString(thumb[:8]),
		people: map[string]bool{}, roots: x509.NewCertPool(), codes: map[string]grant{},
	}
	p.roots.AddCert(cert)
	for _, person := range people {
		p.people[person.INSZ] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: cert}}}
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go p.srv.Serve(tls.NewListener(ln, cfg))
	return p, nil
}

// Close stops the provider.
func (p *IdentityProvider) Close() { p.srv.Close() }

func (p *IdentityProvider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSONNoStore(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/authorize",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"scopes_supported":                      []string{"openid"},
	})
}

func (p *IdentityProvider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSONNoStore(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: string(jose.ES256), Use: "sig"},
	}})
}

// authorize is the authorisation endpoint (OpenID Connect Core 3.1.2):
// response_type=code, scope with openid, the registered client and
// redirect URI, a PKCE S256 challenge, and the person in login_hint.
func (p *IdentityProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// An unknown client or redirect URI is never redirected to (3.1.2.6).
	if q.Get("client_id") != CitizenClientID || q.Get("redirect_uri") != CitizenRedirect {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}}
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		http.Redirect(w, r, CitizenRedirect+"?"+v.Encode(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only the authorisation code flow")
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		fail("invalid_scope", "scope must include openid")
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		fail("invalid_request", "a PKCE S256 code_challenge is required")
		return
	case !p.people[q.Get("login_hint")]:
		fail("access_denied", "no such person")
		return
	}
	code := randomToken()
	p.mu.Lock()
	now := time.Now()
	for c, g := range p.codes { // forget expired codes
		if now.After(g.expires) {
			delete(p.codes, c)
		}
	}
	p.codes[code] = grant{subject: q.Get("login_hint"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), expires: now.Add(codeLifetime)}
	p.mu.Unlock()
	v := url.Values{"code": {code}}
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	http.Redirect(w, r, CitizenRedirect+"?"+v.Encode(), http.StatusFound)
}

// token is the token endpoint (OpenID Connect Core 3.1.3): a code is good
// once, for its client, redirect URI and PKCE verifier.
func (p *IdentityProvider) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "unreadable form")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" {
		tokenError(w, "unsupported_grant_type", "only authorization_code")
		return
	}
	if f.Get("client_id") != CitizenClientID || f.Get("redirect_uri") != CitizenRedirect {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		writeJSONNoStore(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "unknown client or redirect_uri"})
		return
	}
	p.mu.Lock()
	g, ok := p.codes[f.Get("code")]
	delete(p.codes, f.Get("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case !ok || time.Now().After(g.expires):
		tokenError(w, "invalid_grant", "unknown, used or expired code")
		return
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		tokenError(w, "invalid_grant", "code_verifier does not match the challenge")
		return
	}
	now := time.Now()
	claims := map[string]any{"iss": p.Issuer, "aud": CitizenClientID, "sub": g.subject,
		"iat": now.Unix(), "exp": now.Add(tokenLifetime).Unix(), "auth_time": now.Unix()}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	idToken, err := p.sign(claims)
	if err != nil {
		http.Error(w, "cannot sign", http.StatusInternalServerError)
		return
	}
	writeJSONNoStore(w, http.StatusOK, map[string]any{"access_token": randomToken(), "token_type": "Bearer",
		"expires_in": int(tokenLifetime.Seconds()), "id_token": idToken})
}

func (p *IdentityProvider) sign(claims map[string]any) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: p.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Login logs the person in as the citizen app does: the authorisation
// request (state, nonce, PKCE), the code from the redirect, the token
// request. It returns the ID token, checked for the nonce (it comes
// straight from the token endpoint over TLS, OpenID Connect Core 3.1.3.7).
func (p *IdentityProvider) Login(ctx context.Context, person string) (string, error) {
	cl := &http.Client{Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: p.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer cl.CloseIdleConnections()
	state, nonce, verifier := randomToken(), randomToken(), randomToken()+randomToken()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {CitizenClientID}, "redirect_uri": {CitizenRedirect},
		"scope": {"openid"}, "state": {state}, "nonce": {nonce}, "login_hint": {person},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Issuer+"/authorize?"+q.Encode(), nil)
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), CitizenRedirect+"?") {
		return "", fmt.Errorf("login: authorisation answered %d", resp.StatusCode)
	}
	if e := back.Query().Get("error"); e != "" {
		return "", fmt.Errorf("login: %s: %s", e, back.Query().Get("error_description"))
	}
	if back.Query().Get("state") != state {
		return "", errors.New("login: state does not match")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"client_id": {CitizenClientID}, "redirect_uri": {CitizenRedirect}, "code_verifier": {verifier}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err = cl.Do(req); err != nil {
		return "", fmt.Errorf("login: token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.IDToken == "" {
		return "", fmt.Errorf("login: token endpoint answered %d %s", resp.StatusCode, tok.Error)
	}
	jws, err := jose.ParseSignedCompact(tok.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", fmt.Errorf("login: ID token: %w", err)
	}
	var claims struct{ Nonce string }
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil || claims.Nonce != nonce {
		return "", errors.New("login: ID token nonce does not match")
	}
	return tok.IDToken, nil
}

func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSONNoStore(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

func writeJSONNoStore(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
