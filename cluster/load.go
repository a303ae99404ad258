package cluster

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/exchange"
)

// Answer is what a client received for one exchange.
type Answer struct {
	ExchangeID string
	Status     int
	Receipt    string
}

// Load drives exchanges through the load balancer with closed-loop
// clients, each with its own connections, and records every answer.
type Load struct {
	c       *Cluster
	mu      sync.Mutex
	answers []Answer
	ok      atomic.Int64 // 200 answers
	errs    atomic.Int64 // transport errors (a node died under a connection)
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// StartLoad starts clients workers; Stop ends them.
func (c *Cluster) StartLoad(ctx context.Context, clients int) *Load {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{c: c, cancel: cancel}
	for w := range clients {
		l.wg.Go(func() { l.worker(ctx, w) })
	}
	return l
}

// Stop ends the load and returns every answer received.
func (l *Load) Stop() []Answer {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answers
}

// Answers returns the answers received so far.
func (l *Load) Answers() []Answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Answer(nil), l.answers...)
}

// OK is the number of 200 answers so far.
func (l *Load) OK() int64 { return l.ok.Load() }

// Errors is the number of requests that got no answer.
func (l *Load) Errors() int64 { return l.errs.Load() }

// worker sends ocmw-gent person-identity exchanges, one in ten with an
// uncovered purpose (denied, and audited too).
func (l *Load) worker(ctx context.Context, w int) {
	cl := l.c.Client(demo.OCMW, true)
	people := l.c.People
	n := len(people) - 1 // the last person is known only as applicant
	base := "https://" + l.c.LB
	for i := 0; ctx.Err() == nil; i++ {
		p := people[(w*7919+i*31)%n]
		purpose := "social-aid"
		if i%10 == 9 {
			purpose = "marketing"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+exchange.Prefix+demo.ServicePerson+"/persons/"+p.INSZ, nil)
		if err != nil {
			return
		}
		req.Header.Set(exchange.HeaderPurpose, purpose)
		req.Header.Set(exchange.HeaderUser, "multi@"+demo.OCMW)
		req.Header.Set(exchange.HeaderSubject, p.INSZ)
		resp, err := cl.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				l.errs.Add(1)
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			continue
		}
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr != nil {
			l.errs.Add(1)
			continue
		}
		if resp.StatusCode == http.StatusOK {
			l.ok.Add(1)
		}
		a := Answer{
			ExchangeID: resp.Header.Get(exchange.HeaderExchangeID),
			Status:     resp.StatusCode,
			Receipt:    resp.Header.Get(exchange.HeaderReceipt),
		}
		l.mu.Lock()
		l.answers = append(l.answers, a)
		l.mu.Unlock()
	}
}
