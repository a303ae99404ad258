// Package console is the hub's browser console, served at /console/ on the
// hub's own listener: server-rendered pages (html/template, embedded
// templates and styles, no third-party assets, a little JavaScript only to
// verify inclusion proofs in the browser), in Dutch, French and English.
//
// Three kinds of people use it:
//
//   - Citizens log in with OpenID Connect (authorisation code flow with
//     PKCE, state and nonce; the relying party discovers any provider) and
//     see every access to their data and the files institutions hold on
//     them, each with a proof that it is in the public log.
//   - Operators and auditors log in with their client certificate, or with
//     OpenID Connect when their token names the participant they act for
//     in a configured claim. Every act goes through the hub's API as that
//     participant (httpapi.API.ServeAs), so it is validated and recorded
//     exactly as its API twin.
//   - Anyone reads the public register of authorisations.
//
// Sessions live on the server (an idle timeout and an absolute lifetime),
// identified by a random id in a Secure, HttpOnly, SameSite=Strict cookie
// minted anew at every login; every state-changing form carries the
// session's anti-forgery token and must come from the hub's own origin
// (docs/api.md "Cross-site requests").
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
)

// Path is where the console is served.
const Path = "/console/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// API is what the console needs of the hub's API: serving a request as a
// participant, through the same routes, checks and audit records as a
// request of that participant's certificate (*httpapi.API).
type API interface {
	ServeAs(w http.ResponseWriter, r *http.Request, participant string)
}

// Settings are the console's own settings in the hub's configuration.
type Settings struct {
	// URL is the console's external base URL (https://host:port), from
	// which its OpenID Connect redirect URI is made (URL/console/callback).
	// Empty: no OpenID Connect login (certificate login only).
	URL string
	// ClientID (and ClientSecret, for a confidential client) are the
	// console's registration at the issuer; empty ClientID: the hub's
	// OIDCClientID.
	ClientID, ClientSecret string
	// ParticipantClaim names the ID-token claim that names the operator or
	// auditor participant the holder acts for (default
	// "crossroads_participant"). A token without it logs a citizen in.
	ParticipantClaim string
	// Hostnames are the console's own host names, on which the hub does
	// not ask for a client certificate (browsers would show a certificate
	// picker to citizens); default: the host of URL when it is a DNS name.
	// Certificate logins use the hub's other names.
	Hostnames []string
	// IdleTimeout ends a session unused that long (default 15 minutes);
	// MaxAge ends any session (default 8 hours).
	IdleTimeout, MaxAge time.Duration
}

// Config wires a Console.
type Config struct {
	Settings
	Directory   *directory.Directory
	Trail       *audit.Trail
	Scheme      personid.Scheme
	Revocations *pki.Revocations
	// API is resolved at each use (the hub builds its API after its features).
	API      func() API
	Gatherer prometheus.Gatherer
	Limiter  *limit.Limiter
	// Retention is the audit payload retention (for the records of processing).
	Retention time.Duration
	// Issuer and SubjectClaim are the hub's OpenID Connect issuer and the
	// claim with the person id; HTTPClient reaches the issuer.
	Issuer, SubjectClaim string
	HTTPClient           *http.Client
	// Witnesses is the number of witnesses configured and Quorum how many
	// must cosign.
	Witnesses, Quorum int
	Logger            *slog.Logger
	Now               func() time.Time
}

// Console serves the pages.
type Console struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	sess  *sessions
	pages map[string]map[string]*template.Template // lang → page → template
	rp    *relyingParty                            // nil without OpenID Connect
	samp  sampler                                  // metrics samples (metrics.go)
}

