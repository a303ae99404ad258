package upstream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/upstream"
)

const (
	pop = "population-register"
	emp = "employment-register"
)

type network struct {
	ca   *pki.CA
	hub  tls.Certificate
	revs *pki.Revocations
}

func newNetwork(t testing.TB) *network {
	t.Helper()
	ca, err := pki.InitCA(t.TempDir(), []byte("upstream test passphrase"), "Upstream Test CA")
	if err != nil {
		t.Fatal(err)
	}
	return &network{ca: ca, hub: issue(t, ca, pki.IssueRequest{Participant: "hub"}), revs: pki.NewRevocations()}
}

func issue(t testing.TB, ca *pki.CA, req pki.IssueRequest) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, _, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serverCert is a provider's server certificate for 127.0.0.1.
func serverCert(t testing.TB, ca *pki.CA, participant string, validity time.Duration) tls.Certificate {
	return issue(t, ca, pki.IssueRequest{Participant: participant, Server: true, Validity: validity,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// provider is a TLS server over loopback that counts requests and
// connections.
type provider struct {
	url      string
	requests atomic.Int64
	mu       sync.Mutex
	open     map[net.Conn]bool
	opened   int
}

func (p *provider) openConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

func serve(t testing.TB, n *network, cert tls.Certificate) *provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{url: "https://" + ln.Addr().String(), open: map[net.Conn]bool{}}
	cfg := pki.ServerTLSConfig(n.ca.Pool(), cert, nil)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.requests.Add(1)
			io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				p.open[c] = true
				p.opened++
			case http.StateClosed, http.StateHijacked:
				delete(p.open, c)
			}
		},
	}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return p
}

func newTransport(n *network, reg prometheus.Registerer, now func() time.Time) *upstream.Transport {
	return upstream.New(upstream.Config{
		Roots: n.ca.Pool(), Certificate: n.hub, Revocations: n.revs, Registerer: reg, Now: now,
		Logger: slog.New(slog.DiscardHandler),
	})
}

