package pki

import (
	"testing"
	"time"
)

// TestSignerRotate: after Rotate the signer signs with the renewed
// certificate; a certificate of another participant is refused.
func TestSignerRotate(t *testing.T) {
	ca := testCA(t)
	s, err := NewSigner(hubServerCert(t, ca))
	if err != nil {
		t.Fatal(err)
	}
	renewed := hubServerCert(t, ca)
	if err := s.Rotate(renewed); err != nil {
		t.Fatal(err)
	}
	if SerialHex(s.Certificate()) != SerialHex(renewed.Leaf) {
		t.Fatal("the signer still names the old certificate")
	}
	tok, err := s.Sign(map[string]string{"x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if who, err := Verify(tok, ca.Pool(), time.Now(), nil); err != nil || who != HubParticipant {
		t.Fatalf("token of the rotated signer: %q, %v", who, err)
	}
	if err := s.Rotate(issueTLS(t, ca, IssueRequest{Participant: "someone"})); err == nil {
		t.Fatal("rotated to another participant's certificate")
	}
	if SerialHex(s.Certificate()) != SerialHex(renewed.Leaf) {
		t.Fatal("a refused rotation changed the signer")
	}
}
