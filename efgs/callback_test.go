package efgs_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/efgs"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f[host], nil
}

// callbackServer is a national backend's callback endpoint over TLS with a
// certificate registered as the country's CALLBACK certificate; it
// records the calls and the client certificate that made them.
type callbackServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []url.Values
	clients []string
	fail    bool
}

func newCallbackServer(t *testing.T, e *env, code string) *callbackServer {
	cs := &callbackServer{}
	cert := newCert(t, rsaKey(), "callback "+code, code, "127.0.0.1")
	cs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		cs.calls = append(cs.calls, r.URL.Query())
		if len(r.TLS.PeerCertificates) > 0 {
			cs.clients = append(cs.clients, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		if cs.fail {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	cs.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: rsaKey()}}, ClientAuth: tls.RequireAnyClientCert}
	cs.srv.StartTLS()
	t.Cleanup(cs.srv.Close)
	if err := e.store.PutCertificate(t.Context(), crossroads.EFGSCertificate{Thumbprint: thumb(cert), Country: code, Type: crossroads.EFGSCertCallback,
		PEM: pemOf(cert), Host: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	return cs
}

func hubClient(t *testing.T) *http.Client {
	cert := newCert(t, rsaKey(), "hub", "BE")
	tc := &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: rsaKey(), Leaf: cert}
	return efgs.NewCallbackClient(func() *tls.Certificate { return tc }, 0)
}

func TestCallbacks(t *testing.T) {
	e := newEnv(t, func(c *efgs.Config) {
		c.AllowPrivateCallbacks = true
		c.CallbackClient = hubClient(t)
	})
	cs := newCallbackServer(t, e, "FR")
	put := func(code, id, u string) int {
		return e.req(code, "PUT", "/diagnosiskeys/callback/"+id+"?url="+url.QueryEscape(u), nil, nil).Code
	}
	if c := put("FR", "main", cs.srv.URL+"/cb"); c != http.StatusOK {
		t.Fatalf("PUT callback: %d", c)
	}
	for name, u := range map[string]string{
		"http":                    strings.Replace(cs.srv.URL, "https", "http", 1),
		"query":                   cs.srv.URL + "/cb?x=1",
		"no CALLBACK certificate": "https://cb.fr.example/cb",
		"another country's host":  cs.srv.URL, // for DE: its certificate is FR's
	} {
		code := "FR"
		if name == "another country's host" {
			code = "DE"
		}
		if c := put(code, "x", u); c != http.StatusBadRequest {
			t.Errorf("%s: %d", name, c)
		}
	}
	if c := put("FR", "bad%21id", cs.srv.URL); c != http.StatusBadRequest {
		t.Errorf("bad id: %d", c)
	}
	w := e.req("FR", "GET", "/diagnosiskeys/callback", nil, nil)
	status(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), `"callbackId":"main"`) || !strings.Contains(w.Body.String(), `"url":"`+cs.srv.URL+`/cb"`) {
		t.Errorf("GET callback: %s", w.Body)
	}
	// An upload is announced to the subscription: GET ?batchTag&date, with
	// the hub's client certificate.
	status(t, e.upload("DE", "a", e.keys("DE", 2)), http.StatusCreated)
	if n, err := e.g.DeliverDue(t.Context()); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	tag := strings.ReplaceAll(e.today(), "-", "") + "-1"
	if len(cs.calls) != 1 || cs.calls[0].Get("batchTag") != tag || cs.calls[0].Get("date") != e.today() || cs.clients[0] != "hub" {
		t.Fatalf("calls %v by %v", cs.calls, cs.clients)
	}
	if n, _ := e.g.DeliverDue(t.Context()); n != 0 {
		t.Errorf("delivered twice")
	}
	// Five consecutive failures remove the subscription (retried each time).
	cs.fail = true
	status(t, e.upload("DE", "b", e.keys("DE", 3)[2:]), http.StatusCreated)
	for i := 0; i < efgs.DefaultMaxFailures; i++ {
		if n, err := e.g.DeliverDue(t.Context()); err != nil || n != 1 {
			t.Fatalf("attempt %d: %d, %v", i, n, err)
		}
		e.now = e.now.Add(efgs.DefaultRetryWait)
	}
	if subs, _ := e.store.Callbacks(t.Context(), "FR"); len(subs) != 0 {
		t.Errorf("subscription kept after %d failures", efgs.DefaultMaxFailures)
	}
	var sent, failed, removed int
	for _, a := range e.audit.actions() {
		switch strings.SplitN(a, ":", 2)[0] {
		case crossroads.FederationCallbackSent:
			sent++
		case crossroads.FederationCallbackFailed:
			failed++
		case crossroads.FederationCallbackDrop:
			removed++
		}
	}
	// Each of the 6 attempts is recorded before it is sent; 4 failures, 1
	// removal follow.
	if sent != 6 || failed != 4 || removed != 1 {
		t.Errorf("callback records: %d sent, %d failed, %d removed", sent, failed, removed)
	}
	// DELETE.
	if c := put("FR", "again", cs.srv.URL); c != http.StatusOK {
		t.Fatal(c)
	}
	status(t, e.req("FR", "DELETE", "/diagnosiskeys/callback/again", nil, nil), http.StatusOK)
	status(t, e.req("FR", "DELETE", "/diagnosiskeys/callback/again", nil, nil), http.StatusNotFound)
}

