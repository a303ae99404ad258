package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// testCA returns a CA shared by the tests of this package (generated in
// memory: the encrypted file round trip has its own tests).
var (
	sharedCAOnce sync.Once
	sharedCA     *CA
	sharedCAErr  error
)

func testCA(t testing.TB) *CA {
	t.Helper()
	sharedCAOnce.Do(func() { sharedCA, sharedCAErr = newCA("Crossroads Test CA", time.Now()) })
	if sharedCAErr != nil {
		t.Fatal(sharedCAErr)
	}
	return sharedCA
}

func otherCA(t testing.TB) *CA {
	t.Helper()
	ca, err := newCA("Somebody Else's CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueTLS issues a certificate through the public API and loads it.
func issueTLS(t testing.TB, ca *CA, req IssueRequest) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, _, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issueTLSAt issues a certificate with explicit validity bounds (to make
// expired or not-yet-valid certificates).
func issueTLSAt(t testing.TB, ca *CA, participant string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.sign(&key.PublicKey, IssueRequest{Participant: participant}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadKeyPair(certPEM, pemBlock("PRIVATE KEY", der))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hubServerCert(t testing.TB, ca *CA) tls.Certificate {
	return issueTLS(t, ca, IssueRequest{
		Participant: HubParticipant,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		Server:      true,
	})
}

// resetVerifyCache empties Verify's header cache.
func resetVerifyCache() {
	headerCache.mu.Lock()
	headerCache.m.Store(nil)
	headerCache.mu.Unlock()
}

// fakeStore is an in-memory crossroads.CertificateStore.
type fakeStore struct {
	mu       sync.Mutex
	certs    []crossroads.Certificate
	revoked  []string
	failNext int
	polls    int
}

var errStoreDown = errors.New("store down")

func (s *fakeStore) RecordCertificate(_ context.Context, c crossroads.Certificate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs = append(s.certs, c)
	return nil
}

func (s *fakeStore) RevokeCertificate(_ context.Context, serial string, at time.Time, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.certs {
		if s.certs[i].Serial == serial {
			if s.certs[i].RevokedAt.IsZero() {
				s.certs[i].RevokedAt, s.certs[i].RevocationReason = at, reason
				s.revoked = append(s.revoked, serial)
			}
			return nil
		}
	}
	return crossroads.ErrNotFound
}

func (s *fakeStore) Certificates(context.Context) ([]crossroads.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]crossroads.Certificate(nil), s.certs...), nil
}

func (s *fakeStore) RevokedSince(_ context.Context, cursor int64) ([]string, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	if s.failNext > 0 {
		s.failNext--
		return nil, 0, errStoreDown
	}
	if cursor < 0 || cursor > int64(len(s.revoked)) {
		cursor = 0
	}
	return append([]string(nil), s.revoked[cursor:]...), int64(len(s.revoked)), nil
}

// waitFor polls cond until it holds or a generous deadline passes. It is a
// liveness guard, not a timing assertion.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
