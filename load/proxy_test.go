package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// seen is what the upstream received.
type seen struct {
	Method, Path, RawPath, Query, Body, PeerCN string
	Header                                     http.Header
}

func (s seen) key() [6]string {
	return [6]string{s.Method, s.Path, s.RawPath, s.Query, s.Body, s.PeerCN}
}

// startProxy starts an upstream recording what it receives (mTLS, the
// proxy's certificate required) and a bare proxy in front of it.
func startProxy(t *testing.T, p *EphemeralPKI, upstreamPath string) (proxyURL string, got chan seen) {
	t.Helper()
	got = make(chan seen, 16)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Body: string(b), Header: r.Header}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			s.PeerCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		select {
		case got <- s:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	up.TLS = p.ServerTLS()
	up.StartTLS()
	t.Cleanup(up.Close)

	proxyCert, err := p.Issue("bare proxy", x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	upTLS := p.ClientTLS()
	upTLS.Certificates = []tls.Certificate{proxyCert}
	target, _ := url.Parse(up.URL + upstreamPath)
	srv, ln, err := BareProxy("127.0.0.1:0", target, p.ServerTLS(), upTLS)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), got
}

func TestBareProxyForwards(t *testing.T) {
	p := newPKI(t)
	base, got := startProxy(t, p, "/api")

	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: p.ClientTLS(), ForceAttemptHTTP2: h2}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, _ := http.NewRequest("POST", base+"/v1/exchange/population/persons/85073003328/a%2Fb?fields=name&q=a%20b", strings.NewReader(`{"x":1}`))
		req.Header.Set("Crossroads-Purpose", "unemployment-benefit")
		req.Header.Set("Crossroads-User", "u-17")
		req.Header.Set("Crossroads-Subject", "85073003328")
		req.Header.Set("Crossroads-Correlation-Id", "c-1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != `{"ok":true}` || (resp.ProtoMajor == 2) != h2 {
			t.Fatalf("h2=%v: %s %s %q", h2, resp.Proto, resp.Status, body)
		}
		s := <-got
		want := seen{Method: "POST", Path: "/api/persons/85073003328/a/b", RawPath: "/api/persons/85073003328/a%2Fb",
			Query: "fields=name&q=a%20b", Body: `{"x":1}`, PeerCN: "bare proxy"}
		hdr := s.Header
		if s.key() != want.key() {
			t.Errorf("h2=%v: upstream saw %+v\nwant %+v", h2, s, want)
		}
		for k, v := range map[string]string{"Crossroads-Purpose": "unemployment-benefit", "Crossroads-User": "u-17",
			"Crossroads-Subject": "85073003328", "Crossroads-Correlation-Id": "c-1"} {
			if hdr.Get(k) != v {
				t.Errorf("h2=%v: header %s = %q, want %q", h2, k, hdr.Get(k), v)
			}
		}
	}
}

func TestBareProxyPaths(t *testing.T) {
	p := newPKI(t)
	base, got := startProxy(t, p, "")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: p.ClientTLS()}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for path, want := range map[string]string{
		"/v1/exchange/svc":       "/",
		"/v1/exchange/svc/":      "/",
		"/v1/exchange/svc/x/y":   "/x/y",
		"/v1/exchange//x":        "",
		"/v1/other/svc/x":        "",
		"/metrics":               "",
		"/v1/exchange/svc/x?a=b": "/x",
	} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want == "" {
			if resp.StatusCode != 404 {
				t.Errorf("%s: %s, want 404", path, resp.Status)
			}
			continue
		}
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", path, resp.Status)
			continue
		}
		if s := <-got; s.Path != want {
			t.Errorf("%s reached %s, want %s", path, s.Path, want)
		}
	}
}

func TestBareProxyRefusesClientsWithoutValidCert(t *testing.T) {
	p := newPKI(t)
	base, _ := startProxy(t, p, "")
	other := newPKI(t)

	noCert := p.ClientTLS()
	noCert.Certificates = nil
	foreign := p.ClientTLS()
	foreign.Certificates = []tls.Certificate{other.Client} // signed by another CA
	oldTLS := p.ClientTLS()
	oldTLS.MinVersion, oldTLS.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	for name, cfg := range map[string]*tls.Config{"no cert": noCert, "foreign CA": foreign, "TLS 1.2": oldTLS} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		resp, err := c.Get(base + "/v1/exchange/svc/x")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %s, want refusal", name, resp.Status)
			continue
		}
		if k := classify(err); k != ErrTLS {
			t.Errorf("%s: error %v classified %s", name, err, k)
		}
	}
}

func TestBareProxyBadArguments(t *testing.T) {
	p := newPKI(t)
	up, _ := url.Parse("https://127.0.0.1:1")
	noCAs := p.ServerTLS()
	noCAs.ClientCAs = nil
	for name, args := range map[string]struct {
		up       *url.URL
		srv, cli *tls.Config
	}{
		"nil upstream":    {nil, p.ServerTLS(), p.ClientTLS()},
		"relative":        {&url.URL{Path: "/x"}, p.ServerTLS(), p.ClientTLS()},
		"no server cert":  {up, &tls.Config{ClientCAs: p.Pool}, p.ClientTLS()},
		"no client CAs":   {up, noCAs, p.ClientTLS()},
		"no upstream tls": {up, p.ServerTLS(), nil},
	} {
		if srv, ln, err := BareProxy("127.0.0.1:0", args.up, args.srv, args.cli); err == nil {
			ln.Close()
			_ = srv.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunThroughBareProxy(t *testing.T) {
	p := newPKI(t)
	base, _ := startProxy(t, p, "")
	rep, err := Run(context.Background(), Config{
		Target: base, TLS: p.ClientTLS(), Concurrency: 4, Duration: 5 * time.Second, MaxRequests: 100,
		Requests: []Request{{Path: "/v1/exchange/svc/persons/1", Header: testHeader(), Expect: 200}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status[200] != 100 || rep.Unexpected != 0 {
		b, _ := json.Marshal(rep)
		t.Fatalf("%s", b)
	}
}

func TestSelfBench(t *testing.T) {
	rep, err := SelfBench(context.Background(), Config{Concurrency: 2, Duration: 5 * time.Second, MaxRequests: 50})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if rep.Status[200] != 50 {
		t.Fatalf("status %v", rep.Status)
	}
}

// BenchmarkGenerator measures the generator and a trivial mTLS server
// sharing the machine: ns/op is the cost of one request-response.
func BenchmarkGenerator(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		name := "HTTP1"
		if h2 {
			name = "HTTP2"
		}
		b.Run(name, func(b *testing.B) {
			rep, err := SelfBench(context.Background(), Config{
				Concurrency: 32, HTTP2: h2, Duration: time.Minute, MaxRequests: int64(b.N), Warmup: 0,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rep.Throughput, "req/s")
		})
	}
}