// A callback server whose certificate is not the registered CALLBACK
// certificate is not called; private addresses are refused unless allowed.
func TestCallbackTrust(t *testing.T) {
	e := newEnv(t, func(c *efgs.Config) {
		c.AllowPrivateCallbacks = true
		c.CallbackClient = hubClient(t)
	})
	cs := newCallbackServer(t, e, "FR")
	status(t, e.req("FR", "PUT", "/diagnosiskeys/callback/a?url="+url.QueryEscape(cs.srv.URL), nil, nil), http.StatusOK)
	// Re-register the host with another certificate: the server's is no
	// longer pinned.
	all, _ := e.store.Certificates(t.Context())
	for _, c := range all {
		if c.Type == crossroads.EFGSCertCallback {
			e.store.RevokeCertificate(t.Context(), c.Thumbprint, e.now)
		}
	}
	other := newCert(t, rsaKey(), "other", "FR", "127.0.0.1")
	e.store.PutCertificate(t.Context(), crossroads.EFGSCertificate{Thumbprint: thumb(other), Country: "FR", Type: crossroads.EFGSCertCallback, PEM: pemOf(other), Host: "127.0.0.1"})
	status(t, e.upload("DE", "a", e.keys("DE", 1)), http.StatusCreated)
	e.g.DeliverDue(t.Context())
	if len(cs.calls) != 0 {
		t.Errorf("an unpinned callback server was called")
	}

	// Without AllowPrivateCallbacks: names resolving to private addresses
	// and literal private addresses are refused.
	e2 := newEnv(t, func(c *efgs.Config) {
		c.Resolver = fakeResolver{"cb.fr.example": {netip.MustParseAddr("10.1.2.3")}, "pub.fr.example": {netip.MustParseAddr("192.0.2.10")}}
	})
	for _, h := range []string{"cb.fr.example", "127.0.0.1", "pub.fr.example"} {
		c := newCert(t, rsaKey(), h, "FR", h)
		e2.store.PutCertificate(t.Context(), crossroads.EFGSCertificate{Thumbprint: thumb(c), Country: "FR", Type: crossroads.EFGSCertCallback, PEM: pemOf(c), Host: h})
	}
	for h, want := range map[string]int{"cb.fr.example": 400, "127.0.0.1": 400, "pub.fr.example": 200} {
		if w := e2.req("FR", "PUT", "/diagnosiskeys/callback/x?url="+url.QueryEscape("https://"+h+"/cb"), nil, nil); w.Code != want {
			t.Errorf("%s: %d, want %d: %s", h, w.Code, want, w.Body)
		}
	}
}
