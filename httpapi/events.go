package httpapi

import (
	"net/http"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/problem"
)

// Operators' acts through the admin API (register applies, certificate
// issue and revocation) are events in the audit trail (issue 8 item 7):
// each is committed, durable, before the act takes effect, and the act is
// refused with 503 audit-unavailable when it cannot be.

// event builds the record of an act of the request's caller; false (and
// the answer written) when it cannot.
func (a *API) event(w http.ResponseWriter, r *http.Request, kind, action string, detail any) (*crossroads.AuditRecord, bool) {
	caller, ok := crossroads.CallerFrom(r.Context())
	if !ok {
		problem.Error(w, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")
		return nil, false
	}
	rec, err := audit.Event(kind, action, caller.ID, audit.UserOf(r), detail)
	if err != nil {
		a.cfg.Logger.Error("audit event", "kind", kind, "err", err)
		problem.Error(w, http.StatusInternalServerError, "internal-error", "")
		return nil, false
	}
	return rec, true
}

// failed records, best effort, that the act recorded by rec did not take
// effect after all (the store refused it): a record of outcome failed
// naming rec's id in its detail.
func (a *API) failed(r *http.Request, rec *crossroads.AuditRecord, reason crossroads.Reason) {
	if a.cfg.Audit == nil {
		return
	}
	f, err := audit.Event(rec.Kind, rec.Action, rec.Requester, rec.User, map[string]string{"failed": rec.ExchangeID})
	if err == nil {
		f.Outcome, f.Reason = crossroads.OutcomeFailed, reason
		_, err = a.cfg.Audit.Commit(r.Context(), f)
	}
	if err != nil {
		a.cfg.Logger.Error("audit: failure of a recorded act not recorded", "kind", rec.Kind, "event", rec.ExchangeID, "err", err)
	}
}

// commit makes rec durable; false (and 503 written) when it cannot, in
// which case the act must not happen.
func (a *API) commit(w http.ResponseWriter, r *http.Request, rec *crossroads.AuditRecord) bool {
	if a.cfg.Audit == nil {
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "this hub has no audit trail; the change was not made")
		return false
	}
	if _, err := a.cfg.Audit.Commit(r.Context(), rec); err != nil {
		a.cfg.Logger.Error("audit event not recorded; act refused", "kind", rec.Kind, "action", rec.Action, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the act could not be recorded in the audit trail; nothing was changed")
		return false
	}
	return true
}
