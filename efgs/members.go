package efgs

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/problem"
)

// checkAnchor verifies the trust anchor's signature over a registered
// certificate, when a trust anchor is configured.
func (g *Gateway) checkAnchor(c crossroads.EFGSCertificate) error {
	if g.cfg.TrustAnchor == nil {
		return nil
	}
	der, err := certDER(c.PEM)
	if err != nil {
		return err
	}
	return VerifyAnchorSignature(g.cfg.TrustAnchor, der, c.Signature)
}

// VerifyAnchorSignature checks sig (base64) as the trust anchor's
// signature over a certificate's DER: SHA-256 with RSA (PKCS #1 v1.5) or
// ECDSA, by the anchor's key type.
func VerifyAnchorSignature(anchor *x509.Certificate, der []byte, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return errors.New("efgs: trust-anchor signature missing or not base64")
	}
	alg := x509.SHA256WithRSA
	switch anchor.PublicKey.(type) {
	case *ecdsa.PublicKey:
		alg = x509.ECDSAWithSHA256
	case *rsa.PublicKey:
	default:
		return errors.New("efgs: unsupported trust-anchor key")
	}
	if err := anchor.CheckSignature(alg, der, raw); err != nil {
		return fmt.Errorf("efgs: trust-anchor signature: %w", err)
	}
	return nil
}

func certDER(p string) ([]byte, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("efgs: not a PEM certificate")
	}
	return b.Bytes, nil
}

// MemberFile is the federation's members as a file (members.yaml) or the
// admin API's body: per country, its certificates. On-boarding a national
// backend is its participant (kind national-backend, with its country) in
// network.yaml plus its certificates here; off-boarding suspends the
// participant or revokes its certificates (both refuse it at once).
type MemberFile struct {
	Federation struct {
		Members []MemberEntry `json:"members" yaml:"members"`
	} `json:"federation" yaml:"federation"`
}

// MemberEntry is one country's certificates.
type MemberEntry struct {
	Country      string            `json:"country" yaml:"country"`
	Certificates []CertificateSpec `json:"certificates" yaml:"certificates"`
}

// CertificateSpec registers one certificate.
type CertificateSpec struct {
	Type      string `json:"type" yaml:"type"`
	PEM       string `json:"pem" yaml:"pem"`
	Host      string `json:"host,omitempty" yaml:"host,omitempty"`
	Signature string `json:"signature,omitempty" yaml:"signature,omitempty"`
	// File names a PEM file instead of PEM (members files only; the CLI
	// reads it, relative to the file).
	File string `json:"-" yaml:"file,omitempty"`
}

// Validate checks every entry against the registers and the trust anchor
// and returns the certificates to register; nothing is registered if any
// entry fails.
func (g *Gateway) Validate(f *MemberFile, now time.Time) ([]crossroads.EFGSCertificate, []problem.Item) {
	var (
		out   []crossroads.EFGSCertificate
		items []problem.Item
	)
	add := func(path, format string, args ...any) {
		items = append(items, problem.Item{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	seen := map[string]string{}
	for i, m := range f.Federation.Members {
		path := fmt.Sprintf("federation.members[%d]", i)
		p, ok := g.cfg.Member(m.Country)
		if !ok || p.Kind != crossroads.KindNationalBackend {
			add(path+".country", "no national backend of country %q in the registers", m.Country)
		}
		for j, c := range m.Certificates {
			cpath := fmt.Sprintf("%s.certificates[%d]", path, j)
			if !slices.Contains([]string{crossroads.EFGSCertAuthentication, crossroads.EFGSCertSigning, crossroads.EFGSCertCallback}, c.Type) {
				add(cpath+".type", "%q is not AUTHENTICATION, SIGNING or CALLBACK", c.Type)
			}
			der, err := certDER(c.PEM)
			if err != nil {
				add(cpath+".pem", "not a PEM certificate")
				continue
			}
			x, err := x509.ParseCertificate(der)
			if err != nil {
				add(cpath+".pem", "the certificate does not parse")
				continue
			}
			if now.After(x.NotAfter) {
				add(cpath+".pem", "the certificate expired on %s", x.NotAfter.Format(time.DateOnly))
			}
			switch {
			case c.Type == crossroads.EFGSCertCallback && (c.Host == "" || strings.ContainsAny(c.Host, "/:@ ")):
				add(cpath+".host", "a CALLBACK certificate names the host it serves")
			case c.Type != crossroads.EFGSCertCallback && c.Host != "":
				add(cpath+".host", "only CALLBACK certificates name a host")
			case c.Type == crossroads.EFGSCertCallback && x.VerifyHostname(c.Host) != nil:
				add(cpath+".host", "the certificate is not valid for host %s", c.Host)
			}
			if g.cfg.TrustAnchor != nil {
				if err := VerifyAnchorSignature(g.cfg.TrustAnchor, der, c.Signature); err != nil {
					add(cpath+".signature", "the trust anchor's signature does not verify")
				}
			}
			th := Thumbprint(der)
			if other, dup := seen[th]; dup {
				add(cpath, "the same certificate as %s", other)
			}
			seen[th] = cpath
			out = append(out, crossroads.EFGSCertificate{Thumbprint: th, Country: m.Country, Type: c.Type,
				PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), Host: c.Host, Signature: c.Signature, CreatedAt: now})
		}
	}
	return out, items
}

// AdminMembers serves POST {prefix}/admin/members (operators): registers
// every certificate of the body (JSON MemberFile), all or nothing.
func (g *Gateway) AdminMembers(w http.ResponseWriter, r *http.Request) {
	var f MemberFile
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "the body is not a members document")
		return
	}
	certs, items := g.Validate(&f, g.cfg.Now())
	if len(items) > 0 {
		p := problem.New(http.StatusBadRequest, crossroads.ReasonInvalidBody, "the members document has problems")
		p.Problems = items
		problem.Write(w, p)
		return
	}
	op := g.operator(r)
	thumbs := make([]string, len(certs))
	for i, c := range certs {
		thumbs[i] = c.Country + " " + c.Type + " " + c.Thumbprint
	}
	if err := g.record(r.Context(), crossroads.FederationMember, member{participant: op}, nil, map[string]any{"registered": thumbs}); err != nil {
		problem503(w)
		return
	}
	for _, c := range certs {
		if err := g.cfg.Store.PutCertificate(r.Context(), c); err != nil {
			g.cfg.Logger.Error("efgs: register certificate", "err", err)
			problem.Error(w, http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to write; retry")
			return
		}
	}
	writeJSON(w, http.StatusOK, certs)
}

// AdminCertificates serves GET {prefix}/admin/certificates (operators).
func (g *Gateway) AdminCertificates(w http.ResponseWriter, r *http.Request) {
	cs, err := g.cfg.Store.Certificates(r.Context())
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
		return
	}
	if cs == nil {
		cs = []crossroads.EFGSCertificate{}
	}
	writeJSON(w, http.StatusOK, cs)
}

