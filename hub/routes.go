package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/citizen"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/problem"
	"github.com/crossroads-hub/crossroads/siem"
)

// DefaultRetention is how long audit record payloads are kept by default.
const DefaultRetention = audit.MinRetention

// auditRoutes mounts the audit trail's publication (public, read-only),
// proofs (parties of the exchange), record search (auditors) and the
// citizens' view (authenticated by an OpenID Connect ID token).
func (h *Hub) auditRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "GET", Pattern: "/v1/log/", Access: httpapi.Public, Handler: h.Trail.LogHandler()},
		{Method: "GET", Pattern: "/v1/audit/proofs/{exchangeId}", Access: httpapi.Participant, Handler: h.Trail.ProofHandler()},
		{Method: "GET", Pattern: "/v1/audit/records", Access: httpapi.Auditor, Handler: h.canonicalSubject(h.Trail.RecordsHandler())},
		{Method: "GET", Pattern: citizen.Path, Access: httpapi.Public, Handler: h.citizenView(h.citizen)},
		{Method: "GET", Pattern: citizen.FilesPath, Access: httpapi.Public, Handler: h.citizenView(h.citizen.Files())},
		{Method: "GET", Pattern: citizen.EnterpriseExchangesPath, Access: httpapi.Optional, Handler: h.citizen.EnterpriseExchanges()},
		{Method: "GET", Pattern: citizen.EnterpriseFilesPath, Access: httpapi.Optional, Handler: h.citizen.EnterpriseFiles()},
	}
}

// citizenView is v, or a 404 problem when the hub has no OpenID Connect
// issuer for citizens.
func (h *Hub) citizenView(v http.Handler) http.Handler {
	if h.cfg.OIDCIssuer == "" {
		return http.HandlerFunc(notConfigured)
	}
	return v
}

// openAuditServices checks the retention and prepares the SIEM export and
// the citizens' handler.
func (h *Hub) openAuditServices(auditDir string) error {
	cfg := &h.cfg
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Retention > 0 && cfg.Retention < audit.MinRetention && !cfg.RetentionForce {
		return fmt.Errorf("retention %v is below the minimum of %v: force it explicitly if the law allows", cfg.Retention, audit.MinRetention)
	}
	if cfg.SIEMURL != "" {
		tc := &tls.Config{} // the exporter sets the TLS floor (1.3; 1.2 only with SIEMAllowTLS12)
		if cfg.SIEMRootCAs != "" {
			b, err := os.ReadFile(cfg.SIEMRootCAs)
			if err != nil {
				return fmt.Errorf("SIEM roots: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(b) {
				return fmt.Errorf("SIEM roots: no certificate in %s", cfg.SIEMRootCAs)
			}
		}
		var err error
		scfg := siem.Config{URL: cfg.SIEMURL, Source: h.Trail, TLS: tc, AllowTLS12: cfg.SIEMAllowTLS12,
			CursorFile: filepath.Join(auditDir, "siem.cursor"), Logger: cfg.Logger}
		if cs, ok := h.audits.(audit.CursorStore); ok && cfg.DatabaseURL != "" {
			scfg.Cursor = cs // shared by every node (multinode.go)
		}
		if h.SIEM, err = siem.New(scfg); err != nil {
			return err
		}
	}
	// Without an issuer the handler still serves enterprise
	// representatives authenticated by their certificates.
	ccfg := citizen.Config{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID,
		SubjectClaim: cfg.OIDCSubjectClaim, EnterpriseClaim: cfg.OIDCEnterpriseClaim, Scheme: h.Scheme, Trail: h.Trail, Logger: cfg.Logger}
	if cfg.OIDCRootCAs != "" {
		b, err := os.ReadFile(cfg.OIDCRootCAs)
		if err != nil {
			return fmt.Errorf("OpenID Connect roots: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("OpenID Connect roots: no certificate in %s", cfg.OIDCRootCAs)
		}
		// As citizen's default client (TLS 1.3, no redirects), with these roots.
		ccfg.HTTPClient = &http.Client{
			Timeout:       10 * time.Second,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c, err := citizen.New(ccfg)
	if err != nil {
		return err
	}
	h.citizen = c
	return nil
}

func notConfigured(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintln(w, `{"type":"about:blank","title":"Not configured","status":404,"detail":"This hub has no OpenID Connect issuer for citizens."}`)
}

// startAuditJobs starts the daily retention and the SIEM export; they stop
// with ctx.
func (h *Hub) startAuditJobs(ctx context.Context, jobs *sync.WaitGroup) {
	if h.cfg.Retention > 0 {
		jobs.Go(func() {
			tick := time.NewTicker(24 * time.Hour)
			defer tick.Stop()
			for {
				_, err := h.Trail.Erase(ctx, time.Now().Add(-h.cfg.Retention), h.cfg.RetentionForce)
				if err != nil && !errors.Is(err, context.Canceled) {
					h.log.Error("audit retention", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	if h.SIEM != nil {
		jobs.Go(func() { h.runSIEM(ctx) })
	}
}

// canonicalSubject writes the subject of an auditor's search in the
// network's canonical form ("85.07.30-033.28" → "85073003328"): the trail
// finds subjects through a blind index of the canonical form, so any other
// spelling would silently find nothing.
func (h *Hub) canonicalSubject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if v := q.Get("subject"); v != "" {
			// By the scheme of the subject kind searched for (person by default).
			c, err := personid.DefaultKinds(h.Scheme).Canonical(q.Get("subjectKind"), v)
			if err != nil {
				problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidSubject, "subject is not a valid identifier of the subject kind's scheme")
				return
			}
			q.Set("subject", c)
			r = r.Clone(r.Context())
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}
