package hostile

import (
	"context"
	"net/http"
	"strings"
)

// spe attacks the secure-processing API as a participant that no data
// permit names: every workspace route must answer as if the permit did
// not exist (404 no-permit), whatever the path, method or body; uploads
// cannot be reached by id, traversal or a peer's route; nothing leaks.
func (r *runner) spe(ctx context.Context) {
	send := func(method, path, body string, hdr map[string]string) answer {
		req, err := http.NewRequestWithContext(ctx, method, r.t.Base+path, strings.NewReader(body))
		if err != nil {
			return answer{err: err}
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return do(r.client(&r.t.Client, r.t.Roots), req)
	}
	tus := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": "dataset eA=="}
	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"spe: workspace of an unknown permit", "GET", "/v1/spe/permits/no-such-permit", "", nil},
		{"spe: tus creation in an unknown permit", "POST", "/v1/spe/permits/no-such-permit/uploads/", "", tus},
		{"spe: tus PATCH by a guessed id", "PATCH", "/v1/spe/permits/no-such-permit/uploads/0123456789abcdef0123456789abcdef", "a,b\n1,2\n",
			map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}},
		{"spe: traversal in the upload id", "HEAD", "/v1/spe/permits/no-such-permit/uploads/..%2F..%2Fspe.db", "", tus},
		{"spe: query in an unknown permit", "POST", "/v1/spe/permits/no-such-permit/queries", `{"query":{"dataset":"x","index":["a"],"statistic":"count"}}`,
			map[string]string{"Content-Type": "application/json"}},
		{"spe: download from an unknown permit", "GET", "/v1/spe/permits/no-such-permit/releases/0123456789abcdef0123456789abcdef/result", "", nil},
		{"spe: halt by a non-member", "POST", "/v1/spe/permits/no-such-permit/halt", `{"reason":"x"}`, map[string]string{"Content-Type": "application/json"}},
		{"spe: peer partials by a non-peer", "POST", "/v1/spe/federation/no-such-permit/partials", `{"query":{}}`, map[string]string{"Content-Type": "application/json"}},
		{"spe: permit id with a path separator", "GET", "/v1/spe/permits/..%2Fkeys", "", nil},
	} {
		want := "404 no-permit"
		a := send(c.method, c.path, c.body, c.hdr)
		r.check(c.name, want, a, func(a answer) bool {
			if c.method == "HEAD" {
				return a.err == nil && a.status == http.StatusNotFound
			}
			return status(http.StatusNotFound)(a) && (problemReason(a) == "no-permit" || problemReason(a) == "not-found")
		}, c.method != "HEAD")
	}
}
