package crash

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/push/outbox"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// Mutation push under kill -9 (issue 10 item 5): the population register
// publishes address changes about the ONEM's claimants, to which the ONEM
// subscribes by pull; each mutation is retried with its idempotency key
// until the hub acknowledges it (202). The verification checks that every
// acknowledged mutation is stored with the routing it was answered with,
// that every stored publication is whole (one outbox entry per subscriber
// it was routed to) and that no key was routed twice.

type pushLoad struct {
	mu    sync.Mutex
	acked map[string]int // idempotency key → routed, as answered
	sent  int
}

func (w *workers) mutations(ctx context.Context) {
	cl, err := w.h.sourceClient(demo.PopulationRegister)
	if err != nil {
		w.h.rep.problem("push: %v", err)
		return
	}
	w.push.mu.Lock()
	w.push.acked = map[string]int{}
	w.push.mu.Unlock()
	do := func(c *http.Client, method, path, body string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, method, w.h.base+path, strings.NewReader(body))
		if err != nil {
			return 0, nil
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			pause(ctx)
			return 0, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b
	}
	sub, _ := json.Marshal(crossroads.Subscription{Service: demo.ServiceMutations, Operation: demo.OpAddressChanged, Purpose: "unemployment-benefit",
		Capacities: []crossroads.Capacity{demo.CapClaimant}, Delivery: crossroads.DeliveryPull})
	for ctx.Err() == nil {
		if st, _ := do(w.h.clients[demo.ONEM], http.MethodPut, "/v1/subscriptions/crash-pull", string(sub)); st == http.StatusOK {
			break
		}
		pause(ctx)
	}
	var claimants []demo.Person
	for i, p := range w.people {
		if i%3 == 0 && i < len(w.people)-1 {
			claimants = append(claimants, p)
		}
	}
	today := time.Now().UTC().Format(time.DateOnly)
	for k := 0; k < maxOpsPerWorker && ctx.Err() == nil && len(claimants) > 0; k++ {
		key := fmt.Sprintf("crash-%d", k)
		p := claimants[k%len(claimants)]
		body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":%q,"payload":{"address":{"city":"Gent","n":%d}}}`, p.INSZ, today, key, k)
		for ctx.Err() == nil { // the publisher's retry: the same key until acknowledged
			w.push.mu.Lock()
			w.push.sent++
			w.push.mu.Unlock()
			st, b := do(cl, http.MethodPost, "/v1/mutations/"+demo.ServiceMutations+"/"+demo.OpAddressChanged, body)
			if st == http.StatusAccepted {
				var a struct{ Routed int }
				json.Unmarshal(b, &a)
				w.push.mu.Lock()
				w.push.acked[key] = a.Routed
				w.push.mu.Unlock()
				break
			}
			pause(ctx)
		}
	}
}

// sourceClient is an mTLS client with an authentic source's certificate.
func (h *harness) sourceClient(id string) (*http.Client, error) {
	demoDir := filepath.Join(h.dataDir, "demo")
	cert, err := tls.LoadX509KeyPair(filepath.Join(demoDir, "certs", id+".crt"), filepath.Join(demoDir, "certs", id+".key"))
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", id, err)
	}
	tr := h.clients[demo.Operator].Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = pki.ClientTLSConfig(tr.TLSClientConfig.RootCAs, cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, nil
}

func (w *workers) tallyPush(r *Report) {
	w.push.mu.Lock()
	defer w.push.mu.Unlock()
	r.MutationsSent, r.MutationsAcked = w.push.sent, len(w.push.acked)
}

// verifyPush checks the outbox (push.db) against what the publisher was
// told.
func (h *harness) verifyPush(ctx context.Context, w *workers) error {
	if _, err := os.Stat(filepath.Join(h.dataDir, sqlite.PushFile)); err != nil {
		h.rep.problem("push: no outbox: %v", err)
		return nil
	}
	st, err := sqlite.OpenPush(ctx, h.dataDir)
	if err != nil {
		return fmt.Errorf("crash: open the outbox: %w", err)
	}
	defer st.Close()
	entries, err := st.Entries(ctx, outbox.EntryQuery{Limit: 1 << 30})
	if err != nil {
		return fmt.Errorf("crash: read the outbox: %w", err)
	}
	type pubEntries struct {
		pub  outbox.Publication
		subs map[string]int
	}
	byPub := map[string]*pubEntries{}
	byKey := map[string]string{}
	for _, e := range entries {
		pe := byPub[e.Publication.ID]
		if pe == nil {
			pe = &pubEntries{pub: e.Publication, subs: map[string]int{}}
			byPub[e.Publication.ID] = pe
			if other, dup := byKey[e.Publication.Key]; dup {
				h.rep.problem("push: key %s routed twice (publications %s and %s)", e.Publication.Key, other, e.Publication.ID)
			}
			byKey[e.Publication.Key] = e.Publication.ID
		}
		pe.subs[e.Subscription]++
	}
	for id, pe := range byPub {
		n := 0
		for sub, c := range pe.subs {
			if c != 1 {
				h.rep.problem("push: publication %s has %d entries for subscription %s", id, c, sub)
			}
			n += c
		}
		if n != pe.pub.Routed {
			h.rep.problem("push: publication %s (key %s) half-stored: %d entries, routed %d", id, pe.pub.Key, n, pe.pub.Routed)
		}
	}
	w.push.mu.Lock()
	defer w.push.mu.Unlock()
	for key, routed := range w.push.acked {
		pub, err := st.Publication(ctx, demo.ServiceMutations, demo.PopulationRegister, key)
		if err != nil {
			h.rep.problem("push: acknowledged mutation %s lost: %v", key, err)
			continue
		}
		if pub.Routed != routed {
			h.rep.problem("push: mutation %s answered routed %d, stored %d", key, routed, pub.Routed)
		}
		if routed > 0 && byPub[pub.ID] == nil {
			h.rep.problem("push: mutation %s has no outbox entries", key)
		}
	}
	return nil
}
