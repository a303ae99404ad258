package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/internal/syncbuf"
	"github.com/crossroads-hub/crossroads/pki"
)

// TestLogsHoldNoPersonalData runs the whole scenario with debug logging and
// checks that no person identifier or name reaches the log.
func TestLogsHoldNoPersonalData(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prev)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, errc, err := demo.Start(ctx, demo.Options{DataDir: t.TempDir(), People: 30, Logger: log}, ln)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	results := r.Clients.Run(ctx, demo.Scenario(r.People, r.Revoke, r.Hub.CA.Pool()))
	cancel()
	<-errc
	r.Close()
	var out bytes.Buffer
	if !demo.Print(&out, results) {
		t.Fatalf("scenario failed:\n%s", out.String())
	}
	logs := buf.String()
	if !strings.Contains(logs, `"level"`) {
		t.Fatal("nothing was logged: the test would prove nothing")
	}
	for _, p := range r.People {
		for _, pd := range []string{p.INSZ, p.Last + `"`, p.Street} {
			if strings.Contains(logs, pd) {
				t.Fatalf("personal data %q in the logs", pd)
			}
		}
	}
}

// TestGracefulShutdown: an exchange in flight when the hub is asked to stop
// completes and is released; new connections are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, errc, err := demo.Start(ctx, demo.Options{DataDir: t.TempDir(), People: 10}, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	started := make(chan struct{})
	demotest.AddProvider(t, r, "slow", []string{""}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	p := r.People[0]
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, _, err := r.Clients.Exchange(context.Background(), demo.OCMW, "slow", "x/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			done <- result{0, err}
			return
		}
		done <- result{resp.StatusCode, nil}
	}()
	<-started
	cancel() // ask the hub to stop while the exchange is in flight
	res := <-done
	if res.err != nil || res.status != http.StatusOK {
		t.Fatalf("in-flight exchange: status %d, err %v", res.status, res.err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.OCMW])); err == nil {
		t.Fatal("new connection accepted after shutdown")
	}
}

// TestReadyzFollowsTheAuditStore: a hub whose audit store is gone is not
// ready (a load balancer must stop sending it exchanges it would refuse).
func TestReadyzFollowsTheAuditStore(t *testing.T) {
	r := start(t)
	get := func() int {
		resp, err := r.Clients.Client(demo.OCMW).Get(r.Base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(); st != http.StatusOK {
		t.Fatalf("ready: %d", st)
	}
	r.Hub.CloseAuditStoreForTest()
	if st := get(); st != http.StatusServiceUnavailable {
		t.Fatalf("ready without an audit store: %d", st)
	}
}

// TestRefusedHandshakesAreCounted: a certificate of another CA never
// reaches a handler, but the refusal shows in the metrics.
func TestRefusedHandshakesAreCounted(t *testing.T) {
	r := start(t)
	other, err := pki.InitCA(t.TempDir(), []byte("another network's passphrase"), "Other CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := other.Issue(pki.IssueRequest{Participant: demo.OCMW})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := pki.LoadKeyPair(certPEM, keyPEM)
	cfg := pki.ClientTLSConfig(r.Hub.CA.Pool(), foreign)
	// Send it even though the hub asks for certificates of its own CA only.
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	if resp, err := cl.Get(r.Base + "/v1/integrations"); err == nil {
		resp.Body.Close()
		t.Fatalf("a foreign certificate was accepted: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := r.Clients.Client(demo.Operator).Get(r.Base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `crossroads_connection_errors_total{kind="tls-handshake"}`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused handshake was not counted")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
