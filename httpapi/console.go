package httpapi

import (
	"context"
	"net/http"

	"github.com/crossroads-hub/crossroads"
)

// asCallerKey marks a request made in process (by the browser console) on
// behalf of a participant the console has authenticated itself: by the
// client certificate of the browser's connection, or by an OpenID Connect
// ID token naming the participant in a configured claim. Only ServeAs sets
// it: no header or value of an outside request can.
type asCallerKey struct{}

// ServeAs serves r through the API's routing table as participant id, who
// must be registered and active, with the access rules, validation and
// audit records of the route exactly as for a request of that
// participant's certificate. The console uses it so that each of its acts
// is its API twin: the same checks, the same record kind and action.
func (a *API) ServeAs(w http.ResponseWriter, r *http.Request, participant string) {
	a.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), asCallerKey{}, participant)))
}

// caller authenticates the request: the participant set by ServeAs, or
// the client certificate.
func (a *API) caller(r *http.Request) (*crossroads.Participant, int, crossroads.Reason, string) {
	id, ok := r.Context().Value(asCallerKey{}).(string)
	if !ok {
		return a.authenticate(r)
	}
	p, found := a.cfg.Directory.Participant(id)
	switch {
	case !found:
		return nil, http.StatusForbidden, crossroads.ReasonUnknownParticipant, "the participant is not registered"
	case p.Status != crossroads.StatusActive:
		return nil, http.StatusForbidden, crossroads.ReasonParticipantSuspended, "the participant is suspended"
	}
	return p, 0, "", ""
}

// inProcess reports whether r was made through ServeAs.
func inProcess(r *http.Request) bool {
	_, ok := r.Context().Value(asCallerKey{}).(string)
	return ok
}
