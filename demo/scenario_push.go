package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
)

// PushScenario is the mutation push part of the demo scenario (issue 10):
// the OCMW subscribes by push to a real HTTPS endpoint of its own, the
// ONEM by pull; the population register publishes address changes; the
// scenario shows a delivery (minimised, sealed), the pull feed and its
// acknowledgement, subscribers filtered out (no file, a file that ended
// before the effective date) and a subscriber that is down and recovers.
// It runs before Scenario, which ends by revoking the ONEM's certificate.
func (r *Running) PushScenario() []Step {
	ep, err := r.startEndpoint(OCMW)
	if err != nil {
		return []Step{{Name: "OCMW push endpoint", Before: func(context.Context) error { return err }}}
	}
	p0, noFile, ended, downP := r.People[0], r.People[5], r.People[4], r.People[3]
	today := time.Now().UTC().Format(time.DateOnly)
	roots := r.Hub.CA.Pool()
	address := `{"insz":"%s","address":{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"},"previousAddress":{"city":"Leuven"}}`
	publish := func(person Person, key string) func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
		return func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
			body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":%q,"payload":`+address+`}`, person.INSZ, today, key, person.INSZ)
			return c.api(ctx, PopulationRegister, http.MethodPost, "/v1/mutations/"+ServiceMutations+"/"+OpAddressChanged, body)
		}
	}
	routed := func(want int) func([]byte, http.Header) error {
		return func(b []byte, _ http.Header) error {
			var a struct{ Routed int }
			json.Unmarshal(b, &a)
			if a.Routed != want {
				return fmt.Errorf("routed to %d subscribers, want %d", a.Routed, want)
			}
			return nil
		}
	}
	subscribe := func(as, id string, s crossroads.Subscription) func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
		return func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
			b, _ := json.Marshal(s)
			return c.api(ctx, as, http.MethodPut, "/v1/subscriptions/"+id, string(b))
		}
	}
	return []Step{
		{Name: "subscribe by push (self-service)", As: OCMW, Service: ServiceMutations, WantStatus: 200,
			Do: subscribe(OCMW, SubscriptionOCMW, crossroads.Subscription{Service: ServiceMutations, Operation: OpAddressChanged, Purpose: "social-aid",
				Capacities: []crossroads.Capacity{CapSocialAid}, Delivery: crossroads.DeliveryPush, Endpoint: ep.url})},
		{Name: "subscribe by pull (self-service)", As: ONEM, Service: ServiceMutations, WantStatus: 200,
			Do: subscribe(ONEM, SubscriptionONEM, crossroads.Subscription{Service: ServiceMutations, Operation: OpAddressChanged, Purpose: "unemployment-benefit",
				Capacities: []crossroads.Capacity{CapClaimant}, Delivery: crossroads.DeliveryPull})},
		{Name: "publish by another than the provider", As: OCMW, Service: ServiceMutations, WantStatus: 403, WantReason: string(crossroads.ReasonNotPublisher),
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				return c.api(ctx, OCMW, http.MethodPost, "/v1/mutations/"+ServiceMutations+"/"+OpAddressChanged,
					fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":"x","payload":{}}`, p0.INSZ, today))
			}},
		{Name: "address change published: routed to 2", As: PopulationRegister, Service: ServiceMutations, WantStatus: 202, Do: publish(p0, "demo-move-0"), Check: routed(2),
			Summary: func(b []byte) string { return strings.TrimSpace(string(b)) }},
		{Name: "pushed to the OCMW: CloudEvent, city only, sealed", As: OCMW, Service: ServiceMutations, WantStatus: 200,
			Do: ep.await("demo-move-0", true),
			Check: func(b []byte, h http.Header) error {
				if string(b) != `{"address":{"city":"Gent"}}` {
					return fmt.Errorf("data %s, want the city only", b)
				}
				if h.Get("ce-specversion") != "1.0" || h.Get("ce-type") != ServiceMutations+"/"+OpAddressChanged || h.Get("ce-subject") != p0.INSZ {
					return fmt.Errorf("not the CloudEvent expected: %v", h)
				}
				c, err := pki.VerifySeal(h.Get(pki.HeaderSeal), b, roots, time.Now())
				if err != nil || c.Requester != OCMW {
					return fmt.Errorf("seal: %v", err)
				}
				return nil
			},
			Summary: func(b []byte) string { return string(b) }},
		{Name: "pulled by the ONEM: whole address, then acknowledged", As: ONEM, Service: ServiceMutations, WantStatus: 200,
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				resp, b, err := c.api(ctx, ONEM, http.MethodGet, "/v1/subscriptions/"+SubscriptionONEM+"/events?wait=10", "")
				if err != nil || resp.StatusCode != 200 {
					return resp, b, err
				}
				var f struct {
					Events []struct {
						ID, Sequence, Crossroadsseal string
						Data                         json.RawMessage
					}
				}
				if err := json.Unmarshal(b, &f); err != nil || len(f.Events) == 0 {
					return resp, b, fmt.Errorf("no event in the feed: %s", b)
				}
				e := f.Events[0]
				if _, err := pki.VerifySeal(e.Crossroadsseal, e.Data, roots, time.Now()); err != nil {
					return resp, b, fmt.Errorf("seal: %w", err)
				}
				if !bytes.Contains(e.Data, []byte("Veldstraat")) {
					return resp, b, fmt.Errorf("data %s, want the whole address", e.Data)
				}
				ack, ab, err := c.api(ctx, ONEM, http.MethodPost, "/v1/subscriptions/"+SubscriptionONEM+"/ack", `{"seq":`+e.Sequence+`}`)
				if err == nil && ack.StatusCode == 200 {
					ab = []byte(fmt.Sprintf("%s, acknowledged: %s", e.Data, bytes.TrimSpace(ab)))
				}
				return ack, ab, err
			},
			Summary: func(b []byte) string { return string(b) }},
		{Name: "filtered out: no file at the ONEM", As: PopulationRegister, Service: ServiceMutations, WantStatus: 202, Do: publish(noFile, "demo-move-5"), Check: routed(1)},
		{Name: "filtered out: the ONEM's file ended before the date", As: PopulationRegister, Service: ServiceMutations, WantStatus: 202,
			Before: func(ctx context.Context) error {
				now := time.Now().UTC().Truncate(time.Second)
				resp, b, err := r.Clients.Integration(ctx, Operator, http.MethodPut, map[string]any{"person": ended.INSZ, "participant": ONEM,
					"sector": CapClaimant.Sector, "capacity": CapClaimant.Code, "from": now.AddDate(0, 0, -60), "to": now.AddDate(0, 0, -30)})
				if err != nil {
					return err
				}
				if resp.StatusCode != 200 && resp.StatusCode != 201 {
					return fmt.Errorf("register the ended file: %d %s", resp.StatusCode, b)
				}
				return nil
			},
			Do: publish(ended, "demo-move-4"), Check: routed(1)},
		{Name: "the OCMW's endpoint is down: retried with backoff", As: OCMW, Service: ServiceMutations, WantStatus: 503,
			Before: func(context.Context) error { ep.status.Store(503); return nil },
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				if resp, b, err := publish(downP, "demo-move-3")(ctx, c); err != nil || resp.StatusCode != 202 {
					return resp, b, fmt.Errorf("publish: %v %s", err, b)
				}
				resp, b, err := ep.await("demo-move-3", false)(ctx, c) // a failed attempt
				if err == nil {
					_, b, err = ep.await("demo-move-3", false)(ctx, c) // and a retry
				}
				return resp, b, err
			}},
		{Name: "the endpoint recovers: delivered", As: OCMW, Service: ServiceMutations, WantStatus: 200,
			Before: func(context.Context) error { ep.status.Store(200); return nil },
			Do:     ep.await("demo-move-3", true),
			Summary: func([]byte) string {
				return fmt.Sprintf("after %d failed attempts", ep.failures("demo-move-3"))
			}},
	}
}

