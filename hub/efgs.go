package hub

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/efgs"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/storage"
)

// EFGSConfig configures the federation gateway (issue 11, seed 004),
// served on the hub's mTLS listener under Prefix. The zero value serves it
// at /efgs with the reference's production defaults.
type EFGSConfig struct {
	Disabled bool
	Prefix   string // default /efgs
	// As efgs.Config (zero: the reference's defaults).
	MaxBatchKeys, MaxAgeDays, RetentionDays int
	// TrustedProxies: participant ids of load balancers whose
	// X-SSL-Client-SHA256 / X-SSL-Client-DN headers are trusted (default
	// none: the TLS connection authenticates).
	TrustedProxies   []string
	ThumbprintHeader string
	DNHeader         string
	// TrustAnchorFile is a PEM certificate that must have signed every
	// registered member certificate (empty: signatures stored, not checked).
	TrustAnchorFile       string
	CallbackInterval      time.Duration
	RetryWait             time.Duration
	AllowPrivateCallbacks bool // tests and demos only
}

// DefaultEFGSPrefix is where the gateway is served by default.
const DefaultEFGSPrefix = "/efgs"

func init() {
	addFeature(feature{name: "efgs", open: openEFGS, run: runEFGS, close: closeEFGS})
}

func openEFGS(ctx context.Context, h *Hub) ([]httpapi.Route, error) {
	c := h.cfg.EFGS
	if c.Disabled {
		return nil, nil
	}
	prefix := strings.TrimSuffix(c.Prefix, "/")
	if prefix == "" {
		prefix = DefaultEFGSPrefix
	}
	if !strings.HasPrefix(prefix, "/") || strings.HasPrefix(prefix, "/v1") {
		return nil, fmt.Errorf("federation gateway prefix %q must start with / and not be under /v1", prefix)
	}
	st, err := storage.OpenEFGS(ctx, h.cfg.DataDir, h.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	var anchor *x509.Certificate
	if c.TrustAnchorFile != "" {
		if anchor, err = readCertificate(c.TrustAnchorFile); err != nil {
			st.Close()
			return nil, fmt.Errorf("federation gateway trust anchor: %w", err)
		}
	}
	g, err := efgs.New(efgs.Config{
		Store: st, Audit: h.Trail, Member: h.nationalBackend,
		MaxBatchKeys: c.MaxBatchKeys, MaxAgeDays: c.MaxAgeDays, RetentionDays: c.RetentionDays,
		TrustedProxies: c.TrustedProxies, ThumbprintHeader: c.ThumbprintHeader, DNHeader: c.DNHeader, TrustAnchor: anchor,
		CallbackClient: efgs.NewCallbackClient(h.currentCert, 0), CallbackInterval: c.CallbackInterval, RetryWait: c.RetryWait,
		AllowPrivateCallbacks: c.AllowPrivateCallbacks, Registerer: h.Registry, Logger: h.log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	h.EFGS = &efgsFeature{Gateway: g, store: st}
	p := func(s string) string { return prefix + s }
	hf := func(f func(http.ResponseWriter, *http.Request)) http.Handler { return http.HandlerFunc(f) }
	return []httpapi.Route{
		{Method: "POST", Pattern: p("/diagnosiskeys/upload"), Access: httpapi.Participant, Handler: hf(g.Upload)},
		{Method: "GET", Pattern: p("/diagnosiskeys/download/{date}"), Access: httpapi.Participant, Handler: hf(g.Download)},
		{Method: "GET", Pattern: p("/diagnosiskeys/audit/download/{date}/{batchTag}"), Access: httpapi.Participant, Handler: hf(g.AuditDownload)},
		{Method: "GET", Pattern: p("/diagnosiskeys/callback"), Access: httpapi.Participant, Handler: hf(g.ListCallbacks)},
		{Method: "PUT", Pattern: p("/diagnosiskeys/callback/{id}"), Access: httpapi.Participant, Handler: hf(g.PutCallback)},
		{Method: "DELETE", Pattern: p("/diagnosiskeys/callback/{id}"), Access: httpapi.Participant, Handler: hf(g.DeleteCallback)},
		{Method: "GET", Pattern: p("/admin/certificates"), Access: httpapi.Operator, Handler: hf(g.AdminCertificates)},
		{Method: "POST", Pattern: p("/admin/members"), Access: httpapi.Operator, Handler: efgs.SameSite(hf(g.AdminMembers))},
		{Method: "POST", Pattern: p("/admin/certificates/{thumbprint}/revoke"), Access: httpapi.Operator, Handler: efgs.SameSite(hf(g.AdminRevoke))},
		{Method: "POST", Pattern: p("/admin/members/{country}/offboard"), Access: httpapi.Operator, Handler: efgs.SameSite(hf(g.AdminOffboard))},
	}, nil
}

// efgsFeature is the open gateway and its store.
type efgsFeature struct {
	*efgs.Gateway
	store efgs.Store
}

func runEFGS(ctx context.Context, h *Hub) {
	if h.EFGS != nil {
		h.EFGS.Run(ctx)
	}
}

func closeEFGS(h *Hub) error {
	if h.EFGS == nil {
		return nil
	}
	err := h.EFGS.store.Close()
	h.EFGS = nil
	return err
}

// nationalBackend is the registers' national backend of a country.
func (h *Hub) nationalBackend(country string) (*crossroads.Participant, bool) {
	for i, p := range h.Directory.Snapshot().Participants {
		if p.Kind == crossroads.KindNationalBackend && p.Country == country {
			return &h.Directory.Snapshot().Participants[i], true
		}
	}
	return nil, false
}

func readCertificate(file string) (*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate in " + file)
	}
	return x509.ParseCertificate(blk.Bytes)
}
