package provider_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads/hostile"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/provider"
)

type fixture struct {
	roots  *x509.CertPool
	hub    *pki.Signer
	forger *pki.Signer // a participant of the network, not the hub
	alien  *pki.Signer // a "hub" of another CA
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
	fixDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixOnce.Do(func() {
		signer := func(ca *pki.CA, participant string) *pki.Signer {
			certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{Participant: participant})
			if err != nil {
				fixErr = err
				return nil
			}
			c, err := pki.LoadKeyPair(certPEM, keyPEM)
			if err != nil {
				fixErr = err
				return nil
			}
			s, err := pki.NewSigner(c)
			if err != nil {
				fixErr = err
			}
			return s
		}
		dir, err := os.MkdirTemp("", "crossroads-provider-test-")
		fixDir = dir
		if err != nil {
			fixErr = err
			return
		}
		ca, err := pki.InitCA(dir+"/a", []byte("provider test passphrase"), "Provider Test CA")
		if err != nil {
			fixErr = err
			return
		}
		fix = fixture{roots: ca.Pool(), hub: signer(ca, "hub"), forger: signer(ca, "ocmw-gent")}
		if fixErr != nil {
			return
		}
		// A look-alike "hub" certificate of another CA of the same name.
		alien, err := hostile.OtherCA(fix.hub.Certificate())
		if err != nil {
			fixErr = err
			return
		}
		fix.alien, fixErr = pki.NewSigner(alien)
	})
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return &fix
}

// signed builds a request as the hub sends it, signed by s at issued.
func signed(tb testing.TB, s *pki.Signer, method, target string, body []byte, issued time.Time) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if len(body) == 0 {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Header.Set(pki.HeaderExchangeID, uuid.Must(uuid.NewV7()).String())
	r.Header.Set(pki.HeaderRequester, "ocmw-gent")
	r.Header.Set(pki.HeaderUser, "alice@ocmw-gent")
	r.Header.Set(pki.HeaderPurpose, "social-aid")
	r.Header.Set(pki.HeaderSubject, "85073003328")
	r.Header.Set(pki.HeaderAuthorisation, "ocmw-social-aid")
	if err := pki.SignRequest(s, r, body, pki.RequestClaims{
		Service: "person-identity", Operation: "read", SubjectKind: "person", IssuedAt: issued,
	}); err != nil {
		tb.Fatal(err)
	}
	return r
}

func verifier(now func() time.Time) *provider.Verifier {
	return provider.New(provider.Config{Roots: fix.roots, Now: now, Logger: slog.New(slog.DiscardHandler)})
}

type seen struct {
	req  *provider.Request
	body []byte
}

func wrap(v *provider.Verifier) (http.Handler, *atomic.Pointer[seen]) {
	var got atomic.Pointer[seen]
	return v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, ok := provider.FromContext(r.Context())
		if !ok {
			http.Error(w, "no request in context", 500)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(&seen{req: req, body: b})
		w.WriteHeader(http.StatusNoContent)
	})), &got
}

func serve(h http.Handler, r *http.Request) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var p struct {
		Reason string `json:"reason"`
	}
	if w.Code >= 400 {
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			return w.Code, "not a problem: " + ct
		}
		if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			return w.Code, "401 without WWW-Authenticate"
		}
		json.Unmarshal(w.Body.Bytes(), &p)
	}
	return w.Code, p.Reason
}

// TestValidPasses: a request as the hub sends it reaches the handler with
// the signed facts in its context and its body intact.
func TestValidPasses(t *testing.T) {
	f := newFixture(t)
	h, got := wrap(verifier(nil))
	body := []byte(`{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`)
	r := signed(t, f.hub, http.MethodPut, "/persons/85073003328/address?lang=nl", body, time.Now())
	if code, reason := serve(h, r); code != http.StatusNoContent {
		t.Fatalf("status %d %s", code, reason)
	}
	s := got.Load()
	if s == nil {
		t.Fatal("handler not reached")
	}
	want := provider.Request{
		ExchangeID: r.Header.Get(pki.HeaderExchangeID), Requester: "ocmw-gent", User: "alice@ocmw-gent", Purpose: "social-aid",
		Authorisation: "ocmw-social-aid", Service: "person-identity", Operation: "read", SubjectKind: "person", Subject: "85073003328",
		Method: http.MethodPut, Target: "/persons/85073003328/address?lang=nl",
	}
	g := *s.req
	g.IssuedAt, g.Body = time.Time{}, nil
	if !reflect.DeepEqual(g, want) {
		t.Errorf("request facts\n got %+v\nwant %+v", g, want)
	}
	if !bytes.Equal(s.body, body) || !bytes.Equal(s.req.Body, body) {
		t.Errorf("body %q / %q, want %q", s.body, s.req.Body, body)
	}
}

