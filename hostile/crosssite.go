package hostile

import (
	"context"
	"net/http"
	"strings"
)

// crossSite sends state-changing requests as a browser on another site
// would: form posts (simple content types, no CORS preflight) and requests
// carrying a foreign Origin or cross-site Fetch Metadata. The hub must
// refuse each before acting (415 unsupported-media-type, 403
// cross-site-request); the body is "{}", so that even an accepted request
// could change nothing.
func (r *runner) crossSite(ctx context.Context) {
	send := func(method, path string, hdr map[string]string) answer {
		req, err := http.NewRequestWithContext(ctx, method, r.t.Base+path, strings.NewReader("{}"))
		if err != nil {
			return answer{err: err}
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return do(r.client(&r.t.Client, r.t.Roots), req)
	}
	for _, c := range []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"cross-site: integration write as a text/plain form", "PUT", "/v1/integrations", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"cross-site: integration delete as an urlencoded form", "DELETE", "/v1/integrations", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"cross-site: admin apply as a text/plain form", "POST", "/v1/admin/apply", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"cross-site: integration write from a foreign Origin", "PUT", "/v1/integrations", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site: integration write, Sec-Fetch-Site cross-site", "PUT", "/v1/integrations", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"cross-site: revoke from a foreign Origin", "POST", "/v1/admin/certificates/01/revoke", map[string]string{"Content-Type": "application/json", "Origin": "null"}, http.StatusForbidden},
	} {
		want := "415 unsupported-media-type"
		if c.want == http.StatusForbidden {
			want = "403 cross-site-request"
		}
		r.check(c.name, want, send(c.method, c.path, c.hdr), status(c.want), true)
	}
}
