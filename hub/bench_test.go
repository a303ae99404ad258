package hub_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
)

// BenchmarkExchange measures allowed exchanges end to end over loopback
// mTLS: client → hub (decide, forward over mTLS, minimise, seal, durable
// audit) → demo provider (verifies the hub's signature) and back. Client,
// hub and provider share the machine.
//
//	go test ./hub -run XXX -bench Exchange -benchtime 5s
func BenchmarkExchange(b *testing.B) {
	r := startB(b)
	people := r.People[:len(r.People)-1] // the last one is an 'applicant' (denied)
	var next atomic.Int64
	client := r.Clients.Client(demo.OCMW)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := people[int(next.Add(1))%len(people)]
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, r.Base+"/v1/exchange/person-identity/persons/"+p.INSZ, nil)
			req.Header.Set("Crossroads-Purpose", "social-aid")
			req.Header.Set("Crossroads-User", "bench@ocmw")
			req.Header.Set("Crossroads-Subject", p.INSZ)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
