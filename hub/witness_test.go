package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/witness"
)

// TestWitnessedCheckpoints: a hub configured with a witness (a real
// tlog-witness over TLS with a network certificate) publishes at
// /v1/log/checkpoint only checkpoints that carry the witness's
// cosignature, and they cover the exchanges made.
func TestWitnessedCheckpoints(t *testing.T) {
	dataDir := t.TempDir()
	pass := []byte("witness-test-passphrase")
	if err := os.WriteFile(filepath.Join(dataDir, "ca-passphrase"), pass, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := hub.Init(dataDir, pass, "Test CA", nil)
	if err != nil {
		t.Fatal(err)
	}
	skey, err := audit.LoadOrCreateNoteKey(filepath.Join(dataDir, "audit"), "")
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := audit.VerifierKey(skey)
	logVerifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}

	// The witness: its own key, durable state, a server certificate of the network CA.
	_, wkey, _ := ed25519.GenerateKey(rand.Reader)
	cs, err := witness.NewCosigner("supervisor.example/witness", wkey)
	if err != nil {
		t.Fatal(err)
	}
	store, err := witness.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w, err := witness.New(context.Background(), witness.Config{
		Name: "supervisor.example/witness", Signer: cs, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Logs:   []witness.Log{{Origin: logVerifier.Name(), Verifiers: []note.Verifier{logVerifier}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{Participant: "supervisor", Server: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	wcert, _ := pki.LoadKeyPair(certPEM, keyPEM)
	wln, _ := net.Listen("tcp", "127.0.0.1:0")
	wsrv := &http.Server{Handler: w, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{wcert}}}
	go wsrv.ServeTLS(wln, "", "")
	defer wsrv.Close()

	r := demotest.Start(t, demo.Options{DataDir: dataDir, Configure: func(c *hub.Config) {
		c.Witnesses = []audit.WitnessConfig{{URL: "https://" + wln.Addr().String(), VerifierKey: cs.VerifierKey()}}
		c.WitnessQuorum = 1
	}})
	p := r.People[0]
	for i := 0; i < 5; i++ {
		resp, _, err := r.Clients.Exchange(context.Background(), demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("exchange: %v %v", resp, err)
		}
	}
	wv, err := witness.NewCosignatureVerifier(cs.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	public := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.Hub.CA.Pool(), MinVersion: tls.VersionTLS13}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := public.Get(r.Base + "/v1/log/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			n, err := note.Open(body, note.VerifierList(logVerifier, wv))
			if err != nil {
				t.Fatalf("published checkpoint does not verify: %v\n%s", err, body)
			}
			if len(n.Sigs) < 2 {
				t.Fatalf("published checkpoint lacks the witness cosignature:\n%s", body)
			}
			lines := strings.Split(n.Text, "\n")
			if size, err := strconv.Atoi(lines[1]); err == nil && size >= 5 {
				return // cosigned and covering the exchanges
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint covering the exchanges; last answer %d:\n%s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
