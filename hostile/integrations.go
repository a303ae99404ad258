package hostile

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/personid"
)

// integrationFlood is how many changes the flood case sends back to back:
// more than any sane burst of the per-participant integration limit
// (default 100), so that the limit must answer 429.
const integrationFlood = 400

// filePerson is the synthetic person the integration cases file on (an
// INSZ, also a valid opaque id), never the subject of the valid exchange.
var filePerson = personid.Make("010101", 997, false)

// integrations attacks the person directory as Client (issue 8 item 6):
// a participant that gives itself a file on anyone, backdates it, deletes
// it again to leave no trace, or floods the API. The capacity it may use
// is read from GET /v1/integrations; cases needing one are skipped
// without it.
func (r *runner) integrations(ctx context.Context) {
	c := &r.t.Client
	var mine struct {
		Capacities []struct {
			Sector string `json:"sector"`
			Code   string `json:"code"`
			Kind   string `json:"kind"`
		} `json:"capacities"`
	}
	a := r.call(ctx, c, http.MethodGet, "/v1/integrations", "", true)
	if a.status != http.StatusOK || json.Unmarshal(a.body, &mine) != nil {
		r.check("integrations: list own files", "200", a, status(http.StatusOK), true)
		return
	}
	file := func(sector, capacity, extra string) string {
		return `{"person":"` + filePerson + `","sector":"` + sector + `","capacity":"` + capacity + `"` + extra + `}`
	}
	r.check("integration: file in a capacity not authorised", "422 invalid-integration",
		r.call(ctx, c, http.MethodPut, "/v1/integrations", file("hostile", "not-authorised", ""), true), reason(http.StatusUnprocessableEntity, "invalid-integration"), true)
	r.check("integration: no natural person (Crossroads-User)", "400 missing-user",
		r.call(ctx, c, http.MethodPut, "/v1/integrations", file("hostile", "not-authorised", ""), false), reason(http.StatusBadRequest, "missing-user"), true)

	var capacity *struct{ Sector, Code string }
	for _, k := range mine.Capacities {
		if k.Kind == "" || k.Kind == "person" {
			capacity = &struct{ Sector, Code string }{k.Sector, k.Code}
			break
		}
	}
	if capacity != nil {
		r.check("integration: backdated file", "400 backdated-integration",
			r.call(ctx, c, http.MethodPut, "/v1/integrations", file(capacity.Sector, capacity.Code, `,"from":"2001-01-01T00:00:00Z"`), true),
			reason(http.StatusBadRequest, "backdated-integration"), true)

		// Register a file, end it, and look for it: it must still be
		// there with its period closed (no hard delete).
		from := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
		body := file(capacity.Sector, capacity.Code, `,"from":"`+from+`"`)
		reg := r.call(ctx, c, http.MethodPut, "/v1/integrations", body, true)
		time.Sleep(1100 * time.Millisecond) // started, so that it can be ended
		end := r.call(ctx, c, http.MethodDelete, "/v1/integrations", body, true)
		list := r.call(ctx, c, http.MethodGet, "/v1/integrations?person="+filePerson, "", true)
		kept := reg.status == http.StatusCreated && end.status == http.StatusOK && list.status == http.StatusOK &&
			strings.Contains(string(list.body), `"from":"`+from+`"`) && strings.Contains(string(list.body), `"to":"`)
		r.check("integration: hard delete (register, DELETE, look again)", "file kept with its period closed", list,
			func(answer) bool { return kept }, true)
	}

	// Flood: changes back to back must meet the rate limit; they are
	// invalid, so nothing is written whatever gets through.
	var last answer
	limited := false
	for range integrationFlood {
		last = r.call(ctx, c, http.MethodPut, "/v1/integrations", file("hostile", "flood", ""), true)
		if last.err != nil || last.status == http.StatusTooManyRequests {
			limited = last.err == nil && last.header.Get("Retry-After") != ""
			break
		}
	}
	r.check("integration: flood of changes", "429 rate-limited with Retry-After", last, func(a answer) bool { return limited }, true)
}

// call sends one request to the hub's API as cert, with a Crossroads-User
// unless withUser is false.
func (r *runner) call(ctx context.Context, cert *tls.Certificate, method, path, body string, withUser bool) answer {
	req, err := http.NewRequestWithContext(ctx, method, r.t.Base+path, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if withUser {
		req.Header.Set("Crossroads-User", "hostile@test")
	}
	return do(r.client(cert, r.t.Roots), req)
}

// reason accepts status with the given problem reason.
func reason(code int, want string) func(answer) bool {
	return func(a answer) bool { return a.err == nil && a.status == code && problemReason(a) == want }
}