// api calls the hub's API as participant as (JSON body if not empty).
func (c *Clients) api(ctx context.Context, as, method, path, body string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(c.http[as], req)
}

// endpoint is a subscriber's HTTPS endpoint: a server certificate of the
// network CA issued to the subscriber, the hub's client certificate
// required.
type endpoint struct {
	url    string
	status atomic.Int32
	mu     sync.Mutex
	got    []received
	next   map[string]int // per id: how many deliveries await has returned
}

type received struct {
	header http.Header
	body   []byte
	status int
}

func (r *Running) startEndpoint(participant string) (*endpoint, error) {
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: participant, Server: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return nil, err
	}
	if err := r.Hub.Registers.RecordCertificate(context.Background(), rec); err != nil {
		return nil, err
	}
	cert, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ep := &endpoint{next: map[string]int{}}
	ep.status.Store(200)
	cfg := pki.ServerTLSConfig(r.Hub.CA.Pool(), cert, nil)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		st := int(ep.status.Load())
		ep.mu.Lock()
		ep.got = append(ep.got, received{header: req.Header.Clone(), body: b, status: st})
		ep.mu.Unlock()
		w.WriteHeader(st)
	}), TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, cfg))
	r.closers = append(r.closers, func() { srv.Close() })
	ep.url = "https://" + ln.Addr().String() + "/crossroads/events"
	return ep, nil
}

// await waits (at most 20 s) for the next delivery of the event id that
// the endpoint accepted (ok) or refused, and returns it as a response.
func (ep *endpoint) await(id string, ok bool) func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
	return func(ctx context.Context, _ *Clients) (*http.Response, []byte, error) {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ep.mu.Lock()
			seen := 0
			for _, g := range ep.got {
				if g.header.Get("ce-id") != id || (g.status < 300) != ok {
					continue
				}
				if seen++; seen > ep.next[id+fmt.Sprint(ok)] {
					ep.next[id+fmt.Sprint(ok)]++
					ep.mu.Unlock()
					return &http.Response{StatusCode: g.status, Header: g.header}, g.body, nil
				}
			}
			ep.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil, nil, errors.New("no delivery of " + id)
	}
}

func (ep *endpoint) failures(id string) int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	n := 0
	for _, g := range ep.got {
		if g.header.Get("ce-id") == id && g.status >= 300 {
			n++
		}
	}
	return n
}
