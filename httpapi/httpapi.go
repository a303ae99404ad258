// Package httpapi is the hub's REST surface: routing, authentication of
// callers by their client certificate, the admin and participant APIs, the
// public registers, health, metrics and the OpenAPI document. The exchange
// pipeline and the audit trail bring their own handlers; this package
// mounts them.
package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/internal/httpjson"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

//go:embed openapi.json
var openAPI []byte

// Access says who may call a route.
type Access int

// Access levels.
const (
	Public      Access = iota // no client certificate needed
	Participant               // any active participant
	Operator                  // participants of kind operator
	Auditor                   // operators and auditors
	// Optional: a caller presenting a client certificate is authenticated
	// (and refused if it is not an active participant's); a caller without
	// one passes, for the handler to authenticate otherwise (ID tokens).
	Optional
)

// Route is one entry of the routing table; the OpenAPI test checks the
// table against openapi.json.
type Route struct {
	Method  string // "" for any method
	Pattern string // net/http ServeMux pattern path
	Access  Access
	Handler http.Handler
}

// Config wires the API.
type Config struct {
	Directory    *directory.Directory
	Scheme       personid.Scheme
	Exchange     http.Handler // mounted at /v1/exchange/
	CA           *pki.CA
	Certificates crossroads.CertificateStore
	// OnRevoke is called after certificates are revoked through the API, so
	// the server can close their connections at once.
	OnRevoke    func(serials []string)
	Revocations *pki.Revocations
	Gatherer    prometheus.Gatherer
	Ready       func(ctx context.Context) error
	Logger      *slog.Logger
	// Extra routes brought by other packages (the audit trail's log, proofs
	// and queries).
	Extra []Route
	Now   func() time.Time

	// Audit makes every operator's act (applies, certificates) and every
	// change to the person directory (and every search of its history) a
	// record of the verifiable trail before it happens;
	// without it such acts are refused (503 audit-unavailable).
	Audit crossroads.AuditLog
	// Kinds are the network's subject kinds; nil: personid.DefaultKinds(Scheme).
	Kinds personid.Kinds
	// IntegrationBackdate is how far before now a participant may date
	// the start or end of a file (default 0: not before now). Operators
	// are not bound by it.
	IntegrationBackdate time.Duration
	// IntegrationLimits bound each participant's integration API calls;
	// nil: DefaultIntegrationLimits; a zero Limits: no limit.
	IntegrationLimits *crossroads.Limits
	// Origins are the origins, besides the hub's own (https://<Host>), from
	// which a browser may send state-changing admin requests (the console's,
	// if it is served elsewhere). See samesite.go.
	Origins []string
}

// API is the hub's HTTP handler.
type API struct {
	cfg        Config
	mux        *http.ServeMux
	routes     []Route
	intLimiter *limit.Limiter
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.Kinds == nil {
		cfg.Kinds = personid.DefaultKinds(cfg.Scheme)
	}
	intLimits := DefaultIntegrationLimits
	if cfg.IntegrationLimits != nil {
		intLimits = *cfg.IntegrationLimits
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), intLimiter: limit.New(limit.Config{Default: intLimits, Now: cfg.Now})}
	a.routes = append(a.baseRoutes(), cfg.Extra...)
	for _, r := range a.routes {
		pattern := r.Pattern
		if r.Method != "" {
			pattern = r.Method + " " + pattern
		}
		h := a.guard(r.Access, r.Handler)
		if stateChanging(r) {
			h = a.sameSite(h)
		}
		a.mux.Handle(pattern, h)
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Error(w, http.StatusNotFound, "not-found", "no such resource")
	})
	return a
}

// Routes returns the routing table.
func (a *API) Routes() []Route { return a.routes }

