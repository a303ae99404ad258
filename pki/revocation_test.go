package pki

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

func TestRevocationsSet(t *testing.T) {
	r := NewRevocations()
	if r.IsRevoked("ab") || r.Len() != 0 {
		t.Fatal("empty set reports a revocation")
	}
	r.Add("AB:CD", "00ef", "0", "", "ab:cd")
	for _, s := range []string{"abcd", "ABCD", "ab:cd", "ef", "0ef", "0"} {
		if !r.IsRevoked(s) {
			t.Errorf("%q not revoked", s)
		}
	}
	for _, s := range []string{"abc", "bcd", "", "e", "1"} {
		if r.IsRevoked(s) {
			t.Errorf("%q revoked", s)
		}
	}
	if r.Len() != 3 {
		t.Errorf("Len = %d, want 3", r.Len())
	}
}

func TestRevocationsZeroAndNil(t *testing.T) {
	var nilSet *Revocations
	if nilSet.IsRevoked("ab") || nilSet.Len() != 0 {
		t.Error("nil set revokes")
	}
	var zero Revocations
	if zero.IsRevoked("ab") {
		t.Error("zero set revokes")
	}
	zero.Add("ab")
	if !zero.IsRevoked("ab") {
		t.Error("zero set: Add lost")
	}
}

func TestCanonicalSerial(t *testing.T) {
	cases := map[string]string{
		"ab0c": "ab0c", "AB0C": "ab0c", "00ab": "ab", "0": "0", "000": "0",
		"ab:0c": "ab0c", " ab ": "ab", "": "",
	}
	for in, want := range cases {
		if got := canonicalSerial(in); got != want {
			t.Errorf("canonicalSerial(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRevocationsConcurrent(t *testing.T) {
	r := NewRevocations()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r.Add(fmt.Sprintf("%x", w*1000+i+1))
			}
		})
		wg.Go(func() {
			for i := range 2000 {
				_ = r.IsRevoked(fmt.Sprintf("%x", i))
			}
		})
	}
	wg.Wait()
	if r.Len() != 800 {
		t.Fatalf("Len = %d, want 800", r.Len())
	}
}

func TestWatch(t *testing.T) {
	store := &fakeStore{}
	ca := testCA(t)
	var serials []string
	for _, p := range []string{"a", "b", "c"} {
		_, _, rec, err := ca.Issue(IssueRequest{Participant: p})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.RecordCertificate(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, rec.Serial)
	}
	if err := store.RevokeCertificate(t.Context(), serials[0], time.Now(), "key compromise"); err != nil {
		t.Fatal(err)
	}

	r := NewRevocations()
	r.Add(serials[1]) // added locally before the store reports it
	var mu sync.Mutex
	var got [][]string
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, store, 5*time.Millisecond, func(s []string) {
			mu.Lock()
			got = append(got, slices.Clone(s))
			mu.Unlock()
		})
	}()
	batches := func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	waitFor(t, "initial revocations", func() bool { return len(batches()) == 1 })
	if !r.IsRevoked(serials[0]) || !slices.Equal(batches()[0], []string{serials[0]}) {
		t.Fatalf("after first poll: revoked=%v batches=%v", r.IsRevoked(serials[0]), batches())
	}

	// The store fails for a while; Watch keeps going.
	store.mu.Lock()
	store.failNext = 3
	before := store.polls
	store.mu.Unlock()
	waitFor(t, "polls through failures", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.polls >= before+4
	})
	if err := store.RevokeCertificate(t.Context(), serials[1], time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	if err := store.RevokeCertificate(t.Context(), serials[2], time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second batch", func() bool { return len(batches()) == 2 })
	// serials[1] was already in the set: still reported, so its
	// connections get closed.
	if b := batches()[1]; !slices.Equal(b, []string{serials[1], serials[2]}) {
		t.Fatalf("second batch %v", b)
	}
	if !r.IsRevoked(serials[2]) {
		t.Fatal("not revoked")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	if n := len(batches()); n != 2 {
		t.Fatalf("%d batches, want 2 (each serial reported once)", n)
	}
}

// tlsServer starts a real TLS server wired as the hub wires it.
type tlsServer struct {
	*httptest.Server
	pool    *x509.CertPool
	revs    *Revocations
	tracker *ConnTracker
}

func startTLSServer(t *testing.T, ca *CA) *tlsServer {
	t.Helper()
	s := &tlsServer{pool: ca.Pool(), revs: NewRevocations(), tracker: NewConnTracker()}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _, err := CheckPeer(r.TLS, s.revs, time.Now())
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "anonymous")
			return
		}
		_, _ = io.WriteString(w, "hello "+id)
	}))
	s.TLS = ServerTLSConfig(s.pool, hubServerCert(t, ca), s.revs)
	s.Config.ConnState = s.tracker.ConnState
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// keepAlive is a client connection that has completed one request and
// stays open.
type keepAlive struct {
	conn *tls.Conn
	br   *bufio.Reader
}

