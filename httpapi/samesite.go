package httpapi

import (
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/problem"
)

// State-changing routes of the admin and integrations APIs are closed to
// cross-site requests by design (issue 16; docs/api.md "Cross-site
// requests"), in two layers that a browser console's CSRF tokens will
// later sit on top of:
//
//  1. Media type. A POST, PUT, PATCH or DELETE must send Content-Type
//     application/json (or application/yaml where the route takes a network
//     file), and a body: a request without one that needs no content
//     sends "{}". Anything else is 415 unsupported-media-type. A browser
//     can only send such a request cross-origin after a CORS preflight,
//     which the hub never grants, so an HTML form (text/plain,
//     application/x-www-form-urlencoded, multipart/form-data) or a simple
//     fetch can never change state.
//  2. Origin. A request whose Fetch Metadata says it comes from another
//     site (Sec-Fetch-Site cross-site or same-site), or whose Origin is
//     neither the hub's own nor one of Config.Origins, is 403
//     cross-site-request, before any other check.
//
// Non-browser clients (the CLI, scripts) send neither header and are not
// affected beyond the media type.

// stateChanging reports whether a route changes state and falls under the
// cross-site rules.
func stateChanging(r Route) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	return strings.HasPrefix(r.Pattern, "/v1/admin/") || r.Pattern == "/v1/integrations" || strings.HasPrefix(r.Pattern, "/v1/integrations/")
}

// mediaTypes are the request bodies the state-changing routes accept.
var mediaTypes = []string{"application/json", "application/yaml"}

// sameSite wraps a state-changing route with the cross-site rules.
func (a *API) sameSite(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
		default:
			problem.Error(w, http.StatusForbidden, crossroads.ReasonCrossSite, "state-changing requests must come from the hub's own origin (Sec-Fetch-Site)")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host && !slices.Contains(a.cfg.Origins, o) {
			problem.Error(w, http.StatusForbidden, crossroads.ReasonCrossSite, "state-changing requests must come from the hub's own origin (Origin)")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !slices.Contains(mediaTypes, mt) {
			problem.Error(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "send the body as application/json (or application/yaml for a network file); a request with nothing to say sends {}")
			return
		}
		h.ServeHTTP(w, r)
	})
}