func (a *API) baseRoutes() []Route {
	return []Route{
		{"GET", "/healthz", Public, http.HandlerFunc(a.healthz)},
		{"GET", "/readyz", Public, http.HandlerFunc(a.readyz)},
		{"GET", "/metrics", Public, promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{})},
		{"GET", "/openapi.json", Public, http.HandlerFunc(serveOpenAPI)},
		{"GET", "/v1/authorizations", Public, http.HandlerFunc(a.listAuthorisations)},
		{"GET", "/v1/services", Public, http.HandlerFunc(a.listServices)},
		{"", "/v1/exchange/", Participant, a.cfg.Exchange},
		{"GET", "/v1/integrations", Participant, http.HandlerFunc(a.listIntegrations)},
		{"PUT", "/v1/integrations", Participant, http.HandlerFunc(a.putIntegration)},
		{"DELETE", "/v1/integrations", Participant, http.HandlerFunc(a.deleteIntegration)},
		{"GET", "/v1/audit/integrations", Auditor, http.HandlerFunc(a.integrationHistory)},
		{"GET", "/v1/admin/network", Operator, http.HandlerFunc(a.getNetwork)},
		{"POST", "/v1/admin/apply", Operator, http.HandlerFunc(a.postApply)},
		{"GET", "/v1/admin/certificates", Operator, http.HandlerFunc(a.listCertificates)},
		{"POST", "/v1/admin/certificates", Operator, http.HandlerFunc(a.signCSR)},
		{"POST", "/v1/admin/certificates/{serial}/revoke", Operator, http.HandlerFunc(a.revokeCertificate)},
		{"GET", "/v1/admin/registers/{kind}", Auditor, http.HandlerFunc(a.readRegister)},
		{"GET", "/v1/admin/registers/{kind}/{id}", Auditor, http.HandlerFunc(a.readRegister)},
	}
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.cfg.Logger.Error("handler panic", "route", r.Pattern, "panic", v)
			problem.Error(w, http.StatusInternalServerError, "internal-error", "")
		}
	}()
	// Exchanges validate (and audit) their own paths; other non-canonical
	// paths are refused rather than redirected by the mux.
	if p := r.URL.EscapedPath(); strings.HasPrefix(p, "/v1/exchange/") && a.cfg.Exchange != nil {
		a.cfg.Exchange.ServeHTTP(w, r)
		return
	} else if !canonical(p) {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidPath, "the path must not contain dot or empty segments")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// canonical reports whether p has no dot segments and no empty segments
// (but a trailing slash).
func canonical(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i < len(segs)-1) {
			return false
		}
	}
	return true
}

// guard authenticates the caller for non-public routes. The exchange
// handler authenticates (and audits) on its own, so that refusals of a
// known certificate are recorded.
func (a *API) guard(access Access, h http.Handler) http.Handler {
	if access == Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/exchange/") {
			h.ServeHTTP(w, r)
			return
		}
		if access == Optional && !inProcess(r) && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
			h.ServeHTTP(w, r)
			return
		}
		p, status, reason, detail := a.caller(r) // console.go
		if p == nil {
			problem.Error(w, status, reason, detail)
			return
		}
		switch {
		case access == Operator && p.Kind != crossroads.KindOperator,
			access == Auditor && p.Kind != crossroads.KindOperator && p.Kind != crossroads.KindAuditor:
			problem.Error(w, http.StatusForbidden, "forbidden", "this resource is for operators")
			return
		}
		h.ServeHTTP(w, r.WithContext(crossroads.WithCaller(r.Context(), p)))
	})
}

func (a *API) authenticate(r *http.Request) (*crossroads.Participant, int, crossroads.Reason, string) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required"
	}
	id, _, err := pki.CheckPeer(r.TLS, a.cfg.Revocations, a.cfg.Now())
	switch {
	case errors.Is(err, pki.ErrRevoked), errors.Is(err, pki.ErrExpired):
		return nil, http.StatusForbidden, crossroads.ReasonCertificateRevoked, "the client certificate has been revoked or has expired"
	case err != nil:
		return nil, http.StatusUnauthorized, crossroads.ReasonCertificateError, "the client certificate names no participant"
	}
	p, ok := a.cfg.Directory.Participant(id)
	if !ok {
		return nil, http.StatusForbidden, crossroads.ReasonUnknownParticipant, "the certificate's participant is not registered"
	}
	if p.Status != crossroads.StatusActive {
		return nil, http.StatusForbidden, crossroads.ReasonParticipantSuspended, "the participant is suspended"
	}
	return p, 0, "", ""
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.cfg.Ready(ctx); err != nil {
			a.cfg.Logger.Warn("not ready", "err", err)
			problem.Error(w, http.StatusServiceUnavailable, "not-ready", "the hub is not ready to serve exchanges")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }
