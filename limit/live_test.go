package limit_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/load"
	"github.com/crossroads-hub/crossroads/pki"
)

func reason(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, ct, body)
	}
	var p struct{ Reason string }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Reason
}

func authorisation(t *testing.T, r *demo.Running, id string) crossroads.Authorisation {
	t.Helper()
	for _, a := range r.Hub.Directory.Snapshot().Authorisations {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no authorisation %s", id)
	return crossroads.Authorisation{}
}

// onemOK checks that the other institution is not affected.
func onemOK(t *testing.T, r *demo.Running) {
	t.Helper()
	p := r.People[0] // every third person has a file at the ONEM
	resp, body, err := r.Clients.Exchange(context.Background(), demo.ONEM, demo.ServiceEmployment, "employments/"+p.INSZ, "unemployment-benefit", p.INSZ)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ONEM affected by OCMW's limit: %d %s", resp.StatusCode, body)
	}
}

// TestLiveAuthorisationRateLimit drives the live hub past the limit of an
// authorisation: 429 rate-limited with Retry-After, audited, while another
// participant is served.
func TestLiveAuthorisationRateLimit(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	ctx := context.Background()
	a := authorisation(t, r, "ocmw-social-aid")
	// One token per 100 s: the test never sees a refill.
	a.Limits = &crossroads.Limits{RatePerSecond: 0.01, Burst: 3}
	if _, err := apply.Apply(ctx, r.Hub.Directory.Store(), &crossroads.Network{Authorisations: []crossroads.Authorisation{a}}, r.Hub.Scheme, false); err != nil {
		t.Fatal(err)
	}
	p := r.People[0]
	for i := range 3 {
		resp, body, err := r.Clients.Exchange(ctx, demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body, err := r.Clients.Exchange(ctx, demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || reason(t, resp, body) != string(crossroads.ReasonRateLimited) {
		t.Fatalf("past the limit: %d %s", resp.StatusCode, body)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 100 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("Crossroads-Receipt") == "" {
		t.Fatal("refusal not audited (no receipt)")
	}
	onemOK(t, r)

	page, err := r.Hub.Trail.Search(ctx, audit.Query{Participant: demo.OCMW, Outcome: crossroads.OutcomeDenied})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range page.Records {
		if e.Reason == crossroads.ReasonRateLimited && e.AuthorisationID == a.ID && e.Service == demo.ServicePerson {
			found = true
		}
	}
	if !found {
		t.Fatalf("no rate-limited audit record among %d", len(page.Records))
	}
}

// TestLiveParticipantLimitWithLoadGenerator: the load generator drives one
// participant past its limit; the report shows 429 rate-limited, and the
// other participant is served throughout.
func TestLiveParticipantLimitWithLoadGenerator(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	r.Hub.Limiter.Configure(crossroads.Limits{}, map[string]crossroads.Limits{demo.OCMW: {RatePerSecond: 0.01, Burst: 5}}, 0)
	p := r.People[0]
	hdr := http.Header{}
	hdr.Set("Crossroads-Purpose", "social-aid")
	hdr.Set("Crossroads-User", "load@ocmw-gent")
	hdr.Set("Crossroads-Subject", p.INSZ)
	rep, err := load.Run(context.Background(), load.Config{
		Target:   r.Base,
		TLS:      pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.OCMW]),
		Requests: []load.Request{{Path: "/v1/exchange/person-identity/persons/" + p.INSZ, Header: hdr}},
		// Bounded by the request count; the duration is only a backstop.
		Mode: load.ModeClosed, Concurrency: 4, Duration: time.Minute, MaxRequests: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %d requests, status %v, reasons %v", rep.Requests, rep.Status, rep.Reasons)
	if rep.Status[http.StatusOK] > 5 {
		t.Fatalf("%d admitted, burst is 5", rep.Status[http.StatusOK])
	}
	if rep.Status[http.StatusTooManyRequests] == 0 || rep.Reasons[string(crossroads.ReasonRateLimited)] == 0 {
		t.Fatalf("no 429 rate-limited: %v %v", rep.Status, rep.Reasons)
	}
	if rep.ServerErrors() != 0 || rep.ErrorCount() != 0 {
		t.Fatalf("errors under load: %v %v", rep.Status, rep.Errors)
	}
	onemOK(t, r)
}

// holdingProvider registers a service whose provider holds each request
// until release is closed; arrived receives one value per request.
func holdingProvider(t *testing.T, r *demo.Running) (arrived chan struct{}, release chan struct{}) {
	t.Helper()
	arrived, release = make(chan struct{}, 16), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(ln, pki.ServerTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.PopulationRegister], nil)))
	t.Cleanup(func() { srv.Close() })
	a := authorisation(t, r, "ocmw-social-aid")
	a.Services = append(append([]string(nil), a.Services...), "hold")
	fields := map[string][]string{"hold": {""}}
	for k, v := range a.Fields {
		fields[k] = v
	}
	a.Fields = fields
	n := &crossroads.Network{
		Services: []crossroads.Service{{ID: "hold", Provider: demo.PopulationRegister, BaseURL: "https://" + ln.Addr().String(), Classification: 1, Fields: []string{""}, ConcernsPerson: true,
			Operations: []crossroads.Operation{{ID: "read", Method: "GET", Path: "/x/{subject}"}}}},
		Authorisations: []crossroads.Authorisation{a},
	}
	if _, err := apply.Apply(context.Background(), r.Hub.Directory.Store(), n, r.Hub.Scheme, false); err != nil {
		t.Fatal(err)
	}
	return arrived, release
}

// TestLiveConcurrencyLimitAndLoadShedding: with one exchange held at the
// provider, a participant limited to one concurrent exchange gets 429, and
// a hub capped at one exchange in flight sheds everyone with 503
// overloaded; health checks still answer, and all recovers on release.
func TestLiveConcurrencyLimitAndLoadShedding(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	ctx := context.Background()
	arrived, release := holdingProvider(t, r)
	p := r.People[0]
	r.Hub.Limiter.Configure(crossroads.Limits{}, map[string]crossroads.Limits{demo.OCMW: {MaxConcurrent: 1}}, 0)

	held := make(chan int, 1)
	go func() {
		resp, _, err := r.Clients.Exchange(ctx, demo.OCMW, "hold", "x/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			held <- -1
			return
		}
		held <- resp.StatusCode
	}()
	<-arrived

	resp, body, err := r.Clients.Exchange(ctx, demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || reason(t, resp, body) != string(crossroads.ReasonRateLimited) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second concurrent exchange: %d %s", resp.StatusCode, body)
	}
	onemOK(t, r)

	// Now the global cap: one in flight (the held one).
	r.Hub.Limiter.Configure(crossroads.Limits{}, nil, 1)
	resp, body, err = r.Clients.Exchange(ctx, demo.ONEM, demo.ServiceEmployment, "employments/"+p.INSZ, "unemployment-benefit", p.INSZ)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || reason(t, resp, body) != string(crossroads.ReasonOverloaded) || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the global cap: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	hc, err := r.Clients.Client(demo.ONEM).Get(r.Base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hc.Body.Close()
	if hc.StatusCode != http.StatusOK {
		t.Fatalf("healthz while shedding: %d", hc.StatusCode)
	}

	close(release)
	if st := <-held; st != http.StatusOK {
		t.Fatalf("held exchange: %d", st)
	}
	onemOK(t, r)
	if r.Hub.Limiter.InFlight() != 0 {
		t.Fatalf("in flight %d after all answered", r.Hub.Limiter.InFlight())
	}
}
