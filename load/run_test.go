package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newPKI(t testing.TB) *EphemeralPKI {
	t.Helper()
	p, err := NewEphemeralPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// hits counts requests by path and connections, server side.
type hits struct {
	mu    sync.Mutex
	paths map[string]int64
	proto map[int]int64
	conns atomic.Int64
}

func (h *hits) get(path string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paths[path]
}

func (h *hits) total() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, c := range h.paths {
		n += c
	}
	return n
}

// exchangeServer answers like the hub would: allowed, denied with a reason,
// rate limited, failing.
func exchangeServer(t *testing.T, p *EphemeralPKI, delay time.Duration) (*httptest.Server, *hits) {
	t.Helper()
	h := &hits{paths: map[string]int64{}, proto: map[int]int64{}}
	problem := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.paths[r.URL.Path]++
		h.proto[r.ProtoMajor]++
		h.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if r.Header.Get("Crossroads-Purpose") != "test" {
			problem(w, 400, `{"status":400,"reason":"bad-header"}`)
			return
		}
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"name":"x"}`))
		case "/deny":
			problem(w, 403, `{"type":"urn:crossroads:problem:no-integration","status":403,"reason":"no-integration"}`)
		case "/deny-plain":
			http.Error(w, "forbidden", http.StatusForbidden)
		case "/limited":
			w.Header().Set("Retry-After", "1")
			problem(w, 429, `{"status":429,"reason":"rate-limited"}`)
		case "/boom":
			problem(w, 500, `{"status":500}`)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.TLS = p.ServerTLS()
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are tested
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, h
}

func testHeader() http.Header {
	return http.Header{"Crossroads-Purpose": {"test"}, "Crossroads-User": {"u1"}, "Crossroads-Subject": {"85073003328"}}
}

func mix() []Request {
	return []Request{
		{Weight: 3, Path: "/ok", Header: testHeader(), Expect: 200},
		{Weight: 1, Path: "/deny", Header: testHeader(), Expect: 403},
		{Weight: 1, Path: "/deny-plain", Header: testHeader(), Expect: 403},
		{Weight: 1, Method: "POST", Path: "/limited", Header: testHeader(), Body: []byte(`{}`), Expect: 200}, // wrong on purpose
	}
}

func TestClosedCountsStatusesAndReasons(t *testing.T) {
	p := newPKI(t)
	srv, h := exchangeServer(t, p, 0)
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, TLS: p.ClientTLS(), Requests: mix(),
		Mode: ModeClosed, Concurrency: 4, Connections: 3,
		Duration: 10 * time.Second, MaxRequests: 600,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 600 || rep.Responses != 600 || h.total() != 600 {
		t.Fatalf("requests %d responses %d server %d, want 600", rep.Requests, rep.Responses, h.total())
	}
	// The mix is 3:1:1:1, interleaved by a counter: exact up to one period.
	want := map[int]int64{200: 300, 403: 200, 429: 100}
	for s, n := range want {
		if d := rep.Status[s] - n; d < -6 || d > 6 {
			t.Errorf("status %d: %d, want ≈%d (all %v)", s, rep.Status[s], n, rep.Status)
		}
	}
	if rep.Reasons["no-integration"] != h.get("/deny") || rep.Reasons["rate-limited"] != h.get("/limited") ||
		rep.Reasons[NoReason] != h.get("/deny-plain") || len(rep.Reasons) != 3 {
		t.Errorf("reasons %v, server %v", rep.Reasons, h.paths)
	}
	if rep.Unexpected != h.get("/limited") {
		t.Errorf("unexpected %d, want %d", rep.Unexpected, h.get("/limited"))
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors %v", rep.Errors)
	}
	if n := h.conns.Load(); n < 1 || n > 3 {
		t.Errorf("%d connections, want at most the pool of 3", n)
	}
	if h.proto[1] != 600 {
		t.Errorf("protocols %v, want HTTP/1.1 only", h.proto)
	}
	if rep.Latency.Count != 600 || rep.Latency.Max < rep.Latency.P50 || rep.Latency.P50 <= 0 || rep.Histogram.Count() != 600 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if rep.Throughput <= 0 || rep.Elapsed <= 0 {
		t.Errorf("throughput %f over %s", rep.Throughput, rep.Elapsed)
	}
	tab := rep.Table()
	for _, s := range []string{"no-integration: 100", "429: 100", "unexpected  100", "closed, 4 workers"} {
		if !strings.Contains(tab, s) {
			t.Errorf("table lacks %q:\n%s", s, tab)
		}
	}
}

func TestClosedWarmupAndDurationBounded(t *testing.T) {
	p := newPKI(t)
	srv, h := exchangeServer(t, p, time.Millisecond)
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, TLS: p.ClientTLS(), Requests: mix()[:1],
		Concurrency: 2, Warmup: 250 * time.Millisecond, Duration: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Requests >= h.total() {
		t.Fatalf("measured %d of %d sent: warm-up should be sent but not counted", rep.Requests, h.total())
	}
	if rep.Status[200] != rep.Requests {
		t.Fatalf("status %v", rep.Status)
	}
}

func TestHTTP2Connections(t *testing.T) {
	p := newPKI(t)
	srv, h := exchangeServer(t, p, 0)
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, TLS: p.ClientTLS(), Requests: mix()[:2],
		Concurrency: 8, Connections: 2, HTTP2: true,
		Duration: 10 * time.Second, MaxRequests: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Responses != 200 || h.proto[2] != 200 || rep.Protocol != "HTTP/2" {
		t.Fatalf("responses %d, server protocols %v", rep.Responses, h.proto)
	}
	if n := h.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestOpenSendsOnSchedule(t *testing.T) {
	p := newPKI(t)
	srv, h := exchangeServer(t, p, 0)
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, TLS: p.ClientTLS(), Requests: mix(),
		Mode: ModeOpen, Rate: 400, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Offered != 200 {
		t.Fatalf("offered %d, want 400/s × 0.5s = 200", rep.Offered)
	}
	// On a starved machine the schedule may not be kept; what was not sent
	// must then be counted as unsent.
	if rep.Requests+rep.Unsent != rep.Offered || rep.Requests == 0 || h.total() != rep.Requests {
		t.Fatalf("sent %d + unsent %d vs offered %d; server saw %d\n%s", rep.Requests, rep.Unsent, rep.Offered, h.total(), rep.Table())
	}
	if n := h.conns.Load(); n > DefaultOpenConnections || rep.Connections != DefaultOpenConnections {
		t.Errorf("%d connections (report %d), want a pool of at most %d", n, rep.Connections, DefaultOpenConnections)
	}
	if rep.SendLag == nil || rep.SendLag.Count != uint64(rep.Requests) {
		t.Fatalf("send lag %+v", rep.SendLag)
	}
	if !strings.Contains(rep.Table(), "late sends") {
		t.Error("table lacks late sends")
	}
}

func TestOpenRecordsLateAndUnsent(t *testing.T) {
	p := newPKI(t)
	// Each answer takes 30ms while one request is due every 5ms, and only
	// one may be in flight: sends fall behind, and the window closes on
	// requests never sent.
	srv, _ := exchangeServer(t, p, 30*time.Millisecond)
	rep, err := Run(context.Background(), Config{
		Target: srv.URL, TLS: p.ClientTLS(), Requests: mix()[:1],
		Mode: ModeOpen, Rate: 200, MaxInFlight: 1, Duration: 400 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Offered != 80 || rep.Requests+rep.Unsent != rep.Offered {
		t.Fatalf("sent %d + unsent %d vs offered %d (want 80)", rep.Requests, rep.Unsent, rep.Offered)
	}
	if rep.Late == 0 || rep.Unsent == 0 || rep.Requests > 20 {
		t.Fatalf("late %d unsent %d sent %d: the stall should show", rep.Late, rep.Unsent, rep.Requests)
	}
	// Latency counts from the intended time, so it includes the queueing.
	if rep.Latency.Max < rep.SendLag.Max {
		t.Fatalf("latency max %s below send lag max %s", rep.Latency.Max, rep.SendLag.Max)
	}
}

func TestErrorKinds(t *testing.T) {
	p := newPKI(t)
	srv, _ := exchangeServer(t, p, 0)
	slow, _ := exchangeServer(t, p, 300*time.Millisecond)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()

	noCert := p.ClientTLS()
	noCert.Certificates = nil
	other := newPKI(t)

	for _, tc := range []struct {
		name, target string
		tls          *tls.Config
		timeout      time.Duration
		kind         string
	}{
		{"refused", closed, p.ClientTLS(), 0, ErrConnect},
		{"no-client-cert", srv.URL, noCert, 0, ErrTLS},
		{"unknown-server-ca", srv.URL, other.ClientTLS(), 0, ErrTLS},
		{"timeout", slow.URL, p.ClientTLS(), 50 * time.Millisecond, ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{
				Target: tc.target, TLS: tc.tls, Requests: mix()[:1], Timeout: tc.timeout,
				Duration: 5 * time.Second, MaxRequests: 3,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 3 || rep.Errors[tc.kind] != 3 || rep.Responses != 0 {
				t.Fatalf("requests %d responses %d errors %v, want 3 × %s", rep.Requests, rep.Responses, rep.Errors, tc.kind)
			}
		})
	}
}

func TestInterrupted(t *testing.T) {
	p := newPKI(t)
	srv, _ := exchangeServer(t, p, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	rep, err := Run(ctx, Config{Target: srv.URL, TLS: p.ClientTLS(), Requests: mix()[:1], Duration: time.Hour})
	if err == nil || rep == nil || rep.Responses == 0 || len(rep.Errors) != 0 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

func TestConfigRejected(t *testing.T) {
	p := newPKI(t)
	ok := Config{Target: "https://127.0.0.1:1", TLS: p.ClientTLS(), Requests: mix(), Duration: time.Second}
	for name, mut := range map[string]func(*Config){
		"no duration":   func(c *Config) { c.Duration = 0 },
		"too long":      func(c *Config) { c.Duration = MaxDuration + 1 },
		"no requests":   func(c *Config) { c.Requests = nil },
		"bad mode":      func(c *Config) { c.Mode = "ajar" },
		"open no rate":  func(c *Config) { c.Mode = ModeOpen },
		"relative":      func(c *Config) { c.Target = "127.0.0.1:1" },
		"https no tls":  func(c *Config) { c.TLS = nil },
		"bad path":      func(c *Config) { c.Requests = []Request{{Path: "x"}} },
		"neg weight":    func(c *Config) { c.Requests = []Request{{Path: "/", Weight: -1}} },
		"huge conc":     func(c *Config) { c.Concurrency = MaxConcurrency + 1 },
		"neg max req":   func(c *Config) { c.MaxRequests = -1 },
		"huge weights":  func(c *Config) { c.Requests = []Request{{Path: "/", Weight: maxWeightTotal + 1}} },
		"neg warmup":    func(c *Config) { c.Warmup = -time.Second },
		"neg conns":     func(c *Config) { c.Connections = -1 },
		"rate too high": func(c *Config) { c.Mode, c.Rate = ModeOpen, MaxRate+1 },
	} {
		c := ok
		mut(&c)
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWeightedOrderInterleaves(t *testing.T) {
	g := &generator{cfg: Config{Target: "http://127.0.0.1:1", Requests: []Request{
		{Weight: 2, Path: "/a"}, {Weight: 1, Path: "/b"}, {Path: "/c"},
	}}}
	if err := g.prepare(); err != nil {
		t.Fatal(err)
	}
	got := make([]int, len(g.order))
	copy(got, g.order)
	count := map[int]int{}
	for _, i := range got {
		count[i]++
	}
	if len(got) != 4 || count[0] != 2 || count[1] != 1 || count[2] != 1 || got[0] == got[1] && got[0] == 0 {
		t.Fatalf("order %v", got)
	}
}

func TestProblemReason(t *testing.T) {
	for body, want := range map[string]string{
		`{"reason":"no-integration","status":403}`: "no-integration",
		`{"status":403}`:                   NoReason,
		`{"reason":42}`:                    NoReason,
		`{"reason":""}`:                    NoReason,
		`not json`:                         NoReason,
		`{"reason":"purpose-not-granted"}`: "purpose-not-granted",
	} {
		if got := problemReason([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
	for ct, want := range map[string]bool{
		"application/problem+json":                true,
		"application/problem+json; charset=utf-8": true,
		"application/json":                        true,
		"text/plain":                              false,
		"":                                        false,
	} {
		if isJSON(ct) != want {
			t.Errorf("isJSON(%q) = %v", ct, !want)
		}
	}
}

func TestClassifyWrapped(t *testing.T) {
	var verr error = &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	if k := classify(&net.OpError{Op: "remote error", Err: verr}); k != ErrTLS {
		t.Errorf("verification error: %s", k)
	}
	if k := classify(context.DeadlineExceeded); k != ErrTimeout {
		t.Errorf("deadline: %s", k)
	}
	if k := classify(&net.OpError{Op: "dial", Err: net.UnknownNetworkError("x")}); k != ErrConnect {
		t.Errorf("dial: %s", k)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := &Report{
		Target: "https://x", Mode: ModeOpen, Protocol: "HTTP/2", Rate: 100, Duration: time.Second,
		Requests: 10, Responses: 9, Throughput: 9,
		Latency: Latency{Count: 9, P50: 1500 * time.Microsecond, P99: 7 * time.Millisecond, Max: 2 * time.Second},
		Status:  map[int]int64{200: 8, 403: 1}, Reasons: map[string]int64{"no-integration": 1},
		Errors: map[string]int64{ErrTimeout: 1}, SendLag: &Latency{Max: time.Millisecond},
	}
	b, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"p50Ms": 1.5`) || !strings.Contains(string(b), `"403": 1`) {
		t.Fatalf("json:\n%s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency != rep.Latency || back.Status[403] != 1 || back.Errors[ErrTimeout] != 1 || back.SendLag.Max != time.Millisecond {
		t.Fatalf("round trip: %+v", back)
	}
}
