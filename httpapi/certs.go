package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

func (a *API) listCertificates(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Certificates.Certificates(r.Context())
	if err != nil {
		a.cfg.Logger.Error("list certificates", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the certificate register could not be read")
		return
	}
	for i := range list {
		list[i].PEM = ""
	}
	if list == nil {
		list = []crossroads.Certificate{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": list})
}

type csrBody struct {
	Participant  string `json:"participant"`
	CSR          string `json:"csr"` // PEM
	ValidityDays int    `json:"validityDays,omitempty"`
}

// signCSR issues a certificate for a key that never left the institution.
func (a *API) signCSR(w http.ResponseWriter, r *http.Request) {
	if a.cfg.CA == nil {
		problem.Error(w, http.StatusNotImplemented, "ca-unavailable", "this hub does not hold the CA key")
		return
	}
	var b csrBody
	if !decodeJSON(w, r, &b) {
		return
	}
	if b.Participant == pki.HubParticipant {
		problem.Error(w, http.StatusForbidden, "forbidden", "the hub's identity is not issued through the API")
		return
	}
	if _, ok := a.cfg.Directory.Participant(b.Participant); !ok {
		problem.Error(w, http.StatusUnprocessableEntity, crossroads.ReasonUnknownParticipant, "register the participant before issuing its certificate")
		return
	}
	validity := 365 * 24 * time.Hour
	if b.ValidityDays > 0 && b.ValidityDays <= 825 {
		validity = time.Duration(b.ValidityDays) * 24 * time.Hour
	}
	certPEM, rec, err := a.cfg.CA.SignCSR([]byte(b.CSR), b.Participant, validity)
	if err != nil {
		problem.Error(w, http.StatusUnprocessableEntity, crossroads.ReasonInvalidBody, "the CSR was refused: "+err.Error())
		return
	}
	// Recorded in the trail before the certificate is registered or handed
	// out: an unrecorded certificate is never delivered.
	ev, ok := a.event(w, r, crossroads.RecordCertificate, "issue", certDetail{
		Serial: rec.Serial, Participant: rec.Participant, NotBefore: rec.NotBefore, NotAfter: rec.NotAfter,
	})
	if !ok || !a.commit(w, r, ev) {
		return
	}
	if err := a.cfg.Certificates.RecordCertificate(r.Context(), rec); err != nil {
		a.failed(r, ev, "store-unavailable")
		a.cfg.Logger.Error("record certificate", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the certificate could not be recorded; do not use it")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"serial": rec.Serial, "certificate": string(certPEM), "notAfter": rec.NotAfter})
}

type revokeBody struct {
	Reason string `json:"reason,omitempty"`
}

// certDetail is the detail of a certificate event.
type certDetail struct {
	Serial      string    `json:"serial"`
	Participant string    `json:"participant"`
	NotBefore   time.Time `json:"notBefore,omitzero"`
	NotAfter    time.Time `json:"notAfter,omitzero"`
	Reason      string    `json:"reason,omitempty"`
}

// revokeCertificate revokes a certificate. The body is a JSON object
// (`{}` or `{"reason": "…"}`): an empty POST is refused, so that a
// revocation is never the effect of a bodiless cross-site request. The
// revocation is recorded in the trail before it is written.
func (a *API) revokeCertificate(w http.ResponseWriter, r *http.Request) {
	serial, err := pki.ParseSerial(r.PathValue("serial"))
	if err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "not a certificate serial: hex digits, optionally ':'-separated")
		return
	}
	var b revokeBody
	if !decodeJSON(w, r, &b) {
		return
	}
	if len(b.Reason) > 200 {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidBody, "reason is too long")
		return
	}
	list, err := a.cfg.Certificates.Certificates(r.Context())
	if err != nil {
		a.cfg.Logger.Error("revoke certificate", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the certificate register could not be read")
		return
	}
	i := slices.IndexFunc(list, func(c crossroads.Certificate) bool { return c.Serial == serial })
	if i < 0 {
		problem.Error(w, http.StatusNotFound, "not-found", "no certificate with that serial")
		return
	}
	ev, ok := a.event(w, r, crossroads.RecordCertificate, "revoke", certDetail{Serial: serial, Participant: list[i].Participant, Reason: b.Reason})
	if !ok || !a.commit(w, r, ev) {
		return
	}
	err = a.cfg.Certificates.RevokeCertificate(r.Context(), serial, a.cfg.Now().UTC(), b.Reason)
	if errors.Is(err, crossroads.ErrNotFound) {
		a.failed(r, ev, "not-found")
		problem.Error(w, http.StatusNotFound, "not-found", "no certificate with that serial")
		return
	}
	if err != nil {
		a.failed(r, ev, "store-unavailable")
		a.cfg.Logger.Error("revoke certificate", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "store-unavailable", "the revocation could not be recorded")
		return
	}
	if a.cfg.Revocations != nil {
		a.cfg.Revocations.Add(serial)
	}
	if a.cfg.OnRevoke != nil {
		a.cfg.OnRevoke([]string{serial})
	}
	a.cfg.Logger.Info("certificate revoked", "serial", serial)
	writeJSON(w, http.StatusOK, map[string]any{"serial": serial, "revoked": true})
}
