package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/pki"
)

// relyingParty is the console's OpenID Connect client: provider-agnostic
// (discovery, the provider's key set fetched and refreshed by go-oidc when
// a token names an unknown key), authorisation code flow with PKCE (S256),
// state and nonce.
type relyingParty struct {
	cfg Config
	ctx context.Context // carries the HTTP client for discovery and keys

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRelyingParty(cfg Config) *relyingParty {
	ctx := context.Background()
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	return &relyingParty{cfg: cfg, ctx: ctx}
}

// discover fetches the provider's metadata once it answers.
func (p *relyingParty) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oauth != nil {
		return p.oauth, p.verifier, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if p.cfg.HTTPClient != nil {
		dctx = oidc.ClientContext(dctx, p.cfg.HTTPClient)
	}
	prov, err := oidc.NewProvider(dctx, p.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("console: discovery of %s: %w", p.cfg.Issuer, err)
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := prov.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, nil, fmt.Errorf("console: discovery of %s: no jwks_uri", p.cfg.Issuer)
	}
	p.verifier = oidc.NewVerifier(p.cfg.Issuer, oidc.NewRemoteKeySet(p.ctx, meta.JWKS),
		&oidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now, SupportedSigningAlgs: []string{
			oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}})
	p.oauth = &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: prov.Endpoint(),
		RedirectURL: strings.TrimSuffix(p.cfg.URL, "/") + "/console/callback", Scopes: []string{oidc.ScopeOpenID, "profile"}}
	return p.oauth, p.verifier, nil
}

// login starts the OpenID Connect flow: a new flow (state, nonce, PKCE
// verifier) kept on the server, its id in a short-lived Lax cookie (it
// must come back on the provider's top-level redirect).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.rp == nil {
		c.fail(w, r, http.StatusNotFound, "", "err.nooidc")
		return
	}
	oc, _, err := c.rp.discover(r.Context())
	if err != nil {
		c.log.Error("console login: identity provider unavailable", "err", err)
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonConsoleLogin, "err.idp")
		return
	}
	f := &flow{state: randomID(), nonce: randomID(), verifier: oauth2.GenerateVerifier()}
	id := c.sess.startFlow(f)
	setCookie(w, loginCookie, id, int(flowLifetime/time.Second), http.SameSiteLaxMode)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce),
		oauth2.SetAuthURLParam("ui_locales", c.language(w, r))}
	if h := r.URL.Query().Get("login_hint"); h != "" && len(h) < 200 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", h))
	}
	http.Redirect(w, r, oc.AuthCodeURL(f.state, opts...), http.StatusFound)
}

// callback completes the flow: the state must be the flow's, the code is
// exchanged with the PKCE verifier, the ID token verified (issuer,
// audience, expiry, signature) and its nonce must be the flow's. Then a
// new session is made — with a new id, whatever cookie the browser had —
// and the login recorded in the trail before the session is handed out.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	if c.rp == nil {
		c.fail(w, r, http.StatusNotFound, "", "err.nooidc")
		return
	}
	fid := cookieValue(r, loginCookie)
	clearCookie(w, loginCookie, http.SameSiteLaxMode)
	f := c.sess.takeFlow(fid)
	q := r.URL.Query()
	if f == nil || q.Get("state") == "" || q.Get("state") != f.state {
		c.log.Info("console login refused", "reason", "state")
		c.fail(w, r, http.StatusBadRequest, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	if e := q.Get("error"); e != "" {
		c.log.Info("console login refused by the provider", "error", e)
		c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	oc, verifier, err := c.rp.discover(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonConsoleLogin, "err.idp")
		return
	}
	ctx := r.Context()
	if c.cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
	}
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		c.log.Info("console login refused", "reason", "token exchange", "err", err)
		c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil || idt.Nonce != f.nonce {
		c.log.Info("console login refused", "reason", "id token or nonce", "err", err)
		c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	seed, err := c.identify(claims)
	if err != nil {
		c.log.Info("console login refused", "reason", err.Error())
		c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleLogin, "err.login")
		return
	}
	c.open(w, r, seed, "oidc")
}

