package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Cookies. The __Host- prefix makes the browser refuse them unless they
// are Secure, for path / and without a domain: no sibling host can set or
// read them.
const (
	sessionCookie = "__Host-crossroads-console"
	loginCookie   = "__Host-crossroads-login" // the pending OpenID Connect login
	langCookie    = "__Host-crossroads-lang"
)

// Roles of a session.
const (
	RoleCitizen  = "citizen"
	RoleOperator = "operator"
	RoleAuditor  = "auditor"
)

// session is a logged-in browser. It lives on the server only; the cookie
// carries its random id.
type session struct {
	id          string
	csrf        string // the anti-forgery token of its forms
	role        string
	person      string // canonical person id (citizens)
	participant string // operator or auditor participant acted for
	user        string // the natural person, as the token or certificate names them
	certSerial  string // bound client certificate (certificate login)
	created     time.Time
	last        time.Time
	pending     *pendingApply // a network change shown, awaiting confirmation
}

// pendingApply is a change whose diff the operator has been shown.
type pendingApply struct {
	token   string // the confirmation form's id of the change
	body    []byte // the network file
	version int64  // the registers' version the diff was computed at
	diff    string
}

// flow is a pending OpenID Connect login: state, nonce and PKCE verifier.
type flow struct {
	state, nonce, verifier string
	created                time.Time
}

// sessions is the server-side session store: in memory, per hub node (a
// console session does not move between nodes; the browser logs in again).
type sessions struct {
	idle, max time.Duration
	now       func() time.Time

	mu    sync.Mutex
	all   map[string]*session
	flows map[string]*flow
}

// flowLifetime bounds a login at the identity provider.
const flowLifetime = 10 * time.Minute

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, max: max, now: now, all: map[string]*session{}, flows: map[string]*flow{}}
}

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create opens a new session, always with a new id (never one a browser
// brought: no fixation).
func (s *sessions) create(seed session) *session {
	now := s.now()
	seed.id, seed.csrf, seed.created, seed.last = randomID(), randomID(), now, now
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.all[seed.id] = &seed
	return &seed
}

// get returns the live session of id, touching it; nil when unknown,
// idle too long or older than the absolute maximum.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.all[id]
	if !ok {
		return nil
	}
	if now.Sub(ss.last) > s.idle || now.Sub(ss.created) > s.max {
		delete(s.all, id)
		return nil
	}
	ss.last = now
	return ss
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.all, id)
	s.mu.Unlock()
}

// setPending records the change awaiting confirmation.
func (s *sessions) setPending(ss *session, p *pendingApply) {
	s.mu.Lock()
	ss.pending = p
	s.mu.Unlock()
}

// takePending returns and clears the pending change if token names it.
func (s *sessions) takePending(ss *session, token string) *pendingApply {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ss.pending
	if p == nil || subtle.ConstantTimeCompare([]byte(p.token), []byte(token)) != 1 {
		return nil
	}
	ss.pending = nil
	return p
}

func (s *sessions) sweepLocked(now time.Time) {
	for id, ss := range s.all {
		if now.Sub(ss.last) > s.idle || now.Sub(ss.created) > s.max {
			delete(s.all, id)
		}
	}
	for id, f := range s.flows {
		if now.Sub(f.created) > flowLifetime {
			delete(s.flows, id)
		}
	}
}

// startFlow stores a new login flow and returns its id.
func (s *sessions) startFlow(f *flow) string {
	id := randomID()
	f.created = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(f.created)
	s.flows[id] = f
	return id
}

// takeFlow returns and forgets the flow (a flow is good once).
func (s *sessions) takeFlow(id string) *flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.flows[id]
	delete(s.flows, id)
	if !ok || s.now().Sub(f.created) > flowLifetime {
		return nil
	}
	return f
}

// setCookie writes a Secure, HttpOnly cookie for path /.
func setCookie(w http.ResponseWriter, name, value string, maxAge int, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: sameSite})
}

func clearCookie(w http.ResponseWriter, name string, sameSite http.SameSite) {
	setCookie(w, name, "", -1, sameSite)
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// validCSRF reports whether the form's token is the session's
// (constant-time).
func validCSRF(ss *session, token string) bool {
	return ss != nil && token != "" && subtle.ConstantTimeCompare([]byte(ss.csrf), []byte(token)) == 1
}
