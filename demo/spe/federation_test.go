package spedemo_test

import (
	"net/http"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
	"github.com/crossroads-hub/crossroads/spe"
)

// TestFederatedQuery runs one query across two real hubs on loopback: hub
// a's workspace and hub b's workspace of the same permit, hub to hub over
// mTLS with the certificate b issued to a; each site checks its own
// partial before it leaves, the merged table is checked again, and each
// hub's trail has its steps.
func TestFederatedQuery(t *testing.T) {
	rb := demotest.Start(t, demo.Options{People: 5})
	cert, err := spedemo.PeerCert(ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	ra := demotest.Start(t, demo.Options{People: 5, Configure: spedemo.PeerConfig(rb, cert)})
	wa, wb, err := spedemo.Federate(ctx, ra, rb)
	if err != nil {
		t.Fatal(err)
	}
	mustUpload(t, wa, spedemo.HolderA, spedemo.DatasetA, spedemo.Admissions(21, 300, false, false))
	mustUpload(t, wb, spedemo.HolderB, spedemo.DatasetB, spedemo.Admissions(22, 240, true, false))

	// Count by sex, all but the island: both partials pass, so does the merge.
	notIsland := map[string]any{"column": "region", "op": "ne", "value": "Island"}
	st, _, v, err := wa.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"sex"}, "count", "", notIsland), Federated: true})
	if err != nil || st != 200 || v.Status != spe.ReleasePass || !v.Federated || v.Result == nil {
		t.Fatalf("federated query: %d %v %+v", st, err, v)
	}
	var total int64
	for _, c := range v.Result.Cells {
		total += c.N
	}
	if total != 540 {
		t.Fatalf("merged total %d, want 300 + 240", total)
	}

	// By region: hub b's partial has the island's 3 rows: hub b refuses to
	// let its partial leave, and hub a releases nothing.
	st, _, v, err = wa.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", ""), Federated: true})
	if err != nil || st != 200 || v.Status != spe.ReleaseRefused || v.Result != nil || v.Detail == "" {
		t.Fatalf("federated query with a failing partial: %d %v %+v", st, err, v)
	}

	// Only the pre-approved peer reaches the partials: a member of the
	// permit on hub b is not a peer.
	req, _ := http.NewRequest(http.MethodPost, rb.Base+"/v1/spe/federation/"+spedemo.Permit+"/partials", nil)
	resp, err := wb.Clients[spedemo.Researcher].Do(req)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("partials by a non-peer: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	if acts := actions(speRecords(t, wa)); acts["federated-query"] != 2 || acts["query"] != 2 {
		t.Fatalf("hub a's trail: %v", acts)
	}
	if acts := actions(speRecords(t, wb)); acts["federated-partial"] != 2 {
		t.Fatalf("hub b's trail: %v", acts)
	}
	for _, e := range speRecords(t, wb) {
		if e.Action == "federated-partial" && (e.Requester != spedemo.HubA || e.User != spedemo.Researcher || e.AuthorisationID != spedemo.Permit) {
			t.Fatalf("hub b's record of the partial: %+v", e.AuditRecord)
		}
	}

	// Hub b has no peer configured: its federated query fails cleanly.
	if st, reason, _, _ := wb.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetB, []string{"sex"}, "count", ""), Federated: true}); st != http.StatusBadGateway || reason != string(crossroads.ReasonPeerRefused) {
		t.Fatalf("unconfigured peer: %d %s", st, reason)
	}
	// Several holders on one hub: both datasets of one workspace, each
	// partial checked, then the merge.
	mustUpload(t, wa, spedemo.HolderB, spedemo.DatasetB, spedemo.Admissions(23, 150, false, false))
	st, _, v, err = wa.Query(ctx, spe.QueryRequest{Query: spedemo.Q(spedemo.DatasetA, []string{"region"}, "count", ""), Datasets: []string{spedemo.DatasetA, spedemo.DatasetB}})
	if err != nil || st != 200 || v.Status != spe.ReleasePass || v.Result.Cells[0].N != 150 {
		t.Fatalf("two holders on one hub: %d %v %+v", st, err, v)
	}
}