// identify maps an ID token's claims to a session: a participant claim
// naming an active operator or auditor, or else a valid person id.
func (c *Console) identify(claims map[string]any) (session, error) {
	user, _ := claims["name"].(string)
	if user == "" {
		user, _ = claims["preferred_username"].(string)
	}
	if pid, _ := claims[c.cfg.ParticipantClaim].(string); pid != "" {
		p, ok := c.cfg.Directory.Participant(pid)
		switch {
		case !ok || p.Status != crossroads.StatusActive:
			return session{}, errors.New("participant claim names no active participant")
		case p.Kind == crossroads.KindOperator:
			return session{role: RoleOperator, participant: p.ID, user: user}, nil
		case p.Kind == crossroads.KindAuditor:
			return session{role: RoleAuditor, participant: p.ID, user: user}, nil
		}
		return session{}, errors.New("participant claim names neither an operator nor an auditor")
	}
	id, _ := claims[c.cfg.SubjectClaim].(string)
	person, err := c.cfg.Scheme.Canonical(id)
	if id == "" || err != nil {
		return session{}, errors.New("no valid person identifier in the subject claim")
	}
	return session{role: RoleCitizen, person: person, user: user}, nil
}

// certificateLogin opens an operator's or auditor's session bound to the
// client certificate of the connection.
func (c *Console) certificateLogin(w http.ResponseWriter, r *http.Request) {
	id, leaf, err := pki.CheckPeer(r.TLS, c.cfg.Revocations, c.cfg.Now())
	if err != nil {
		c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleSession, "err.nocert")
		return
	}
	p, ok := c.cfg.Directory.Participant(id)
	if !ok || p.Status != crossroads.StatusActive || (p.Kind != crossroads.KindOperator && p.Kind != crossroads.KindAuditor) {
		c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleRole, "err.role")
		return
	}
	role := RoleAuditor
	if p.Kind == crossroads.KindOperator {
		role = RoleOperator
	}
	c.open(w, r, session{role: role, participant: p.ID, user: leaf.Subject.CommonName, certSerial: leaf.SerialNumber.Text(16)}, "certificate")
}

// open records the login and hands out a new session. The old session
// cookie's session, if any, ends.
func (c *Console) open(w http.ResponseWriter, r *http.Request, seed session, method string) {
	if old := cookieValue(r, sessionCookie); old != "" {
		c.sess.delete(old)
	}
	actor := seed.participant
	if actor == "" {
		actor = "citizen"
	}
	rec, err := audit.Event(crossroads.RecordConsole, crossroads.ConsoleLogin, actor, seed.user, map[string]string{"role": seed.role, "method": method})
	if err == nil && seed.person != "" {
		rec.SubjectKind, rec.Subject = crossroads.SubjectPerson, seed.person
	}
	if err == nil {
		err = c.audit(r.Context(), rec)
	}
	if err != nil {
		c.log.Error("console login not recorded; refused", "err", err)
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "err.audit")
		return
	}
	ss := c.sess.create(seed)
	setCookie(w, sessionCookie, ss.id, 0, http.SameSiteStrictMode)
	next := "/console/me"
	if ss.role != RoleCitizen {
		next = "/console/" + map[string]string{RoleOperator: "ops", RoleAuditor: "audit"}[ss.role]
	}
	// A page, not a redirect: the browser arrived here from the identity
	// provider (cross-site), so a redirect would still be cross-site and
	// the new SameSite=Strict cookie would not be sent; the page's own
	// refresh is a same-site navigation.
	c.render(w, r, http.StatusOK, "signedin", ss, view{Data: next})
}

// logout ends the session (recorded).
func (c *Console) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	actor := ss.participant
	if actor == "" {
		actor = "citizen"
	}
	if rec, err := audit.Event(crossroads.RecordConsole, crossroads.ConsoleLogout, actor, ss.user, map[string]string{"role": ss.role}); err == nil {
		if ss.person != "" {
			rec.SubjectKind, rec.Subject = crossroads.SubjectPerson, ss.person
		}
		if err := c.audit(r.Context(), rec); err != nil {
			c.log.Warn("console logout not recorded", "err", err) // the session ends all the same
		}
	}
	c.sess.delete(ss.id)
	clearCookie(w, sessionCookie, http.SameSiteStrictMode)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// home is the console's front page.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	ss := c.current(r)
	_, _, certErr := pki.CheckPeer(r.TLS, c.cfg.Revocations, c.cfg.Now())
	c.render(w, r, http.StatusOK, "home", ss, view{Data: map[string]bool{"OIDC": c.rp != nil, "Certificate": certErr == nil}})
}
