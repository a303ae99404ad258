package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// The demo's login: an OpenID Connect provider standing in for the
// national eID login — the OP of github.com/zitadel/oidc (discovery, JWKS,
// authorisation code flow with PKCE S256 required, ES256 ID tokens) over
// HTTPS with a self-signed certificate, on an in-memory storage of the
// demo's synthetic people and staff. Where a real eID login reads the
// person's card, the demo's login page asks for the national number.
const (
	CitizenClientID = "crossroads-demo-citizen"
	// CitizenRedirect is the citizen app's loopback redirect (RFC 8252).
	CitizenRedirect = "http://127.0.0.1/callback"
	// ConsoleClientID is the hub console's registration (a public client
	// with PKCE; its redirect is the console's /console/callback).
	ConsoleClientID = "crossroads-demo-console"
	// ParticipantClaim names, in the ID tokens of the demo's staff, the
	// participant they act for (the console's Settings.ParticipantClaim).
	ParticipantClaim = "crossroads_participant"
)

// Staff are the demo's operators and auditors who log in to the console
// with the identity provider: login name → participant acted for.
var Staff = map[string]string{"alice.operator": Operator, "bob.auditor": Auditor}

// IdentityProvider is the demo's OpenID Connect provider.
type IdentityProvider struct {
	Issuer  string // https://127.0.0.1:port
	CertPEM []byte // its self-signed certificate: the root to trust

	srv   *http.Server
	roots *x509.CertPool
	store *opStorage
}

// StartIdentityProvider serves the provider on a loopback port for the
// given people until Close. consoleRedirects are the console redirect URIs
// registered for ConsoleClientID.
func StartIdentityProvider(people []Person, logger *slog.Logger, consoleRedirects ...string) (*IdentityProvider, error) {
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
	p := &IdentityProvider{
		Issuer:  "https://" + ln.Addr().String(),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		roots:   x509.NewCertPool(),
	}
	p.roots.AddCert(cert)
	thumb := sha256.Sum256(elliptic.MarshalCompressed(elliptic.P256(), key.X, key.Y))
	p.store = newOPStorage(key, base64.RawURLEncoding.EncodeToString(thumb[:8]), people, consoleRedirects)
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey: cryptoKey, CodeMethodS256: true,
		SupportedUILocales: []language.Tag{language.English, language.Dutch, language.French},
	}, p.store, op.StaticIssuer(p.Issuer), op.WithLogger(logger))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("identity provider: %w", err)
	}
	p.store.callback = op.AuthCallbackURL(provider)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", p.store.loginPage)
	mux.Handle("POST /login", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(p.store.loginSubmit))
	mux.Handle("/", provider)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: tlsKey, Leaf: cert}}}
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go p.srv.Serve(tls.NewListener(ln, cfg))
	return p, nil
}

// Close stops the provider.
func (p *IdentityProvider) Close() { p.srv.Close() }

// Login logs the person in as the citizen app does: the authorisation
// request (state, nonce, PKCE), the provider's login page, the code from
// the redirect, the token request. It returns the ID token, checked for
// the nonce (it comes straight from the token endpoint over TLS, OpenID
// Connect Core 3.1.3.7).
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
	loc, err := p.follow(ctx, cl, http.MethodGet, p.Issuer+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	// The provider's login page: the person says who they are.
	id := loc.Query().Get("authRequestID")
	if id == "" {
		return "", fmt.Errorf("login: the provider sent no login page (%s)", loc.Redacted())
	}
	if loc, err = p.follow(ctx, cl, http.MethodPost, p.Issuer+"/login", url.Values{"authRequestID": {id}, "username": {person}}); err != nil {
		return "", err
	}
	for !strings.HasPrefix(loc.String(), CitizenRedirect) { // the provider's own callback, then the app's
		if loc, err = p.follow(ctx, cl, http.MethodGet, loc.String(), nil); err != nil {
			return "", err
		}
	}
	if e := loc.Query().Get("error"); e != "" {
		return "", fmt.Errorf("login: %s: %s", e, loc.Query().Get("error_description"))
	}
	if loc.Query().Get("state") != state {
		return "", errors.New("login: state does not match")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {CitizenClientID}, "redirect_uri": {CitizenRedirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := cl.Do(req)
	if err != nil {
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

// follow makes one request and returns the redirect's location.
func (p *IdentityProvider) follow(ctx context.Context, cl *http.Client, method, target string, form url.Values) (*url.URL, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("login: %s %s answered %d: %s", method, target, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return loc, nil
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginTemplate is the provider's login page (the demo's stand-in for
// reading an eID card).
var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo eID login</title></head>
<body><main><h1>Demo eID login</h1>
<p>This demo identity provider stands in for the national eID login. Give the national number of a demo person, or a staff login ({{.Staff}}).</p>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login"><input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">National number or staff login</label> <input id="username" name="username" value="{{.Hint}}" required autofocus>
<button type="submit" id="submit">Sign in</button></form></main></body></html>`))

func (s *opStorage) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	s.mu.Lock()
	ar, ok := s.requests[id]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown login request", http.StatusBadRequest)
		return
	}
	s.renderLogin(w, id, ar.LoginHint, "")
}

func (s *opStorage) renderLogin(w http.ResponseWriter, id, hint, msg string) {
	staff := make([]string, 0, len(Staff))
	for k := range Staff {
		staff = append(staff, k)
	}
	// No form-action: the login's redirects lead to the client, which
	// form-action would block.
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	loginTemplate.Execute(w, map[string]string{"ID": id, "Hint": hint, "Error": msg, "Staff": strings.Join(staff, ", ")})
}

func (s *opStorage) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	id, user := r.PostFormValue("authRequestID"), strings.TrimSpace(r.PostFormValue("username"))
	s.mu.Lock()
	ar, ok := s.requests[id]
	known := s.users[user]
	if ok && known {
		ar.subject, ar.done, ar.authTime = user, true, time.Now()
	}
	s.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "unknown login request", http.StatusBadRequest)
	case !known:
		s.renderLogin(w, id, user, "No such person or staff member in this demo.")
	default:
		http.Redirect(w, r, s.callback(r.Context(), id), http.StatusFound)
	}
}
