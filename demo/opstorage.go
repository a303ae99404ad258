package demo

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opStorage is the identity provider's op.Storage: in memory, for the
// demo's people (subject: their national number) and staff (subject:
// their login; the ID token names their participant in ParticipantClaim).
// It grants the authorisation code flow only: no refresh tokens, no client
// credentials, no token exchange.
type opStorage struct {
	key      *ecdsa.PrivateKey
	kid      string
	clients  map[string]*opClient
	callback func(context.Context, string) string

	mu       sync.Mutex
	users    map[string]bool
	requests map[string]*authRequest
	codes    map[string]string // code → request id
	tokens   map[string]accessToken
}

type accessToken struct {
	subject string
	expires time.Time
}

// Lifetimes.
const (
	loginLifetime = 10 * time.Minute
	tokenLifetime = 10 * time.Minute
)

func newOPStorage(key *ecdsa.PrivateKey, kid string, people []Person, consoleRedirects []string) *opStorage {
	s := &opStorage{key: key, kid: kid, users: map[string]bool{}, requests: map[string]*authRequest{},
		codes: map[string]string{}, tokens: map[string]accessToken{},
		clients: map[string]*opClient{
			CitizenClientID: {id: CitizenClientID, redirects: []string{CitizenRedirect}, appType: op.ApplicationTypeNative},
			ConsoleClientID: {id: ConsoleClientID, redirects: consoleRedirects, appType: op.ApplicationTypeWeb},
		}}
	for _, p := range people {
		s.users[p.INSZ] = true
	}
	for login := range Staff {
		s.users[login] = true
	}
	return s
}

// authRequest is a pending or completed authorisation request.
type authRequest struct {
	*oidc.AuthRequest
	id, subject string
	done        bool
	authTime    time.Time
	created     time.Time
}

func (a *authRequest) GetID() string                      { return a.id }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string              { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.authTime }
func (a *authRequest) GetClientID() string                { return a.ClientID }
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}

var errNotFound = errors.New("not found")

func (s *opStorage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("a PKCE S256 code_challenge is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, r := range s.requests {
		if now.Sub(r.created) > loginLifetime {
			delete(s.requests, id)
		}
	}
	a := &authRequest{AuthRequest: req, id: randomToken(), created: now}
	s.requests[a.id] = a
	return a, nil
}

func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *opStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[s.codes[code]]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets the request and its code: a code is good once.
func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *opStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp := randomToken(), time.Now().Add(tokenLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = accessToken{subject: req.GetSubject(), expires: exp}
	return id, exp, nil
}

var errUnsupported = errors.New("not supported by the demo provider")

func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}
func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}
func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }
func (s *opStorage) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
	return nil
}
func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct {
	key *ecdsa.PrivateKey
	kid string
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.kid }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.key, s.kid}, nil
}
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{s.key, s.kid}}}, nil
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errNotFound
}

// AuthorizeClientIDSecret: the demo's clients are public (PKCE); none has a secret.
func (s *opStorage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errUnsupported
}

// setClaims puts the subject's claims in an ID token or userinfo answer.
func (s *opStorage) setClaims(info *oidc.UserInfo, subject string) {
	info.Subject = subject
	if p, ok := Staff[subject]; ok {
		info.Name = subject
		info.AppendClaims(ParticipantClaim, p)
	}
}

func (s *opStorage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, subject, _ string, _ []string) error {
	s.setClaims(info, subject)
	return nil
}

func (s *opStorage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errNotFound
	}
	s.setClaims(info, t.subject)
	return nil
}

func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}
func (s *opStorage) Health(context.Context) error { return nil }

// opClient is a registered client: public, authorisation code flow only.
type opClient struct {
	id        string
	redirects []string
	appType   op.ApplicationType
}

func (c *opClient) GetID() string                       { return c.id }
func (c *opClient) RedirectURIs() []string              { return c.redirects }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return c.appType }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *opClient) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration       { return tokenLifetime }
func (c *opClient) DevMode() bool                        { return false }
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