// get opens a TLS connection with cfg and performs one HTTP/1.1 request on
// it, leaving it open.
func (s *tlsServer) get(cfg *tls.Config) (*keepAlive, string, error) {
	conn, err := tls.Dial("tcp", s.Listener.Addr().String(), cfg)
	if err != nil {
		return nil, "", err
	}
	ka := &keepAlive{conn: conn, br: bufio.NewReader(conn)}
	body, err := ka.request()
	if err != nil {
		_ = conn.Close()
		return nil, "", err
	}
	return ka, body, nil
}

func (ka *keepAlive) request() (string, error) {
	_ = ka.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(ka.conn, "GET / HTTP/1.1\r\nHost: hub\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(ka.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b), err
}

func TestRevocationClosesConnectionsAndRefusesHandshakes(t *testing.T) {
	ca := testCA(t)
	s := startTLSServer(t, ca)
	store := &fakeStore{}
	alice := issueTLS(t, ca, IssueRequest{Participant: "alice"})
	bob := issueTLS(t, ca, IssueRequest{Participant: "bob"})
	for _, c := range []tls.Certificate{alice, bob} {
		if err := store.RecordCertificate(t.Context(), certRecord(c)); err != nil {
			t.Fatal(err)
		}
	}

	closed := make(chan int, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go s.revs.Watch(ctx, store, 250*time.Millisecond, func(serials []string) {
		closed <- s.tracker.CloseSerial(serials...)
	})

	aliceConn, body, err := s.get(ClientTLSConfig(s.pool, alice))
	if err != nil || body != "200 hello alice" {
		t.Fatalf("alice before revocation: %q, %v", body, err)
	}
	defer aliceConn.conn.Close()
	bobConn, body, err := s.get(ClientTLSConfig(s.pool, bob))
	if err != nil || body != "200 hello bob" {
		t.Fatalf("bob: %q, %v", body, err)
	}
	defer bobConn.conn.Close()
	if body, err := aliceConn.request(); err != nil || body != "200 hello alice" {
		t.Fatalf("alice keep-alive: %q, %v", body, err)
	}
	if n := s.tracker.Len(); n != 2 {
		t.Fatalf("tracker holds %d connections, want 2", n)
	}

	if err := store.RevokeCertificate(t.Context(), SerialHex(alice.Leaf), time.Now(), "key compromise"); err != nil {
		t.Fatal(err)
	}

	// The server closes alice's open keep-alive connection: the client
	// reads EOF or a reset, not its own deadline.
	_ = aliceConn.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = aliceConn.br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("alice's open connection was not closed: %v", err)
	}
	select {
	case n := <-closed:
		if n != 1 {
			t.Errorf("CloseSerial closed %d connections, want 1", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("onRevoked not called")
	}
	if !s.revs.IsRevoked(SerialHex(alice.Leaf)) {
		t.Fatal("alice not in the revocation set")
	}

	// A new handshake with alice's certificate is refused (TLS 1.3: the
	// client learns it when it reads).
	if ka, body, err := s.get(ClientTLSConfig(s.pool, alice)); err == nil {
		_ = ka.conn.Close()
		t.Fatalf("revoked certificate got a response: %q", body)
	} else {
		t.Logf("revoked certificate refused: %v", err)
	}

	// Bob is untouched, on his open connection and on a new one.
	if body, err := bobConn.request(); err != nil || body != "200 hello bob" {
		t.Fatalf("bob's open connection after alice's revocation: %q, %v", body, err)
	}
	if ka, body, err := s.get(ClientTLSConfig(s.pool, bob)); err != nil || body != "200 hello bob" {
		t.Fatalf("bob new connection: %q, %v", body, err)
	} else {
		_ = ka.conn.Close()
	}
	if s.tracker.CloseSerial(SerialHex(alice.Leaf)) != 0 {
		t.Error("alice's closed connection still tracked")
	}
}

func certRecord(c tls.Certificate) crossroads.Certificate {
	id, _ := ParticipantID(c.Leaf)
	return crossroads.Certificate{Serial: SerialHex(c.Leaf), Participant: id, NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter}
}

func TestServerTLSConfigRefuses(t *testing.T) {
	ca := testCA(t)
	s := startTLSServer(t, ca)
	now := time.Now()
	cases := map[string]*tls.Config{
		"expired":        ClientTLSConfig(s.pool, issueTLSAt(t, ca, "old", now.Add(-48*time.Hour), now.Add(-time.Hour))),
		"not yet valid":  ClientTLSConfig(s.pool, issueTLSAt(t, ca, "young", now.Add(time.Hour), now.Add(48*time.Hour))),
		"other CA":       presentAnyway(ClientTLSConfig(s.pool, issueTLS(t, otherCA(t), IssueRequest{Participant: "alice"}))),
		"self-signed CA": presentAnyway(ClientTLSConfig(s.pool, otherCA(t).asTLS(t))),
		"server cert of other CA": func() *tls.Config {
			// The client trusts the other CA only: it refuses the hub.
			o := otherCA(t)
			return ClientTLSConfig(o.Pool(), issueTLS(t, ca, IssueRequest{Participant: "alice"}))
		}(),
	}
	tls12 := ClientTLSConfig(s.pool, issueTLS(t, ca, IssueRequest{Participant: "alice"}))
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	cases["TLS 1.2"] = tls12
	for name, cfg := range cases {
		if ka, body, err := s.get(cfg); err == nil {
			_ = ka.conn.Close()
			t.Errorf("%s: accepted: %q", name, body)
		}
	}

	// Revoked before connecting.
	carol := issueTLS(t, ca, IssueRequest{Participant: "carol"})
	s.revs.Add(SerialHex(carol.Leaf))
	if ka, body, err := s.get(ClientTLSConfig(s.pool, carol)); err == nil {
		_ = ka.conn.Close()
		t.Errorf("revoked: accepted: %q", body)
	}

	// A certificate of another CA that the client does not insist on
	// presenting: the client connects anonymously and gets nothing.
	ka, body, err := s.get(ClientTLSConfig(s.pool, issueTLS(t, otherCA(t), IssueRequest{Participant: "alice"})))
	if err != nil || body != "401 anonymous" {
		t.Fatalf("other CA, not presented: %q, %v", body, err)
	}
	_ = ka.conn.Close()

	// No client certificate: the handshake succeeds (public routes), the
	// handler sees an anonymous client.
	anon := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: s.pool}
	ka, body, err = s.get(anon)
	if err != nil || body != "401 anonymous" {
		t.Fatalf("anonymous: %q, %v", body, err)
	}
	_ = ka.conn.Close()
}

// presentAnyway makes the client send its certificate even when its issuer
// is not among the CAs the server asks for (a Go client would otherwise
// connect anonymously).
func presentAnyway(cfg *tls.Config) *tls.Config {
	c := cfg.Certificates[0]
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	return cfg
}

// asTLS returns the CA's own self-signed certificate and key.
func (ca *CA) asTLS(t *testing.T) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{ca.cert.Raw}, PrivateKey: ca.key, Leaf: ca.cert}
}

