package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func TestCosignatureFormat(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)
	c, err := NewCosigner("witness.example/w1", key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1679315147, 0)
	c.now = func() time.Time { return now }

	// Key ID: SHA-256(name || "\n" || 0x04 || public key)[:4].
	h := sha256.Sum256(append([]byte("witness.example/w1\n\x04"), pub...))
	if c.KeyHash() != binary.BigEndian.Uint32(h[:4]) {
		t.Fatalf("key hash %08x, want %x", c.KeyHash(), h[:4])
	}
	if want := fmt.Sprintf("witness.example/w1+%x+%s", h[:4], base64.StdEncoding.EncodeToString(append([]byte{4}, pub...))); c.VerifierKey() != want {
		t.Fatalf("verifier key %q, want %q", c.VerifierKey(), want)
	}

	text := "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	sig, err := c.Sign([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 72 || binary.BigEndian.Uint64(sig) != 1679315147 {
		t.Fatalf("signature %x is not timestamp || ed25519 signature", sig)
	}
	msg := "cosignature/v1\ntime 1679315147\n" + text
	if !ed25519.Verify(pub, []byte(msg), sig[8:]) {
		t.Fatal("signature is not over the cosignature/v1 message")
	}
	if _, err := c.Sign([]byte("not\na checkpoint\n")); err == nil {
		t.Fatal("signed a non-checkpoint")
	}

	signed, err := note.Sign(&note.Note{Text: text}, c)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := VerifyCosignature(signed, c.Verifier())
	if err != nil || !ts.Equal(now) {
		t.Fatalf("VerifyCosignature = %v, %v", ts, err)
	}
}

// TestCosignatureInterop checks cosignatures against
// github.com/transparency-dev/formats, an independent implementation.
func TestCosignatureInterop(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "witness.example/w2")
	if err != nil {
		t.Fatal(err)
	}
	theirSigner, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	theirVerifier, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ourVerifier, err := NewCosignatureVerifier(vkey) // plain Ed25519 vkey accepted
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ourVerifier2, err := NewCosignatureVerifier(cvkey)
	if err != nil {
		t.Fatal(err)
	}
	if ourVerifier.KeyHash() != theirVerifier.KeyHash() || ourVerifier2.KeyHash() != theirVerifier.KeyHash() {
		t.Fatal("key hashes differ from transparency-dev/formats")
	}

	text := "example.org/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	theirs, err := note.Sign(&note.Note{Text: text}, theirSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCosignature(theirs, ourVerifier); err != nil {
		t.Fatalf("our verifier rejects their cosignature: %v", err)
	}

	ours := newTestCosigner(t, "witness.example/w3")
	theirV, err := fnote.NewVerifierForCosignatureV1(ours.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: text}, ours)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(theirV)); err != nil {
		t.Fatalf("their verifier rejects our cosignature: %v", err)
	}
}

// TestProofInterop checks that tlog consistency proofs, as the witness
// verifies them, are RFC 6962 proofs per github.com/transparency-dev/merkle.
func TestProofInterop(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	for _, pair := range [][2]int64{{1, 2}, {3, 7}, {4, 8}, {5, 13}, {8, 9}, {31, 64}} {
		p := l.proof(t, pair[0], pair[1])
		pb := make([][]byte, len(p))
		for i := range p {
			pb[i] = p[i][:]
		}
		r1, r2 := l.root(t, pair[0]), l.root(t, pair[1])
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(pair[0]), uint64(pair[1]), pb, r1[:], r2[:]); err != nil {
			t.Errorf("%v: %v", pair, err)
		}
	}
	if h := l.root(t, 0); string(h[:]) != string(rfc6962.DefaultHasher.EmptyRoot()) {
		t.Errorf("empty root %x", h)
	}
}

func TestNewCosignatureVerifierErrors(t *testing.T) {
	good := newTestCosigner(t, "witness.example/w1").VerifierKey()
	name, rest, _ := strings.Cut(good, "+")
	hash, key, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(key)
	alg5 := append([]byte{5}, raw[1:]...)
	for _, vkey := range []string{
		"",
		name,
		name + "+" + hash,
		name + "+zzzzzzzz+" + key,
		name + "+00000000+" + key,
		"other.example+" + hash + "+" + key,
		name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(raw[:20]),
		name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(alg5),
		"bad name+" + hash + "+" + key,
	} {
		if _, err := NewCosignatureVerifier(vkey); err == nil {
			t.Errorf("NewCosignatureVerifier(%q) succeeded", vkey)
		}
	}
	if _, err := NewCosignatureVerifier(good); err != nil {
		t.Fatal(err)
	}
}

