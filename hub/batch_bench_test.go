package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/demo"
)

// allowedItems is a batch of n allowed reads of the OCMW (people it has a
// file on).
func allowedItems(people []demo.Person, n int) []byte {
	items := make([]crossroads.BatchItem, n)
	for i := range items {
		p := people[i%(len(people)-1)]
		items[i] = crossroads.BatchItem{Operation: demo.ServicePerson + "/" + demo.OpRead, Parameters: map[string]string{"subject": p.INSZ},
			Purpose: "social-aid", User: "bench@ocmw"}
	}
	return demo.NDJSON(items)
}

func submitB(b *testing.B, r *demo.Running, body []byte) string {
	resp, out, err := r.Clients.SubmitBatch(context.Background(), demo.OCMW, body)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("submit: %v %s", err, out)
	}
	var p batch.Progress
	if err := json.Unmarshal(out, &p); err != nil {
		b.Fatal(err)
	}
	return p.ID
}

// BenchmarkInteractiveDuringBatch is the bound on what a batch does to
// interactive traffic: one client's exchange latency (closed loop, one at
// a time, as a counter clerk's application) on an idle hub, then while
// 1,000-item batches of the same participant run back to back on the same
// node (default bounds: 8 items in flight per node, 4 per participant, 4
// per provider). Reports the mean (ns/op) and p50/p99 latency.
//
//	go test ./hub -run XXX -bench InteractiveDuringBatch -benchtime 2000x
func BenchmarkInteractiveDuringBatch(b *testing.B) {
	r := startB(b)
	people := r.People[:len(r.People)-1]
	client := r.Clients.Client(demo.ONEM) // another participant than the batch's
	onem := make([]demo.Person, 0, len(people))
	for i, p := range people {
		if i%3 == 0 { // ONEM's files (demo network)
			onem = append(onem, p)
		}
	}
	exchange := func(i int) time.Duration {
		p := onem[i%len(onem)]
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, r.Base+"/v1/exchange/employment-status/employments/"+p.INSZ, nil)
		req.Header.Set("Crossroads-Purpose", "unemployment-benefit")
		req.Header.Set("Crossroads-User", "bench@onem")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	measure := func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			lat = append(lat, exchange(i))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("idle", func(b *testing.B) {
		b.ReportAllocs()
		measure(b)
	})
	b.Run("batch-running", func(b *testing.B) {
		b.ReportAllocs()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		body := allowedItems(r.People, 1000)
		items := 0
		started := make(chan struct{})
		wg.Go(func() { // batches back to back until the measurement ends
			for ctx.Err() == nil {
				id := submitB(b, r, body)
				select {
				case <-started:
				default:
					for { // wait until the batch is under way
						p, err := r.Clients.AwaitBatch(ctx, demo.OCMW, id, 0)
						if err != nil && ctx.Err() != nil {
							return
						}
						if p.Done > 16 || p.State == crossroads.BatchDone {
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					close(started)
				}
				p, _ := r.Clients.AwaitBatch(ctx, demo.OCMW, id, time.Hour)
				items += p.Done
			}
		})
		<-started
		start := time.Now()
		measure(b)
		elapsed := time.Since(start)
		cancel()
		wg.Wait()
		b.ReportMetric(float64(items)/elapsed.Seconds(), "batch-items/s")
	})
}

// BenchmarkBatchItems is batch throughput on one node: 1,000-item batches
// (allowed reads, each forwarded, minimised, sealed and recorded) from
// submission to the last result, per item.
//
//	go test ./hub -run XXX -bench BatchItems -benchtime 2x
func BenchmarkBatchItems(b *testing.B) {
	r := startB(b)
	body := allowedItems(r.People, 1000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		id := submitB(b, r, body)
		p, err := r.Clients.AwaitBatch(context.Background(), demo.OCMW, id, 10*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if p.Allowed != 1000 {
			b.Fatalf("batch: %+v", p)
		}
		n += p.Total
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}
