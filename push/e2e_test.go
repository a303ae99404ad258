package push_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/push"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// subscriber is a real HTTPS endpoint of a subscriber: the network CA's
// server certificate issued to the subscriber participant, requiring the
// hub's client certificate.
type subscriber struct {
	URL    string
	status atomic.Int32 // answered status (default 200)
	mu     sync.Mutex
	got    []delivery // every attempt
}

type delivery struct {
	Header http.Header
	Body   []byte
	Status int
	Peer   string // the client certificate's participant
}

func newSubscriber(t testing.TB, r *demo.Running, participant string) *subscriber {
	t.Helper()
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: participant, Server: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Hub.Registers.RecordCertificate(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{}
	s.status.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.ServerTLSConfig(r.Hub.CA.Pool(), cert, nil)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		peer := ""
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			peer, _ = pki.ParticipantID(req.TLS.PeerCertificates[0])
		}
		st := int(s.status.Load())
		s.mu.Lock()
		s.got = append(s.got, delivery{Header: req.Header.Clone(), Body: body, Status: st, Peer: peer})
		s.mu.Unlock()
		w.WriteHeader(st)
	}), TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	s.URL = "https://" + ln.Addr().String() + "/events"
	return s
}

func (s *subscriber) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.got...)
}

// accepted returns the ids (idempotency keys) of the deliveries answered 2xx.
func (s *subscriber) accepted() []string {
	var ids []string
	for _, d := range s.deliveries() {
		if d.Status < 300 {
			ids = append(ids, d.Header.Get("ce-id"))
		}
	}
	return ids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type net_ struct {
	r *demo.Running
	t testing.TB
}

func (n net_) do(as, method, path string, body any) (int, []byte) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			b = []byte(s)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.r.Base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.r.Clients.Client(as).Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func reason(b []byte) string {
	var p struct{ Reason string }
	json.Unmarshal(b, &p)
	return p.Reason
}

type answer struct {
	Publication string
	Routed      int
	Duplicate   bool
}

func (n net_) publish(op, subject, key, effective, payload string) (int, answer, []byte) {
	n.t.Helper()
	body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":%q,"payload":%s}`, subject, effective, key, payload)
	st, b := n.do(demo.PopulationRegister, "POST", "/v1/mutations/"+demo.ServiceMutations+"/"+op, body)
	var a answer
	json.Unmarshal(b, &a)
	return st, a, b
}

func startPush(t *testing.T, dsn ...string) (net_, *subscriber) {
	t.Helper()
	var url string
	if len(dsn) > 0 {
		url = dsn[0]
	}
	r := demotest.Start(t, demo.Options{People: 12, DatabaseURL: url, Configure: func(c *hub.Config) {
		c.Push = hub.PushOptions{MinBackoff: 40 * time.Millisecond, MaxBackoff: 150 * time.Millisecond, Horizon: 3 * time.Second, Poll: 20 * time.Millisecond}
	}})
	n := net_{r: r, t: t}
	s := newSubscriber(t, r, demo.OCMW)
	for as, sub := range map[string]crossroads.Subscription{
		demo.OCMW: {Service: demo.ServiceMutations, Operation: demo.OpAddressChanged, Purpose: "social-aid",
			Capacities: []crossroads.Capacity{demo.CapSocialAid}, Delivery: crossroads.DeliveryPush, Endpoint: s.URL},
		demo.ONEM: {Service: demo.ServiceMutations, Operation: demo.OpAddressChanged, Purpose: "unemployment-benefit",
			Capacities: []crossroads.Capacity{demo.CapClaimant}, Delivery: crossroads.DeliveryPull},
	} {
		id := demo.SubscriptionOCMW
		if as == demo.ONEM {
			id = demo.SubscriptionONEM
		}
		if st, b := n.do(as, "PUT", "/v1/subscriptions/"+id, sub); st != 200 {
			t.Fatalf("subscribe %s: %d %s", as, st, b)
		}
	}
	return n, s
}

const addr = `{"insz":"x","address":{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"},"previousAddress":{"city":"Leuven"}}`

func today() string { return time.Now().UTC().Format(time.DateOnly) }

func TestPush(t *testing.T) {
	n, s := startPush(t)
	r := n.r
	people := r.People
	ctx := context.Background()

	t.Run("self-service rules", func(t *testing.T) {
		other := crossroads.Subscription{Subscriber: demo.OCMW, Service: demo.ServiceMutations, Operation: demo.OpAddressChanged, Purpose: "social-aid",
			Capacities: []crossroads.Capacity{demo.CapSocialAid}, Delivery: crossroads.DeliveryPull}
		if st, b := n.do(demo.ONEM, "PUT", "/v1/subscriptions/x1", other); st != 403 || reason(b) != string(crossroads.ReasonNotSubscriber) {
			t.Fatalf("another's subscription: %d %s", st, b)
		}
		if st, b := n.do(demo.ONEM, "PUT", "/v1/subscriptions/"+demo.SubscriptionOCMW, crossroads.Subscription{Service: demo.ServiceMutations}); st != 403 {
			t.Fatalf("taking over another's id: %d %s", st, b)
		}
		bad := other
		bad.Subscriber, bad.Delivery, bad.Endpoint = "", crossroads.DeliveryPush, "http://127.0.0.1/events"
		if st, b := n.do(demo.OCMW, "PUT", "/v1/subscriptions/x2", bad); st != 422 || !strings.Contains(string(b), "https") {
			t.Fatalf("plain http endpoint: %d %s", st, b)
		}
		bad = other
		bad.Subscriber, bad.Purpose = "", "debt-mediation"
		if st, b := n.do(demo.OCMW, "PUT", "/v1/subscriptions/x3", bad); st != 422 || reason(b) != string(crossroads.ReasonInvalidSubscription) {
			t.Fatalf("purpose not covered: %d %s", st, b)
		}
		bad = other
		bad.Subscriber, bad.Service, bad.Operation = "", demo.ServicePerson, demo.OpRead
		if st, b := n.do(demo.OCMW, "PUT", "/v1/subscriptions/x4", bad); st != 422 {
			t.Fatalf("not a mutation: %d %s", st, b)
		}
		st, b := n.do(demo.ONEM, "GET", "/v1/subscriptions", nil)
		if st != 200 || !strings.Contains(string(b), demo.SubscriptionONEM) || strings.Contains(string(b), demo.SubscriptionOCMW) {
			t.Fatalf("own list: %d %s", st, b)
		}
		if st, _ := n.do(demo.Operator, "GET", "/v1/subscriptions", nil); st != 200 {
			t.Fatalf("operator list: %d", st)
		}
	})

	t.Run("publisher and body", func(t *testing.T) {
		body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":"k","payload":{}}`, people[0].INSZ, today())
		if st, b := n.do(demo.OCMW, "POST", "/v1/mutations/"+demo.ServiceMutations+"/"+demo.OpAddressChanged, body); st != 403 || reason(b) != string(crossroads.ReasonNotPublisher) {
			t.Fatalf("publisher not the provider: %d %s", st, b)
		}
		for _, bad := range []string{`{`, `{"subject":"x"}`, `{"subject":"` + people[0].INSZ + `","effectiveDate":"tomorrow","idempotencyKey":"k","payload":{}}`,
			`{"subject":"` + people[0].INSZ + `","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":[1]}`,
			`{"subject":"` + people[0].INSZ + `","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":{},"extra":1}`} {
			st, b := n.do(demo.PopulationRegister, "POST", "/v1/mutations/"+demo.ServiceMutations+"/"+demo.OpAddressChanged, bad)
			if st != 400 || reason(b) != string(crossroads.ReasonInvalidMutation) || !strings.Contains(string(b), `"type"`) {
				t.Fatalf("bad body %s: %d %s", bad, st, b)
			}
		}
		if st, _, b := n.publish(demo.OpAddressChanged, "12345678901", "k-bad-subject", today(), `{}`); st != 400 || reason(b) != string(crossroads.ReasonInvalidSubject) {
			t.Fatalf("bad subject: %d %s", st, b)
		}
		if st, b := n.do(demo.PopulationRegister, "POST", "/v1/mutations/"+demo.ServiceMutations+"/nope", body); st != 404 || reason(b) != string(crossroads.ReasonUnknownMutation) {
			t.Fatalf("unknown mutation: %d %s", st, b)
		}
		if st, b := n.do(demo.PopulationRegister, "POST", "/v1/mutations/"+demo.ServicePerson+"/"+demo.OpRead, body); st != 404 || reason(b) != string(crossroads.ReasonUnknownMutation) {
			t.Fatalf("a call is not a mutation: %d %s", st, b)
		}
	})

	t.Run("eligibility", func(t *testing.T) {
		// person 0: OCMW (social aid) and ONEM (claimant)
		if st, a, b := n.publish(demo.OpAddressChanged, people[0].INSZ, "e-both", today(), addr); st != 202 || a.Routed != 2 {
			t.Fatalf("both: %d %s", st, b)
		}
		// person 1: no file at the ONEM
		if _, a, _ := n.publish(demo.OpAddressChanged, people[1].INSZ, "e-nofile", today(), addr); a.Routed != 1 {
			t.Fatalf("no file: routed %d, want 1 (OCMW only)", a.Routed)
		}
		// the last person: the OCMW holds a file as applicant, a capacity its subscription does not follow; no ONEM file
		if _, a, _ := n.publish(demo.OpAddressChanged, people[len(people)-1].INSZ, "e-capacity", today(), addr); a.Routed != 0 {
			t.Fatalf("capacity not followed: routed %d, want 0", a.Routed)
		}
		// no subscription to deaths
		if _, a, _ := n.publish(demo.OpDied, people[0].INSZ, "e-nosub", today(), `{"dateOfDeath":"2026-11-30"}`); a.Routed != 0 {
			t.Fatalf("no subscription: routed %d, want 0", a.Routed)
		}
		// person 2: an ONEM file that ended 30 days ago
		now := time.Now().UTC()
		ended := crossroads.Integration{Person: people[2].INSZ, Participant: demo.ONEM, Sector: demo.CapClaimant.Sector, Capacity: demo.CapClaimant.Code,
			From: now.AddDate(0, 0, -60).Truncate(time.Second), To: now.AddDate(0, 0, -30).Truncate(time.Second)}
		if err := r.Hub.Directory.Store().Apply(ctx, &crossroads.Network{Integrations: []crossroads.Integration{ended}}); err != nil {
			t.Fatal(err)
		}
		if _, a, _ := n.publish(demo.OpAddressChanged, people[2].INSZ, "e-ended", today(), addr); a.Routed != 1 {
			t.Fatalf("file ended before the effective date: routed %d, want 1", a.Routed)
		}
		if _, a, _ := n.publish(demo.OpAddressChanged, people[2].INSZ, "e-inperiod", now.AddDate(0, 0, -45).Format(time.DateOnly), addr); a.Routed != 2 {
			t.Fatalf("effective within the file's period: routed %d, want 2", a.Routed)
		}
		// no (active) authorisation: the ONEM's suspended — once what was
		// routed to it is sealed (a delivery no longer covered is dropped)
		waitFor(t, "the ONEM's entries sealed", func() bool {
			_, b := n.do(demo.Operator, "GET", "/v1/admin/subscriptions/"+demo.SubscriptionONEM+"/entries?state=pending", nil)
			return strings.Contains(string(b), `"entries":[]`)
		})
		a, _ := r.Hub.Directory.Authorisation("onem-mutations")
		susp := *a
		susp.Status = crossroads.StatusSuspended
		if err := r.Hub.Directory.Store().Apply(ctx, &crossroads.Network{Authorisations: []crossroads.Authorisation{susp}}); err != nil {
			t.Fatal(err)
		}
		if _, a, _ := n.publish(demo.OpAddressChanged, people[3].INSZ, "e-noauth", today(), addr); a.Routed != 1 {
			t.Fatalf("authorisation suspended: routed %d, want 1", a.Routed)
		}
		if err := r.Hub.Directory.Store().Apply(ctx, &crossroads.Network{Authorisations: []crossroads.Authorisation{*a}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the OCMW's five deliveries", func() bool { return len(s.accepted()) >= 5 })
	})

	t.Run("wire format and seal", func(t *testing.T) {
		var d delivery
		for _, x := range s.deliveries() {
			if x.Header.Get("ce-id") == "e-both" {
				d = x
			}
		}
		if d.Body == nil {
			t.Fatal("no delivery of e-both")
		}
		if d.Peer != hub.HubID {
			t.Fatalf("delivered by %q, want the hub's certificate", d.Peer)
		}
		// An SDK the project did not write reads it.
		req := &http.Request{Header: d.Header, Body: io.NopCloser(bytes.NewReader(d.Body))}
		ev, err := cehttp.ToEvent(ctx, cloudevents.NewMessageFromHttpRequest(req))
		if err != nil {
			t.Fatalf("CloudEvents SDK: %v", err)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("not a valid CloudEvent: %v", err)
		}
		if ev.SpecVersion() != "1.0" || ev.ID() != "e-both" || ev.Type() != demo.ServiceMutations+"/"+demo.OpAddressChanged ||
			ev.Subject() != people[0].INSZ || ev.Source() != "/v1/mutations/"+demo.ServiceMutations || ev.Time().IsZero() {
			t.Fatalf("event attributes: %v", ev)
		}
		if ev.Extensions()["effectivedate"] != today() {
			t.Fatalf("effective date extension: %v", ev.Extensions())
		}
		// minimised to the OCMW's grant: the city only
		if string(ev.Data()) != `{"address":{"city":"Gent"}}` {
			t.Fatalf("data %s, want the city only", ev.Data())
		}
		// sealed as an exchange response
		c, err := pki.VerifySeal(d.Header.Get(pki.HeaderSeal), ev.Data(), r.Hub.CA.Pool(), time.Now())
		if err != nil {
			t.Fatalf("seal: %v", err)
		}
		if c.Requester != demo.OCMW || c.Subject != people[0].INSZ || c.Service != demo.ServiceMutations || c.Operation != demo.OpAddressChanged ||
			c.Purpose != "social-aid" || c.AuthorisationID != "ocmw-mutations" {
			t.Fatalf("seal claims: %+v", c)
		}
		if d.Header.Get(pki.HeaderReceipt) == "" {
			t.Fatal("no audit receipt")
		}
		// tampering is caught
		if _, err := pki.VerifySeal(d.Header.Get(pki.HeaderSeal), []byte(`{"address":{"city":"Brugge"}}`), r.Hub.CA.Pool(), time.Now()); err == nil {
			t.Fatal("a changed body verified")
		}
		// the citizen sees the delivery in their own view
		resp, body, err := r.Clients.Citizen(ctx, people[0].INSZ, "/v1/me/exchanges")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("citizen view: %v %s", err, body)
		}
		if !strings.Contains(string(body), demo.OCMW) || !strings.Contains(string(body), demo.ServiceMutations) {
			t.Fatalf("the delivery is not in the citizen's view: %s", body)
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		_, first, _ := n.publish(demo.OpAddressChanged, people[4].INSZ, "idem-1", today(), addr)
		st, again, b := n.publish(demo.OpAddressChanged, people[4].INSZ, "idem-1", today(), addr)
		if st != 202 || !again.Duplicate || again.Publication != first.Publication || again.Routed != first.Routed {
			t.Fatalf("retry: %d %s (first %+v)", st, b, first)
		}
		if st, _, b := n.publish(demo.OpAddressChanged, people[4].INSZ, "idem-1", today(), `{"address":{"city":"Brugge"}}`); st != 409 || reason(b) != string(crossroads.ReasonDuplicateMutation) {
			t.Fatalf("same key, another mutation: %d %s", st, b)
		}
		waitFor(t, "idem-1", func() bool { return strings.Contains(strings.Join(s.accepted(), ","), "idem-1") })
		time.Sleep(300 * time.Millisecond)
		count := 0
		for _, id := range s.accepted() {
			if id == "idem-1" {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("idem-1 delivered %d times, want once", count)
		}
	})

	t.Run("order, retry, then success", func(t *testing.T) {
		s.status.Store(503)
		for i := 1; i <= 3; i++ {
			n.publish(demo.OpAddressChanged, people[5].INSZ, fmt.Sprintf("ord-%d", i), today(), addr)
		}
		waitFor(t, "three failed attempts", func() bool {
			failed := 0
			for _, d := range s.deliveries() {
				if strings.HasPrefix(d.Header.Get("ce-id"), "ord-") && d.Status == 503 {
					failed++
				}
			}
			return failed >= 3
		})
		for _, d := range s.deliveries() {
			if id := d.Header.Get("ce-id"); strings.HasPrefix(id, "ord-") && id != "ord-1" {
				t.Fatalf("%s attempted while ord-1 was not delivered", id)
			}
		}
		s.status.Store(200)
		waitFor(t, "ord-3", func() bool { return strings.Contains(strings.Join(s.accepted(), ","), "ord-3") })
		var order []string
		for _, id := range s.accepted() {
			if strings.HasPrefix(id, "ord-") {
				order = append(order, id)
			}
		}
		if strings.Join(order, ",") != "ord-1,ord-2,ord-3" {
			t.Fatalf("order %v", order)
		}
	})

	t.Run("dead letter and redelivery", func(t *testing.T) {
		s.status.Store(500)
		n.publish(demo.OpAddressChanged, people[6].INSZ, "dead-1", today(), addr)
		waitFor(t, "the dead letter", func() bool {
			_, b := n.do(demo.Operator, "GET", "/v1/admin/subscriptions/"+demo.SubscriptionOCMW+"/entries?state=dead", nil)
			return strings.Contains(string(b), `"state":"dead"`)
		})
		if st, _ := n.do(demo.OCMW, "POST", "/v1/admin/subscriptions/"+demo.SubscriptionOCMW+"/redeliver", "{}"); st != 403 {
			t.Fatalf("redelivery by a participant: %d", st)
		}
		s.status.Store(200)
		st, b := n.do(demo.Operator, "POST", "/v1/admin/subscriptions/"+demo.SubscriptionOCMW+"/redeliver", "{}")
		if st != 200 || !strings.Contains(string(b), `"redelivered":1`) {
			t.Fatalf("redeliver: %d %s", st, b)
		}
		waitFor(t, "dead-1 redelivered", func() bool { return strings.Contains(strings.Join(s.accepted(), ","), "dead-1") })
	})

	t.Run("pull feed with acknowledgement", func(t *testing.T) {
		var f push.Feed
		waitFor(t, "three events in the ONEM's feed", func() bool {
			st, b := n.do(demo.ONEM, "GET", "/v1/subscriptions/"+demo.SubscriptionONEM+"/events?wait=1", nil)
			if st != 200 {
				t.Fatalf("feed: %d %s", st, b)
			}
			f = push.Feed{}
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			if len(f.Events) < 3 {
				_, b := n.do(demo.Operator, "GET", "/v1/admin/subscriptions/"+demo.SubscriptionONEM+"/entries", nil)
				t.Logf("entries: %s", b)
			}
			return len(f.Events) >= 3
		})
		// persons 0 and 2 (in the file's period) and 6: the ONEM's claimants
		if len(f.Events) != 3 || f.Events[0].ID != "e-both" || f.Events[1].ID != "e-inperiod" || f.Events[2].ID != "dead-1" {
			t.Fatalf("feed events %+v", f.Events)
		}
		// whole address for the ONEM; the seal verifies on the data as sent
		ev := f.Events[0]
		if !strings.Contains(string(ev.Data), "Veldstraat") || strings.Contains(string(ev.Data), "previousAddress") {
			t.Fatalf("ONEM's data %s", ev.Data)
		}
		if c, err := pki.VerifySeal(ev.Seal, ev.Data, r.Hub.CA.Pool(), time.Now()); err != nil || c.Requester != demo.ONEM {
			t.Fatalf("seal: %+v %v", c, err)
		}
		// others may not read it; a push subscription has no feed
		if st, b := n.do(demo.OCMW, "GET", "/v1/subscriptions/"+demo.SubscriptionONEM+"/events?wait=0", nil); st != 403 || reason(b) != string(crossroads.ReasonNotSubscriber) {
			t.Fatalf("another's feed: %d %s", st, b)
		}
		if st, b := n.do(demo.OCMW, "GET", "/v1/subscriptions/"+demo.SubscriptionOCMW+"/events?wait=0", nil); st != 409 || reason(b) != string(crossroads.ReasonNotPull) {
			t.Fatalf("feed of a push subscription: %d %s", st, b)
		}
		if st, b := n.do(demo.ONEM, "GET", "/v1/subscriptions/nope/events", nil); st != 404 || reason(b) != string(crossroads.ReasonUnknownSubscription) {
			t.Fatalf("unknown subscription: %d %s", st, b)
		}
		if st, b := n.do(demo.ONEM, "GET", "/v1/subscriptions/"+demo.SubscriptionONEM+"/events?after=-1", nil); st != 400 || reason(b) != string(crossroads.ReasonInvalidCursor) {
			t.Fatalf("bad cursor: %d %s", st, b)
		}
		if st, b := n.do(demo.ONEM, "POST", "/v1/subscriptions/"+demo.SubscriptionONEM+"/ack", map[string]int64{"seq": 999999}); st != 400 || reason(b) != string(crossroads.ReasonInvalidCursor) {
			t.Fatalf("ack of no event: %d %s", st, b)
		}
		// acknowledge the first: the feed then starts after it
		seq := f.Events[0].Sequence
		var n0 int64
		fmt.Sscan(seq, &n0)
		if st, b := n.do(demo.ONEM, "POST", "/v1/subscriptions/"+demo.SubscriptionONEM+"/ack", map[string]int64{"seq": n0}); st != 200 {
			t.Fatalf("ack: %d %s", st, b)
		}
		_, b := n.do(demo.ONEM, "GET", "/v1/subscriptions/"+demo.SubscriptionONEM+"/events?wait=0", nil)
		var f2 push.Feed
		json.Unmarshal(b, &f2)
		if len(f2.Events) != 2 || f2.Events[0].ID != "e-inperiod" || f2.Cursor != n0 {
			t.Fatalf("after ack: %s", b)
		}
		// long poll: a publication arrives while the subscriber waits
		done := make(chan []byte)
		go func() {
			_, b := n.do(demo.ONEM, "GET", fmt.Sprintf("/v1/subscriptions/%s/events?wait=10&after=%d", demo.SubscriptionONEM, f2.Next), nil)
			done <- b
		}()
		time.Sleep(100 * time.Millisecond)
		n.publish(demo.OpAddressChanged, people[9].INSZ, "poll-1", today(), addr)
		select {
		case b := <-done:
			if !strings.Contains(string(b), "poll-1") {
				t.Fatalf("long poll: %s", b)
			}
		case <-time.After(12 * time.Second):
			t.Fatal("long poll did not return")
		}
	})
	t.Run("metrics", func(t *testing.T) {
		st, b := n.do(demo.Operator, "GET", "/metrics", nil)
		if st != 200 {
			t.Fatalf("metrics: %d", st)
		}
		for _, want := range []string{`crossroads_push_publications_total{outcome="accepted"}`, `crossroads_push_publications_total{outcome="duplicate"}`,
			`crossroads_push_deliveries_total{outcome="delivered"}`, `crossroads_push_deliveries_total{outcome="dead"}`,
			`crossroads_push_deliveries_total{outcome="retry"}`, `crossroads_push_deliveries_total{outcome="acknowledged"}`,
			"crossroads_push_redelivered_total 1", "crossroads_push_backlog", "crossroads_push_delivery_seconds_count"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("dropped when no longer covered", func(t *testing.T) {
		s.status.Store(503)
		n.publish(demo.OpAddressChanged, people[7].INSZ, "drop-1", today(), addr)
		waitFor(t, "a failed attempt", func() bool {
			for _, d := range s.deliveries() {
				if d.Header.Get("ce-id") == "drop-1" {
					return true
				}
			}
			return false
		})
		if st, b := n.do(demo.OCMW, "DELETE", "/v1/subscriptions/"+demo.SubscriptionOCMW, nil); st != 200 {
			t.Fatalf("unsubscribe: %d %s", st, b)
		}
		waitFor(t, "drop-1 dropped", func() bool {
			_, b := n.do(demo.Operator, "GET", "/v1/admin/subscriptions/"+demo.SubscriptionOCMW+"/entries?state=dropped", nil)
			return strings.Contains(string(b), "no longer covered")
		})
		if _, a, _ := n.publish(demo.OpAddressChanged, people[7].INSZ, "drop-2", today(), addr); a.Routed != 0 {
			t.Fatalf("routed to a suspended subscription: %d", a.Routed)
		}
	})
}

// TestPushOnPostgres: the hub on PostgreSQL (registers, audit, outbox):
// a mutation routed to both subscribers, pushed over mTLS and pulled,
// acknowledged; a retry of its key routed once.
func TestPushOnPostgres(t *testing.T) {
	db := pgtest.New(t)
	n, s := startPush(t, db.Schema(t))
	p0 := n.r.People[0]
	if st, a, b := n.publish(demo.OpAddressChanged, p0.INSZ, "pg-1", today(), addr); st != 202 || a.Routed != 2 {
		t.Fatalf("publish: %d %s", st, b)
	}
	if _, a, _ := n.publish(demo.OpAddressChanged, p0.INSZ, "pg-1", today(), addr); !a.Duplicate {
		t.Fatalf("retry not recognised: %+v", a)
	}
	waitFor(t, "the push delivery", func() bool { return strings.Contains(strings.Join(s.accepted(), ","), "pg-1") })
	var f push.Feed
	waitFor(t, "the pull event", func() bool {
		_, b := n.do(demo.ONEM, "GET", "/v1/subscriptions/"+demo.SubscriptionONEM+"/events?wait=1", nil)
		f = push.Feed{}
		json.Unmarshal(b, &f)
		return len(f.Events) == 1
	})
	if _, err := pki.VerifySeal(f.Events[0].Seal, f.Events[0].Data, n.r.Hub.CA.Pool(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, b := n.do(demo.ONEM, "POST", "/v1/subscriptions/"+demo.SubscriptionONEM+"/ack", map[string]string{}); st != 400 {
		t.Fatalf("ack without seq: %d %s", st, b)
	}
	var seq int64
	fmt.Sscan(f.Events[0].Sequence, &seq)
	if st, b := n.do(demo.ONEM, "POST", "/v1/subscriptions/"+demo.SubscriptionONEM+"/ack", map[string]int64{"seq": seq}); st != 200 {
		t.Fatalf("ack: %d %s", st, b)
	}
	if len(s.accepted()) != 1 {
		t.Fatalf("pushed %d times", len(s.accepted()))
	}
}

// TestPushScenario runs the demo's push scenario.
func TestPushScenario(t *testing.T) {
	r := demotest.Start(t, demo.Options{People: 12, Configure: func(c *hub.Config) {
		c.Push = hub.PushOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	}})
	results := r.Clients.Run(context.Background(), r.PushScenario())
	var out bytes.Buffer
	if !demo.Print(&out, results) {
		t.Fatalf("push scenario failed:\n%s", out.String())
	}
	t.Log("\n" + out.String())
}

// BenchmarkDeliveries: mutations published over the API (4 publishers)
// and pushed over mTLS to a real subscriber endpoint, each sealed,
// recorded and acknowledged; deliveries/s from the first publication to
// the last acknowledgement.
func BenchmarkDeliveries(b *testing.B) {
	r := demotest.Start(b, demo.Options{People: 300})
	n := net_{r: r, t: b}
	s := newSubscriber(b, r, demo.OCMW)
	sub := crossroads.Subscription{Service: demo.ServiceMutations, Operation: demo.OpAddressChanged, Purpose: "social-aid",
		Capacities: []crossroads.Capacity{demo.CapSocialAid}, Delivery: crossroads.DeliveryPush, Endpoint: s.URL}
	if st, body := n.do(demo.OCMW, "PUT", "/v1/subscriptions/"+demo.SubscriptionOCMW, sub); st != 200 {
		b.Fatalf("subscribe: %d %s", st, body)
	}
	people := r.People[:len(r.People)-1]
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				body := fmt.Sprintf(`{"subject":%q,"effectiveDate":%q,"idempotencyKey":"bench-%d","payload":%s}`, people[int(i)%len(people)].INSZ, today(), i, addr)
				req, _ := http.NewRequest("POST", r.Base+"/v1/mutations/"+demo.ServiceMutations+"/"+demo.OpAddressChanged, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := r.Clients.Client(demo.PopulationRegister).Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 202 {
					b.Errorf("publish: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	published := b.Elapsed()
	for deadline := time.Now().Add(5 * time.Minute); len(s.accepted()) < b.N; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered", len(s.accepted()), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/published.Seconds(), "publications/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