// TestVerifyConnection exercises the checks of VerifyConnection itself
// (chain verification catches expired certificates first in a real
// handshake).
func TestVerifyConnection(t *testing.T) {
	ca := testCA(t)
	revs := NewRevocations()
	cfg := ServerTLSConfig(ca.Pool(), hubServerCert(t, ca), revs)
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Fatalf("MinVersion %x ClientAuth %v", cfg.MinVersion, cfg.ClientAuth)
	}
	cs := func(c tls.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}, VerifiedChains: [][]*x509.Certificate{{c.Leaf, ca.Certificate()}}}
	}
	now := time.Now()
	good := issueTLS(t, ca, IssueRequest{Participant: "alice"})
	expired := issueTLSAt(t, ca, "old", now.Add(-48*time.Hour), now.Add(-time.Hour))
	noID := rawCert(t, ca, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err := cfg.VerifyConnection(cs(good)); err != nil {
		t.Fatalf("good: %v", err)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err != nil {
		t.Fatalf("anonymous: %v", err)
	}
	if err := cfg.VerifyConnection(cs(expired)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{good.Leaf}}); !errors.Is(err, ErrNoClientCertificate) {
		t.Errorf("unverified: %v", err)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{noID}, VerifiedChains: [][]*x509.Certificate{{noID, ca.Certificate()}}}); !errors.Is(err, ErrNoParticipant) {
		t.Errorf("no participant id: %v", err)
	}
	revs.Add(SerialHex(good.Leaf))
	if err := cfg.VerifyConnection(cs(good)); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked: %v", err)
	}

	// CheckPeer, as handlers use it.
	st := cs(good)
	if _, _, err := CheckPeer(&st, revs, now); !errors.Is(err, ErrRevoked) {
		t.Errorf("CheckPeer revoked: %v", err)
	}
	if id, leaf, err := CheckPeer(&st, nil, now); err != nil || id != "alice" || leaf != good.Leaf {
		t.Errorf("CheckPeer: %q %v", id, err)
	}
	if _, _, err := CheckPeer(&st, nil, good.Leaf.NotAfter.Add(time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("CheckPeer after expiry: %v", err)
	}
	if _, _, err := CheckPeer(nil, revs, now); !errors.Is(err, ErrNoClientCertificate) {
		t.Errorf("CheckPeer plain HTTP: %v", err)
	}
	if _, _, err := CheckPeer(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{good.Leaf}}, nil, now); !errors.Is(err, ErrNoClientCertificate) {
		t.Errorf("CheckPeer unverified: %v", err)
	}
}

func TestClientTLSConfig(t *testing.T) {
	ca := testCA(t)
	s := startTLSServer(t, ca)
	alice := issueTLS(t, ca, IssueRequest{Participant: "alice"})
	cfg := ClientTLSConfig(s.pool, alice)
	if cfg.MinVersion != tls.VersionTLS13 {
		t.Fatal("client config allows < TLS 1.3")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := client.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello alice" || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("%d %q %x", resp.StatusCode, b, resp.TLS.Version)
	}
}

func TestLoadKeyPair(t *testing.T) {
	ca := testCA(t)
	certPEM, keyPEM, _, err := ca.Issue(IssueRequest{Participant: "a"})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeyPair(certPEM, keyPEM)
	if err != nil || kp.Leaf == nil {
		t.Fatalf("LoadKeyPair: %v", err)
	}
	_, otherKey, _, _ := ca.Issue(IssueRequest{Participant: "b"})
	if _, err := LoadKeyPair(certPEM, otherKey); err == nil {
		t.Error("mismatched key accepted")
	}
	if _, err := LoadKeyPair([]byte("x"), keyPEM); err == nil || !strings.Contains(err.Error(), "pki:") {
		t.Errorf("garbage: %v", err)
	}
}