// New prepares the console.
func New(cfg Config) (*Console, error) {
	if cfg.Directory == nil || cfg.Trail == nil || cfg.Scheme == nil || cfg.API == nil {
		return nil, fmt.Errorf("console: directory, trail, scheme and API are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 8 * time.Hour
	}
	if cfg.ParticipantClaim == "" {
		cfg.ParticipantClaim = "crossroads_participant"
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = "sub"
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"), mux: http.NewServeMux(),
		sess: newSessions(cfg.IdleTimeout, cfg.MaxAge, cfg.Now)}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	if cfg.Issuer != "" && cfg.URL != "" && cfg.ClientID != "" {
		c.rp = newRelyingParty(cfg)
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/{$}", c.home)
	c.mux.HandleFunc("GET /console/register", c.register)
	c.mux.HandleFunc("GET /console/login", c.login)
	c.mux.HandleFunc("GET /console/callback", c.callback)
	c.mux.HandleFunc("GET /console/login/certificate", c.certificateLogin)
	c.mux.HandleFunc("POST /console/logout", c.form(anyRole, c.logout))
	// Citizens.
	c.mux.HandleFunc("GET /console/me", c.page(citizenOnly, c.me))
	c.mux.HandleFunc("GET /console/me/print", c.page(citizenOnly, c.mePrint))
	c.mux.HandleFunc("GET /console/me/data.json", c.page(citizenOnly, c.meJSON))
	// Operators.
	c.mux.HandleFunc("GET /console/ops", c.page(operatorOnly, c.ops))
	c.mux.HandleFunc("GET /console/ops/metrics.svg", c.page(operatorOnly, c.metricsSVG))
	c.mux.HandleFunc("POST /console/ops/authorisations/{id}/status", c.form(operatorOnly, c.authorisationStatus))
	c.mux.HandleFunc("POST /console/ops/network", c.form(operatorOnly, c.networkFile))
	c.mux.HandleFunc("POST /console/ops/apply", c.form(operatorOnly, c.confirmApply))
	c.mux.HandleFunc("POST /console/ops/certificates", c.form(operatorOnly, c.issueCertificate))
	c.mux.HandleFunc("POST /console/ops/certificates/{serial}/revoke", c.form(operatorOnly, c.revokeCertificate))
	// Auditors and DPOs (operators too).
	c.mux.HandleFunc("GET /console/audit", c.page(auditorOrOperator, c.auditSearch))
	c.mux.HandleFunc("GET /console/audit/records.csv", c.page(auditorOrOperator, c.auditCSV))
	c.mux.HandleFunc("GET /console/audit/records/{id}", c.page(auditorOrOperator, c.auditRecord))
	c.mux.HandleFunc("GET /console/gdpr", c.page(auditorOrOperator, c.gdpr))
	c.mux.HandleFunc("GET /console/gdpr/art30.csv", c.page(auditorOrOperator, c.art30CSV))
	c.mux.HandleFunc("GET /console/gdpr/dpia.csv", c.page(auditorOrOperator, c.dpiaCSV))
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "", "err.notfound")
	})
}

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: browsers would then send "Origin: null" with the forms
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// Role checks.
type roleCheck func(*session) bool

func anyRole(*session) bool             { return true }
func citizenOnly(s *session) bool       { return s.role == RoleCitizen }
func operatorOnly(s *session) bool      { return s.role == RoleOperator }
func auditorOrOperator(s *session) bool { return s.role == RoleOperator || s.role == RoleAuditor }

// current returns the request's live session: its cookie names one, and a
// certificate-bound session still comes over a connection with that
// certificate.
func (c *Console) current(r *http.Request) *session {
	ss := c.sess.get(cookieValue(r, sessionCookie))
	if ss == nil {
		return nil
	}
	if ss.certSerial != "" {
		_, leaf, err := pki.CheckPeer(r.TLS, c.cfg.Revocations, c.cfg.Now())
		if err != nil || leaf.SerialNumber.Text(16) != ss.certSerial {
			return nil
		}
	}
	if ss.participant != "" {
		// A suspended or removed participant's sessions end at once.
		p, ok := c.cfg.Directory.Participant(ss.participant)
		if !ok || p.Status != crossroads.StatusActive {
			c.sess.delete(ss.id)
			return nil
		}
	}
	return ss
}

type handler func(w http.ResponseWriter, r *http.Request, ss *session)

// page serves GET pages to sessions of the role.
func (c *Console) page(allowed roleCheck, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := c.current(r)
		if ss == nil {
			c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleSession, "err.session")
			return
		}
		if !allowed(ss) {
			c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleRole, "err.role")
			return
		}
		h(w, r, ss)
	}
}

// form serves state-changing POSTs: same origin, a live session of the
// role, and the session's anti-forgery token.
func (c *Console) form(allowed roleCheck, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if !sameOrigin(r) {
			c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleCSRF, "err.csrf")
			return
		}
		ss := c.current(r)
		if ss == nil {
			c.fail(w, r, http.StatusUnauthorized, crossroads.ReasonConsoleSession, "err.session")
			return
		}
		if err := r.ParseMultipartForm(maxForm); err != nil && err != http.ErrNotMultipart {
			c.fail(w, r, http.StatusBadRequest, "", "err.form")
			return
		}
		if !validCSRF(ss, r.PostFormValue("csrf")) {
			c.log.Warn("console form refused: anti-forgery token", "path", r.URL.Path)
			c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleCSRF, "err.csrf")
			return
		}
		if !allowed(ss) {
			c.fail(w, r, http.StatusForbidden, crossroads.ReasonConsoleRole, "err.role")
			return
		}
		h(w, r, ss)
	}
}

// maxForm bounds a form (a network file or a CSR fits).
const maxForm = 1 << 20

// sameOrigin applies the cross-site rules of the admin API to forms:
// Fetch Metadata, when sent, must say same-origin (or none: typed in), and
// an Origin, when sent, must be the hub's own.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "https://"+r.Host
}

// audit commits a console event before the act it records is acknowledged.
func (c *Console) audit(ctx context.Context, rec *crossroads.AuditRecord) error {
	_, err := c.cfg.Trail.Commit(ctx, rec)
	return err
}