// get calls url as the exchange pipeline does, for provider (""): none).
func get(t testing.TB, tr http.RoundTripper, url, provider string) (string, error) {
	t.Helper()
	ctx := context.Background()
	if provider != "" {
		ctx = crossroads.WithProvider(ctx, provider)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func refusals(tr prometheus.Gatherer, provider, reason string) float64 {
	mfs, _ := tr.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "crossroads_provider_certificate_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRightProviderAccepted: the registered provider's certificate passes,
// and keep-alive reuses the connection.
func TestRightProviderAccepted(t *testing.T) {
	n := newNetwork(t)
	p := serve(t, n, serverCert(t, n.ca, pop, 0))
	reg := prometheus.NewRegistry()
	tr := newTransport(n, reg, nil)
	for range 5 {
		if body, err := get(t, tr, p.url, pop); err != nil || body != "ok" {
			t.Fatalf("get: %q, %v", body, err)
		}
	}
	p.mu.Lock()
	opened := p.opened
	p.mu.Unlock()
	if opened != 1 || tr.Len() != 1 {
		t.Errorf("%d connections opened, %d tracked; want 1 kept alive", opened, tr.Len())
	}
	for _, reason := range []string{upstream.RefusedWrongParticipant, upstream.RefusedRevoked, upstream.RefusedExpired, upstream.RefusedUntrusted} {
		if got := refusals(reg, pop, reason); got != 0 {
			t.Errorf("refusals{%s} = %v", reason, got)
		}
	}
}

// TestRefused: each server certificate that is not the registered
// provider's, valid and unrevoked, is refused at the handshake: the
// provider never sees a request, and the refusal is counted by reason.
func TestRefused(t *testing.T) {
	n := newNetwork(t)
	foreign, err := pki.InitCA(t.TempDir(), []byte("another passphrase!!"), "Upstream Test CA")
	if err != nil {
		t.Fatal(err)
	}
	revoked := serverCert(t, n.ca, pop, 0)
	n.revs.Add(pki.SerialHex(revoked.Leaf))
	clientOnly := issue(t, n.ca, pki.IssueRequest{Participant: pop, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	wrongHost := issue(t, n.ca, pki.IssueRequest{Participant: pop, Server: true, DNSNames: []string{"pop.example"}})
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		reason string
		err    error
	}{
		{"another participant's certificate", serverCert(t, n.ca, emp, 0), upstream.RefusedWrongParticipant, upstream.ErrWrongParticipant},
		{"revoked certificate", revoked, upstream.RefusedRevoked, pki.ErrRevoked},
		{"certificate of a foreign CA", serverCert(t, foreign, pop, 0), upstream.RefusedUntrusted, nil},
		{"certificate without serverAuth", clientOnly, upstream.RefusedInvalid, nil},
		{"certificate for another host", wrongHost, upstream.RefusedHostname, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := serve(t, n, tc.cert)
			reg := prometheus.NewRegistry()
			tr := newTransport(n, reg, nil)
			_, err := get(t, tr, p.url, pop)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
			if p.requests.Load() != 0 {
				t.Error("the impostor received a request")
			}
			if got := refusals(reg, pop, tc.reason); got != 1 {
				t.Errorf("refusals{%s} = %v, want 1", tc.reason, got)
			}
			if tr.Len() != 0 {
				t.Errorf("%d connections tracked after a refusal", tr.Len())
			}
		})
	}
}

// TestExpiredRefused: a certificate past its validity is refused (the
// transport's clock is the verification time).
func TestExpiredRefused(t *testing.T) {
	n := newNetwork(t)
	cert := serverCert(t, n.ca, pop, time.Hour)
	p := serve(t, n, cert)
	reg := prometheus.NewRegistry()
	later := func() time.Time { return cert.Leaf.NotAfter.Add(time.Minute) }
	tr := newTransport(n, reg, later)
	if _, err := get(t, tr, p.url, pop); err == nil {
		t.Fatal("expired certificate accepted")
	}
	if got := refusals(reg, pop, upstream.RefusedExpired); got != 1 {
		t.Errorf("refusals{expired} = %v, want 1", got)
	}
	if p.requests.Load() != 0 {
		t.Error("the provider received a request")
	}
}

// TestExpiryClosesOpenConnection: a kept-alive connection does not outlive
// the provider's certificate; the next call is refused.
func TestExpiryClosesOpenConnection(t *testing.T) {
	n := newNetwork(t)
	cert := serverCert(t, n.ca, pop, 2*time.Second)
	p := serve(t, n, cert)
	reg := prometheus.NewRegistry()
	tr := newTransport(n, reg, nil)
	if _, err := get(t, tr, p.url, pop); err != nil {
		t.Fatal(err)
	}
	deadline := cert.Leaf.NotAfter.Add(3 * time.Second)
	for p.openConns() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.openConns() != 0 || tr.Len() != 0 {
		t.Fatalf("%d connections still open at the provider, %d tracked, after expiry", p.openConns(), tr.Len())
	}
	if _, err := get(t, tr, p.url, pop); err == nil {
		t.Fatal("expired certificate accepted on a new connection")
	}
	if got := refusals(reg, pop, upstream.RefusedExpired); got != 1 {
		t.Errorf("refusals{expired} = %v, want 1", got)
	}
}

// TestRevokedWhileOpen: revoking the provider's certificate closes the
// kept-alive connection to it; the next call (even a resumed TLS session)
// is refused.
func TestRevokedWhileOpen(t *testing.T) {
	n := newNetwork(t)
	cert := serverCert(t, n.ca, pop, 0)
	p := serve(t, n, cert)
	reg := prometheus.NewRegistry()
	tr := newTransport(n, reg, nil)
	if _, err := get(t, tr, p.url, pop); err != nil {
		t.Fatal(err)
	}
	if p.openConns() != 1 {
		t.Fatalf("%d connections open, want 1 kept alive", p.openConns())
	}
	serial := pki.SerialHex(cert.Leaf)
	n.revs.Add(serial)
	if got := tr.CloseSerials(strings.ToUpper(serial)); got != 1 {
		t.Fatalf("CloseSerials closed %d connections, want 1", got)
	}
	for i := 0; i < 100 && p.openConns() > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if p.openConns() != 0 {
		t.Fatal("the provider's connection is still open after revocation")
	}
	if _, err := get(t, tr, p.url, pop); !errors.Is(err, pki.ErrRevoked) {
		t.Fatalf("after revocation: %v, want refused as revoked", err)
	}
	if got := refusals(reg, pop, upstream.RefusedRevoked); got != 1 {
		t.Errorf("refusals{revoked} = %v, want 1", got)
	}
	if p.requests.Load() != 1 {
		t.Errorf("%d requests reached the provider, want 1", p.requests.Load())
	}
}

// TestPoolsPerProvider: a connection verified for one provider is never
// used for a request that must reach another, even at the same address.
func TestPoolsPerProvider(t *testing.T) {
	n := newNetwork(t)
	p := serve(t, n, serverCert(t, n.ca, pop, 0))
	tr := newTransport(n, nil, nil)
	if _, err := get(t, tr, p.url, pop); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, tr, p.url, emp); !errors.Is(err, upstream.ErrWrongParticipant) {
		t.Fatalf("request for %s over %s's endpoint: %v, want refused", emp, pop, err)
	}
	if p.requests.Load() != 1 {
		t.Errorf("%d requests reached the provider, want 1", p.requests.Load())
	}
}

// TestNoProviderRefused: a request whose context names no provider is
// refused before any connection; so is a plain-HTTP URL.
func TestNoProviderRefused(t *testing.T) {
	n := newNetwork(t)
	p := serve(t, n, serverCert(t, n.ca, pop, 0))
	tr := newTransport(n, nil, nil)
	if _, err := get(t, tr, p.url, ""); !errors.Is(err, upstream.ErrNoProvider) {
		t.Fatalf("without a provider: %v", err)
	}
	if _, err := get(t, tr, "http"+strings.TrimPrefix(p.url, "https"), pop); !errors.Is(err, upstream.ErrNotHTTPS) {
		t.Fatalf("plain http: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opened != 0 {
		t.Errorf("%d connections opened", p.opened)
	}
}

// TestTLS13Only: a provider that offers only TLS 1.2 is not reached.
func TestTLS13Only(t *testing.T) {
	n := newNetwork(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert(t, n.ca, pop, 0)}}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, 0)}
	go srv.Serve(tls.NewListener(ln, cfg))
	defer srv.Close()
	if _, err := get(t, newTransport(n, nil, nil), "https://"+ln.Addr().String(), pop); err == nil {
		t.Fatal("TLS 1.2 provider reached")
	}
}

// BenchmarkRoundTrip measures a kept-alive call through the transport.
func BenchmarkRoundTrip(b *testing.B) {
	n := newNetwork(b)
	p := serve(b, n, serverCert(b, n.ca, pop, 0))
	tr := newTransport(n, nil, nil)
	ctx := crossroads.WithProvider(context.Background(), pop)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/x", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkRoundTripPlain is the baseline: the hub's former transport (a
// shared http.Transport without provider checks) to the same server.
func BenchmarkRoundTripPlain(b *testing.B) {
	n := newNetwork(b)
	p := serve(b, n, serverCert(b, n.ca, pop, 0))
	tr := &http.Transport{TLSClientConfig: pki.ClientTLSConfig(n.ca.Pool(), n.hub), MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	defer tr.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, p.url+"/x", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
