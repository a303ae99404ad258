package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/exchange"
)

// maxOpsPerWorker bounds each load loop whatever the duration.
const maxOpsPerWorker = 10_000_000

// answer is what a client received for one exchange.
type answer struct {
	ExchangeID string
	Status     int
	Receipt    string
}

// change is one integration or authorisation change and whether the hub
// acknowledged it (2xx, or 404 for a DELETE of an absent integration).
type change struct {
	seq   int
	acked bool
}

type workers struct {
	h      *harness
	people []demo.Person

	mu        sync.Mutex
	answers   []answer
	requests  int64
	transport int64

	// integration changes, in order: op k PUTs integration k; odd k are
	// then DELETEd (op dels[k]).
	puts, dels map[int]change
	intOps     int
	// network applies, in order: apply k creates authorisation k (version
	// 1) and sets authorisation k-1 to version 2, in one file.
	applies []change

	batch batchLoad // batch submissions (batch.go)
	push  pushLoad  // mutations (push.go)
}

func newWorkers(h *harness) *workers {
	return &workers{h: h, people: demo.People(h.opts.People), puts: map[int]change{}, dels: map[int]change{}}
}

func (w *workers) start(ctx context.Context, wg *sync.WaitGroup) {
	for c := range w.h.opts.Clients {
		wg.Go(func() { w.exchanges(ctx, c) })
	}
	wg.Go(func() { w.integrations(ctx) })
	wg.Go(func() { w.authorisations(ctx) })
	wg.Go(func() { w.batches(ctx) })
	wg.Go(func() { w.mutations(ctx) }) // push.go
}

// pause backs off after a failed request (the hub is down).
func pause(ctx context.Context) {
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
	}
}

// exchanges sends ocmw-gent person-identity exchanges over the subjects it
// has a file on, one in ten with an uncovered purpose (denied).
func (w *workers) exchanges(ctx context.Context, client int) {
	cl := w.h.clients[demo.OCMW]
	n := len(w.people) - 1 // the last person is known only as applicant
	var local []answer
	var reqs, transport int64
	defer func() {
		w.mu.Lock()
		w.answers = append(w.answers, local...)
		w.requests += reqs
		w.transport += transport
		w.mu.Unlock()
	}()
	for i := 0; i < maxOpsPerWorker && ctx.Err() == nil; i++ {
		p := w.people[(client*7919+i*31)%n]
		purpose := "social-aid"
		if i%10 == 9 {
			purpose = "marketing"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.h.base+exchange.Prefix+demo.ServicePerson+"/persons/"+p.INSZ, nil)
		if err != nil {
			return
		}
		req.Header.Set(exchange.HeaderPurpose, purpose)
		req.Header.Set(exchange.HeaderUser, "crash@"+demo.OCMW)
		req.Header.Set(exchange.HeaderSubject, p.INSZ)
		reqs++
		resp, err := cl.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				transport++
				pause(ctx)
			} else {
				reqs-- // cut short by the end of the run, not the hub's doing
			}
			continue
		}
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr != nil { // the hub died while answering: not received
			transport++
			continue
		}
		local = append(local, answer{
			ExchangeID: resp.Header.Get(exchange.HeaderExchangeID),
			Status:     resp.StatusCode,
			Receipt:    resp.Header.Get(exchange.HeaderReceipt),
		})
	}
}

// Integration changes use ONEM's claimant capacity on people the demo
// network gives ONEM no file on (index not a multiple of 3), each with its
// own start date, so that the demo file re-applied at every start never
// touches them.
var integrationBase = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func (w *workers) integration(k int) crossroads.Integration {
	// People 1, 2, 4, 5, 7, … (never a multiple of 3, never the last).
	idx := (k/2)*3 + 1 + k%2
	idx %= len(w.people) - 1
	if idx%3 == 0 {
		idx++
	}
	return crossroads.Integration{
		Person: w.people[idx].INSZ, Participant: demo.ONEM,
		Sector: demo.CapClaimant.Sector, Capacity: demo.CapClaimant.Code,
		From: integrationBase.Add(time.Duration(k) * time.Minute),
	}
}