// AdminRevoke serves POST {prefix}/admin/certificates/{thumbprint}/revoke:
// the certificate is refused from the next request on.
func (g *Gateway) AdminRevoke(w http.ResponseWriter, r *http.Request) {
	th := NormaliseThumbprint(r.PathValue("thumbprint"))
	if _, err := g.cfg.Store.Certificate(r.Context(), th); errors.Is(err, crossroads.ErrNotFound) {
		problem.Error(w, http.StatusNotFound, crossroads.ReasonEFGSUnknownCertificate, "no such certificate")
		return
	}
	if err := g.record(r.Context(), crossroads.FederationMember, member{participant: g.operator(r)}, nil, map[string]any{"revoked": th}); err != nil {
		problem503(w)
		return
	}
	if err := g.cfg.Store.RevokeCertificate(r.Context(), th, g.cfg.Now()); err != nil {
		problem.Error(w, http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AdminOffboard serves POST {prefix}/admin/members/{country}/offboard:
// every certificate of the country is revoked.
func (g *Gateway) AdminOffboard(w http.ResponseWriter, r *http.Request) {
	country := r.PathValue("country")
	cs, err := g.cfg.Store.Certificates(r.Context())
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
		return
	}
	var thumbs []string
	for _, c := range cs {
		if c.Country == country && c.RevokedAt.IsZero() {
			thumbs = append(thumbs, c.Thumbprint)
		}
	}
	if len(thumbs) == 0 {
		problem.Error(w, http.StatusNotFound, crossroads.ReasonEFGSNotMember, "no active certificate of that country")
		return
	}
	if err := g.record(r.Context(), crossroads.FederationMember, member{participant: g.operator(r)}, nil, map[string]any{"offboarded": country, "revoked": thumbs}); err != nil {
		problem503(w)
		return
	}
	for _, th := range thumbs {
		if err := g.cfg.Store.RevokeCertificate(r.Context(), th, g.cfg.Now()); err != nil {
			problem.Error(w, http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"country": country, "revoked": thumbs})
}

func (g *Gateway) operator(r *http.Request) string {
	if p, ok := crossroads.CallerFrom(r.Context()); ok {
		return p.ID
	}
	return "operator"
}

// SameSite guards the operator routes against cross-site requests, as the
// hub's /v1/admin routes are: a state-changing request must be
// application/json (a cross-site form cannot send it without a CORS
// preflight the hub never grants) and not marked cross-site by the
// browser. Revocation and off-boarding send {}.
func SameSite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
		default:
			problem.Error(w, http.StatusForbidden, crossroads.ReasonCrossSite, "state-changing requests must come from the hub's own origin")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			problem.Error(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "send the body as application/json (revoke and off-board: {})")
			return
		}
		next.ServeHTTP(w, r)
	})
}
