package hostile

import (
	"context"
	"encoding/json"
	"net/http"
)

// push attacks mutation push (issue 10) as Client: publishing another
// source's mutations, subscribing over plain http or for a purpose no
// authorisation covers, and reading a feed that is not its own.
func (r *runner) push(ctx context.Context) {
	c := &r.t.Client
	var cat struct {
		Services []struct {
			ID         string `json:"id"`
			Operations []struct {
				ID   string `json:"id"`
				Kind string `json:"kind"`
			} `json:"operations"`
		} `json:"services"`
	}
	a := r.call(ctx, c, http.MethodGet, "/v1/services", "", false)
	if a.status != http.StatusOK || json.Unmarshal(a.body, &cat) != nil {
		return
	}
	for _, s := range cat.Services {
		for _, op := range s.Operations {
			if op.Kind != "mutation" {
				continue
			}
			body := `{"subject":"00000000097","effectiveDate":"2026-01-01","idempotencyKey":"hostile","payload":{}}`
			r.check("push: publish another source's mutation", "403 not-publisher",
				r.call(ctx, c, http.MethodPost, "/v1/mutations/"+s.ID+"/"+op.ID, body, false), reason(http.StatusForbidden, "not-publisher"), true)
			sub := `{"service":"` + s.ID + `","operation":"` + op.ID + `","purpose":"hostile-purpose","capacities":[{"sector":"x","code":"y"}],"delivery":"push","endpoint":"http://127.0.0.1/"}`
			r.check("push: subscribe over plain http, for a purpose not covered", "422 invalid-subscription",
				r.call(ctx, c, http.MethodPut, "/v1/subscriptions/hostile-sub", sub, false), reason(http.StatusUnprocessableEntity, "invalid-subscription"), true)
			r.check("push: read a feed that is not one's own", "404 unknown-subscription",
				r.call(ctx, c, http.MethodGet, "/v1/subscriptions/hostile-none/events?wait=0", "", false), reason(http.StatusNotFound, "unknown-subscription"), true)
			r.check("push: publish a mutation body that is not one", "403 not-publisher (before the body is read)",
				r.call(ctx, c, http.MethodPost, "/v1/mutations/"+s.ID+"/"+op.ID, `{"payload":`, false), reason(http.StatusForbidden, "not-publisher"), true)
			return
		}
	}
}