func (w *workers) integrations(ctx context.Context) {
	// The operator makes the changes on ONEM's behalf: only an operator may
	// date a file in the past (the harness's files start in 2020).
	cl := w.h.clients[demo.Operator]
	// send reports whether the hub acknowledged the change. A change cut
	// short by the end of the run is recorded as unacknowledged too: the
	// hub may have applied it.
	send := func(method string, in crossroads.Integration) bool {
		body, _ := json.Marshal(map[string]any{"person": in.Person, "participant": in.Participant, "sector": in.Sector, "capacity": in.Capacity, "from": in.From})
		req, err := http.NewRequestWithContext(ctx, method, w.h.base+"/v1/integrations", bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Crossroads-User", "crash-harness")
		resp, err := cl.Do(req)
		if err != nil {
			pause(ctx)
			return false
		}
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return rerr == nil && (resp.StatusCode/100 == 2 || method == http.MethodDelete && resp.StatusCode == http.StatusNotFound)
	}
	for k := 0; k < maxOpsPerWorker && ctx.Err() == nil; k++ {
		in := w.integration(k)
		acked := send(http.MethodPut, in)
		w.record(func() { w.puts[k] = change{seq: w.intOps, acked: acked}; w.intOps++ })
		if k%2 == 1 {
			acked := send(http.MethodDelete, in)
			w.record(func() { w.dels[k] = change{seq: w.intOps, acked: acked}; w.intOps++ })
		}
	}
}

func (w *workers) record(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// authorisation returns version v (1 or 2) of the harness's authorisation k.
func authorisation(k, v int) crossroads.Authorisation {
	a := crossroads.Authorisation{
		ID:        fmt.Sprintf("crash-%d", k),
		Reference: fmt.Sprintf("CRASH/%d", k),
		Grantee:   demo.ONEM,
		Services:  []string{demo.ServiceEmployment, demo.ServiceCertificate},
		Purposes:  []string{fmt.Sprintf("crash-%d", k)},
		Fields: map[string][]string{
			demo.ServiceEmployment:  {"/status", "/employments/since"},
			demo.ServiceCertificate: {""},
		},
		Capacities: []crossroads.Capacity{demo.CapClaimant},
		ValidFrom:  integrationBase,
		ValidTo:    integrationBase.AddDate(50, 0, 0),
		Status:     crossroads.StatusActive,
	}
	if v == 2 {
		a.Reference += "-v2"
		a.Purposes = append(a.Purposes, fmt.Sprintf("crash-%d-v2", k))
		a.Fields[demo.ServiceEmployment] = append(a.Fields[demo.ServiceEmployment], "/insz")
		a.Services = a.Services[:1]
		delete(a.Fields, demo.ServiceCertificate)
	}
	return a
}

// authorisations applies network files as the operator: each creates one
// authorisation and changes the previous one, in one transaction.
func (w *workers) authorisations(ctx context.Context) {
	cl := w.h.clients[demo.Operator]
	for k := 0; k < maxOpsPerWorker && ctx.Err() == nil; k++ {
		n := &crossroads.Network{Authorisations: []crossroads.Authorisation{authorisation(k, 1)}}
		if k > 0 {
			n.Authorisations = append(n.Authorisations, authorisation(k-1, 2))
		}
		body, err := yaml.Marshal(n)
		if err != nil {
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.h.base+"/v1/admin/apply", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := cl.Do(req) // cut short by the end of the run: unacknowledged, may be applied
		acked := false
		if err == nil {
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			acked = rerr == nil && resp.StatusCode == http.StatusOK
		}
		w.record(func() { w.applies = append(w.applies, change{seq: k, acked: acked}) })
		if !acked {
			pause(ctx)
		} else {
			// A few applies per second are plenty.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// tally copies the counts into the report.
func (w *workers) tally(r *Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r.Requests, r.Transport = w.requests, w.transport
	for _, a := range w.answers {
		r.Responses++
		if a.Receipt != "" {
			r.Receipts++
		} else {
			r.NoReceipt++
		}
		if a.Status == http.StatusOK {
			r.Allowed++
		}
	}
	for _, c := range w.puts {
		r.IntegrationOps++
		if c.acked {
			r.IntegrationAcked++
		}
	}
	for _, c := range w.dels {
		r.IntegrationOps++
		if c.acked {
			r.IntegrationAcked++
		}
	}
	w.tallyPush(r) // push.go
	for _, c := range w.applies {
		r.AuthOps++
		if c.acked {
			r.AuthAcked++
		}
	}
}
