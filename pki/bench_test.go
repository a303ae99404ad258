package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"
)

func FuzzVerify(f *testing.F) {
	ca := testCA(f)
	pool := ca.Pool()
	hub := testSigner(f, ca, HubParticipant)
	tok, err := hub.Sign(sampleSeal())
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	for _, seed := range []string{
		tok, "", ".", "..", "a.b.c", parts[0] + "..", parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIn0.e30.", `{"payload":"e30","signatures":[]}`, tok[:len(tok)/2],
	} {
		f.Add(seed)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, token string) {
		var c SealClaims
		signer, err := Verify(token, pool, now, &c)
		if err == nil && (signer != HubParticipant || token != tok && !strings.HasPrefix(token, parts[0]+".")) {
			t.Fatalf("accepted %q as %q", token, signer)
		}
		var r RequestClaims
		_, _ = Verify(token, pool, now, &r)
	})
}

func BenchmarkSign(b *testing.B) {
	hub := testSigner(b, testCA(b), HubParticipant)
	claims := sampleSeal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hub.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerify(b *testing.B, cold bool) {
	ca := testCA(b)
	pool := ca.Pool()
	hub := testSigner(b, ca, HubParticipant)
	tok, err := hub.Sign(sampleSeal())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if cold {
			resetVerifyCache()
		}
		var c SealClaims
		if _, err := Verify(tok, pool, now, &c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify: the steady state (signer's chain already validated).
func BenchmarkVerify(b *testing.B) { benchmarkVerify(b, false) }

// BenchmarkVerifyCold: first token of a signer (go-jose parse + x509 chain).
func BenchmarkVerifyCold(b *testing.B) { benchmarkVerify(b, true) }

func BenchmarkVerifyHubRequest(b *testing.B) {
	ca := testCA(b)
	pool := ca.Pool()
	hub := testSigner(b, ca, HubParticipant)
	body := []byte(`{"query":"x"}`)
	t := &testing.T{}
	r := asReceived(t, hubRequest(t, hub, "POST", "/persons/1", body), body)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyHubRequest(r, body, pool, time.Time{}, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRevocations() (*Revocations, string, string) {
	r := NewRevocations()
	serials := make([]string, 10_000)
	for i := range serials {
		serials[i] = fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15+1)
	}
	r.Add(serials...)
	return r, canonicalSerial(serials[5000]), "7f3a9c0d1e2b4a5968778695a4b3c2d1"
}

func BenchmarkIsRevoked(b *testing.B) {
	r, hit, miss := benchRevocations()
	b.ReportAllocs()
	for b.Loop() {
		if !r.IsRevoked(hit) || r.IsRevoked(miss) {
			b.Fatal("wrong answer")
		}
	}
}

func BenchmarkIsRevokedParallel(b *testing.B) {
	r, hit, miss := benchRevocations()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !r.IsRevoked(hit) || r.IsRevoked(miss) {
				b.Error("wrong answer")
				return
			}
		}
	})
}

// Baselines: the raw ECDSA P-256 operations, for scale on the machine at hand.
func BenchmarkBaselineECDSASign(b *testing.B) {
	key := mustP256(b)
	h := sha256.Sum256([]byte("x"))
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, key, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineECDSAVerify(b *testing.B) {
	key := mustP256(b)
	h := sha256.Sum256([]byte("x"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, h[:], sig) {
			b.Fatal("bad")
		}
	}
}

func BenchmarkParticipantID(b *testing.B) {
	c := issueTLS(b, testCA(b), IssueRequest{Participant: "onem.example"}).Leaf
	b.ReportAllocs()
	for b.Loop() {
		if id, err := ParticipantID(c); err != nil || id != "onem.example" {
			b.Fatal(id, err)
		}
	}
}