// TestRefused: forged, replayed, stale and tampered requests never reach
// the handler; each gets its documented reason.
func TestRefused(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	get := func(s *pki.Signer, issued time.Time) *http.Request {
		return signed(t, s, http.MethodGet, "/persons/85073003328", nil, issued)
	}
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"no signature", func() *http.Request { r := get(f.hub, now); r.Header.Del(pki.HeaderHubSignature); return r }, 401, "invalid-hub-signature"},
		{"garbage signature", func() *http.Request {
			r := get(f.hub, now)
			r.Header.Set(pki.HeaderHubSignature, "eyJhbGciOiJub25lIn0.e30.")
			return r
		}, 401, "invalid-hub-signature"},
		{"two signatures", func() *http.Request {
			r := get(f.hub, now)
			r.Header.Add(pki.HeaderHubSignature, r.Header.Get(pki.HeaderHubSignature))
			return r
		}, 401, "invalid-hub-signature"},
		{"forged: signed by a participant", func() *http.Request { return get(f.forger, now) }, 401, "invalid-hub-signature"},
		{"forged: a hub of another CA", func() *http.Request { return get(f.alien, now) }, 401, "invalid-hub-signature"},
		{"stale", func() *http.Request { return get(f.hub, now.Add(-2*time.Minute)) }, 401, "stale-hub-signature"},
		{"from the future", func() *http.Request { return get(f.hub, now.Add(2*time.Minute)) }, 401, "stale-hub-signature"},
		{"tampered header", func() *http.Request { r := get(f.hub, now); r.Header.Set(pki.HeaderPurpose, "marketing"); return r }, 401, "invalid-hub-signature"},
		{"tampered subject", func() *http.Request { r := get(f.hub, now); r.Header.Set(pki.HeaderSubject, "85073003427"); return r }, 401, "invalid-hub-signature"},
		{"header removed", func() *http.Request { r := get(f.hub, now); r.Header.Del(pki.HeaderUser); return r }, 401, "invalid-hub-signature"},
		{"header repeated", func() *http.Request { r := get(f.hub, now); r.Header.Add(pki.HeaderRequester, "ocmw-gent"); return r }, 401, "invalid-hub-signature"},
		{"tampered path", func() *http.Request {
			r := get(f.hub, now)
			r.URL.Path, r.URL.RawPath = "/persons/85073003427", ""
			return r
		}, 401, "invalid-hub-signature"},
		{"query added", func() *http.Request { r := get(f.hub, now); r.URL.RawQuery = "all=1"; return r }, 401, "invalid-hub-signature"},
		{"method changed", func() *http.Request { r := get(f.hub, now); r.Method = http.MethodDelete; return r }, 401, "invalid-hub-signature"},
		{"tampered body", func() *http.Request {
			r := signed(t, f.hub, http.MethodPut, "/persons/85073003328/address", []byte(`{"city":"Gent"}`), now)
			r.Body = io.NopCloser(strings.NewReader(`{"city":"Brugge"}`))
			r.ContentLength = -1
			return r
		}, 401, "invalid-hub-signature"},
		{"body too large (declared)", func() *http.Request {
			r := get(f.hub, now)
			r.ContentLength = provider.DefaultMaxBody + 1
			return r
		}, 413, "body-too-large"},
		{"body too large (chunked)", func() *http.Request {
			r := get(f.hub, now)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(make([]byte, provider.DefaultMaxBody+1))), -1
			return r
		}, 413, "body-too-large"},
		{"unreadable body", func() *http.Request {
			r := get(f.hub, now)
			r.Body, r.ContentLength = io.NopCloser(errReader{}), -1
			return r
		}, 400, "invalid-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, got := wrap(verifier(func() time.Time { return now }))
			code, reason := serve(h, tc.req())
			if code != tc.status || reason != tc.reason {
				t.Errorf("got %d %s, want %d %s", code, reason, tc.status, tc.reason)
			}
			if got.Load() != nil {
				t.Error("the handler was reached")
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("broken") }

// TestReplayRefused: the same signed request is served once; a replay
// within the window is refused, also when sent concurrently.
func TestReplayRefused(t *testing.T) {
	f := newFixture(t)
	h, _ := wrap(verifier(nil))
	r := signed(t, f.hub, http.MethodGet, "/persons/85073003328", nil, time.Now())
	const n = 32
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, reason := serve(h, r.Clone(context.Background()))
			switch {
			case code == http.StatusNoContent:
				ok.Add(1)
			case code == 401 && reason == "replayed-request":
				replayed.Add(1)
			default:
				t.Errorf("unexpected %d %s", code, reason)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != n-1 {
		t.Errorf("%d served, %d refused as replays; want 1 and %d", ok.Load(), replayed.Load(), n-1)
	}
}

// TestReplayCacheBounded: under more fresh exchanges than the cache holds,
// memory stays bounded, the oldest seconds are refused as stale rather
// than risked, and no replay is ever served.
func TestReplayCacheBounded(t *testing.T) {
	f := newFixture(t)
	base := time.Now().Truncate(time.Second)
	clock := base
	v := provider.New(provider.Config{Roots: f.roots, MaxExchanges: 1024, Now: func() time.Time { return clock }, Logger: slog.New(slog.DiscardHandler)})
	h, _ := wrap(v)
	var reqs []*http.Request
	for i := range 1600 {
		// 40 seconds of traffic, signed at the moment it is sent.
		clock = base.Add(time.Duration(i) * 25 * time.Millisecond)
		r := signed(t, f.hub, http.MethodGet, "/persons/85073003328", nil, clock)
		reqs = append(reqs, r)
		if code, reason := serve(h, r.Clone(context.Background())); code != http.StatusNoContent {
			t.Fatalf("fresh request %d refused: %d %s", i, code, reason)
		}
	}
	if n := provider.Remembered(v); n > 1024 {
		t.Errorf("%d exchange ids remembered, bound 1024", n)
	}
	stale := 0
	for i, r := range reqs {
		code, reason := serve(h, r.Clone(context.Background()))
		switch {
		case code == 401 && reason == "replayed-request":
		case code == 401 && reason == "stale-hub-signature":
			stale++
		default:
			t.Fatalf("replay %d: %d %s", i, code, reason)
		}
	}
	if stale == 0 {
		t.Error("no early request was refused as stale: the cache cannot have been bounded")
	}
	// The last second's requests are still known as replays, not stale.
	if code, reason := serve(h, reqs[len(reqs)-1].Clone(context.Background())); reason != "replayed-request" {
		t.Errorf("latest replay: %d %s", code, reason)
	}
}

// TestReplayCacheExpires: ids are forgotten once their signatures are
// stale, so the cache does not fill under steady traffic.
func TestReplayCacheExpires(t *testing.T) {
	f := newFixture(t)
	clock := time.Now()
	v := provider.New(provider.Config{Roots: f.roots, Now: func() time.Time { return clock }, Logger: slog.New(slog.DiscardHandler)})
	h, _ := wrap(v)
	for range 50 {
		if code, reason := serve(h, signed(t, f.hub, http.MethodGet, "/persons/85073003328", nil, clock)); code != 204 {
			t.Fatalf("%d %s", code, reason)
		}
	}
	clock = clock.Add(pki.DefaultMaxSkew + 3*time.Second)
	if code, reason := serve(h, signed(t, f.hub, http.MethodGet, "/persons/85073003328", nil, clock)); code != 204 {
		t.Fatalf("%d %s", code, reason)
	}
	if n := provider.Remembered(v); n != 1 {
		t.Errorf("%d ids remembered after the window passed, want 1", n)
	}
}

// TestOverTLS: the middleware behind a real mutual-TLS server, as the demo
// sources run it.
func TestOverTLS(t *testing.T) {
	f := newFixture(t)
	h, got := wrap(verifier(nil))
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/persons/85073003328?lang=nl", nil)
	req.Header.Set(pki.HeaderExchangeID, uuid.NewString())
	req.Header.Set(pki.HeaderRequester, "ocmw-gent")
	req.Header.Set(pki.HeaderUser, "alice@ocmw-gent")
	req.Header.Set(pki.HeaderPurpose, "social-aid")
	req.Header.Set(pki.HeaderAuthorisation, "ocmw-social-aid")
	if err := pki.SignRequest(f.hub, req, nil, pki.RequestClaims{Service: "reference"}); err != nil {
		t.Fatal(err)
	}
	cl := srv.Client()
	cl.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS13
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if s := got.Load(); s == nil || s.req.Subject != "" || s.req.SubjectKind != "" || s.req.Target != "/persons/85073003328?lang=nl" {
		t.Errorf("facts %+v", s)
	}
}

// FuzzVerify: whatever the signature header, path and body, a request that
// the hub did not sign never passes, and nothing panics.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := signed(f, fx.hub, http.MethodGet, "/persons/85073003328", nil, time.Now())
	tok := good.Header.Get(pki.HeaderHubSignature)
	f.Add(tok, "/persons/85073003328", "")
	f.Add(tok[:len(tok)-2]+"AA", "/persons/85073003328", "")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "/x", "body")
	f.Add("a.b.c", "/persons/85073003328?x=1", "")
	v := provider.New(provider.Config{Roots: fx.roots, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, sig, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") {
			return
		}
		r := good.Clone(context.Background())
		r.Header.Set(pki.HeaderHubSignature, sig)
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = path, "", ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			r.URL.Path, r.URL.RawQuery = path[:i], path[i+1:]
		}
		r.Body = io.NopCloser(strings.NewReader(body))
		req, reason, _ := v.Verify(r)
		if reason == "" && (sig != tok || r.URL.RequestURI() != "/persons/85073003328" || body != "") {
			t.Fatalf("an unsigned variant passed: %+v", req)
		}
	})
}

// BenchmarkMiddleware measures the verification of distinct, validly
// signed hub requests (signature, claims, replay cache) and the handoff.
func BenchmarkMiddleware(b *testing.B) {
	f := newFixture(b)
	h, _ := wrap(verifier(nil))
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = signed(b, f.hub, http.MethodGet, "/persons/85073003328", nil, time.Now())
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, reqs[next.Add(1)-1])
			if w.Code != http.StatusNoContent {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