func TestPolicy(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w1 := newTestCosigner(t, "witness.example/w1")
	w2 := newTestCosigner(t, "witness.example/w2")
	w3 := newTestCosigner(t, "witness.example/w3")
	text := Checkpoint{Origin: l.origin, Size: 5, Root: l.root(t, 5)}.String()
	signed := func(signers ...note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := Policy{Witnesses: []note.Verifier{w1.Verifier(), w2.Verifier(), w3.Verifier()}, Quorum: 2}
	if p.Satisfied(signed(l.signer)) {
		t.Error("satisfied with no cosignature")
	}
	if p.Satisfied(signed(l.signer, w1)) {
		t.Error("satisfied with one cosignature")
	}
	if !p.Satisfied(signed(l.signer, w1, w3)) {
		t.Error("not satisfied with two cosignatures")
	}
	// The same witness listed twice counts once.
	dup := Policy{Witnesses: []note.Verifier{w1.Verifier(), w1.Verifier()}, Quorum: 2}
	if dup.Satisfied(signed(l.signer, w1)) {
		t.Error("duplicate witness counted twice")
	}
	// Quorum 0 means all witnesses.
	all := Policy{Witnesses: []note.Verifier{w1.Verifier(), w2.Verifier()}}
	if all.Satisfied(signed(w1)) || !all.Satisfied(signed(w2, w1)) {
		t.Error("quorum 0 is not all witnesses")
	}
	// An invalid cosignature does not count, and does not hide the others.
	good := signed(l.signer, w1, w3)
	sigs, _ := ParseSignatureLines(good[len(text)+1:])
	raw, _ := base64.StdEncoding.DecodeString(sigs[1].Base64)
	raw[20] ^= 1
	sigs[1].Base64 = base64.StdEncoding.EncodeToString(raw)
	bad, err := MergeSignatures(good, sigs[1])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Count(bad); err != nil || n != 1 {
		t.Errorf("Count with one tampered cosignature = %d, %v", n, err)
	}
	// A cosignature over another checkpoint does not count.
	other := []byte(strings.Replace(string(good), "\n5\n", "\n6\n", 1))
	if n, _ := p.Count(other); n != 0 {
		t.Errorf("Count over altered checkpoint = %d", n)
	}
	if p.Satisfied([]byte("garbage")) {
		t.Error("satisfied by garbage")
	}
}

func TestMergeSignatures(t *testing.T) {
	l := newTestLog(t, "example.org/log")
	w1 := newTestCosigner(t, "witness.example/w1")
	w2 := newTestCosigner(t, "witness.example/w2")
	text := Checkpoint{Origin: l.origin, Size: 2, Root: l.root(t, 2)}.String()
	base, _ := note.Sign(&note.Note{Text: text}, l.signer)
	withW1, _ := note.Sign(&note.Note{Text: text}, w1)
	withW2, _ := note.Sign(&note.Note{Text: text}, w2)
	s1, _ := ParseSignatureLines(withW1[len(text)+1:])
	s2, _ := ParseSignatureLines(withW2[len(text)+1:])

	merged, err := MergeSignatures(base, s1[0], s2[0])
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(merged, note.VerifierList(l.verifier, w1.Verifier(), w2.Verifier()))
	if err != nil || len(n.Sigs) != 3 {
		t.Fatalf("merged note: %v, %v", n, err)
	}
	// Merging again replaces rather than duplicates.
	again, err := MergeSignatures(merged, s1[0])
	if err != nil || string(again) != string(merged) {
		t.Fatalf("re-merge changed the note: %q, %v", again, err)
	}
	bad := s1[0]
	bad.Hash++
	if _, err := MergeSignatures(base, bad); err == nil {
		t.Error("merged a signature whose key ID does not match")
	}
	if _, err := MergeSignatures([]byte("no signatures\n"), s1[0]); err == nil {
		t.Error("merged into a malformed note")
	}
}
