package hub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
)

// TestPushAuditOutage: no record, no routing — a publication whose audit
// record cannot be made durable is refused (503) and nothing is stored.
func TestPushAuditOutage(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	put := `{"service":"` + demo.ServiceMutations + `","operation":"` + demo.OpAddressChanged + `","purpose":"social-aid","capacities":[{"sector":"` +
		demo.CapSocialAid.Sector + `","code":"` + demo.CapSocialAid.Code + `"}],"delivery":"pull"}`
	req, _ := http.NewRequest(http.MethodPut, r.Base+"/v1/subscriptions/outage", strings.NewReader(put))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.Clients.Client(demo.OCMW).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("subscribe: %v %v", err, resp)
	}
	resp.Body.Close()
	r.Hub.CloseAuditStoreForTest()
	body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":"outage-1","payload":{"address":{"city":"Gent"}}}`,
		r.People[0].INSZ, time.Now().UTC().Format(time.DateOnly))
	req, _ = http.NewRequest(http.MethodPost, r.Base+"/v1/mutations/"+demo.ServiceMutations+"/"+demo.OpAddressChanged, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err = r.Clients.Client(demo.PopulationRegister).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || problemReason(t, resp, b) != string(crossroads.ReasonAuditUnavailable) {
		t.Fatalf("publication without a record: %d %s", resp.StatusCode, b)
	}
	if _, err := r.Hub.Push.Store.Publication(ctx, demo.ServiceMutations, demo.PopulationRegister, "outage-1"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Fatalf("the unrecorded publication was stored: %v", err)
	}
}
