package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// AlgCosignatureV1 is the signature type byte of Ed25519 cosignature/v1 keys
// (c2sp.org/tlog-cosignature), used in key IDs and verifier keys.
const AlgCosignatureV1 = 0x04

// algEd25519 is the signed-note Ed25519 signature type byte.
const algEd25519 = 0x01

// cosigLen is the length of a cosignature/v1 signature after the key ID:
// a big-endian u64 timestamp and an Ed25519 signature.
const cosigLen = 8 + ed25519.SignatureSize

// ErrNotCosigned is returned (wrapped) when a note lacks a valid cosignature.
var ErrNotCosigned = errors.New("witness: no valid cosignature")

// Cosigner produces timestamped Ed25519 cosignature/v1 signatures. It
// implements note.Signer; it refuses to sign a note text that is not a
// checkpoint.
type Cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

// NewCosigner returns a cosigner with the given key name (for example
// "witness.example.org/w1") and private key.
func NewCosigner(name string, key ed25519.PrivateKey) (*Cosigner, error) {
	if !isValidName(name) {
		return nil, fmt.Errorf("witness: invalid key name %q", name)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("witness: invalid Ed25519 private key length %d", len(key))
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Cosigner{name: name, hash: cosigKeyHash(name, pub), key: key, now: time.Now}, nil
}

// Name returns the key name.
func (s *Cosigner) Name() string { return s.name }

// KeyHash returns the cosignature/v1 key ID.
func (s *Cosigner) KeyHash() uint32 { return s.hash }

// Sign returns timestamp || Ed25519 signature over the cosignature/v1 signed
// message for the checkpoint note text msg.
func (s *Cosigner) Sign(msg []byte) ([]byte, error) {
	if _, err := ParseCheckpoint(string(msg)); err != nil {
		return nil, fmt.Errorf("witness: refusing to cosign: %w", err)
	}
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("witness: clock before the epoch")
	}
	sig := make([]byte, 0, cosigLen)
	sig = binary.BigEndian.AppendUint64(sig, uint64(t))
	return append(sig, ed25519.Sign(s.key, cosignedMessage(uint64(t), msg))...), nil
}

// Public returns the Ed25519 public key.
func (s *Cosigner) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Verifier returns the matching cosignature/v1 verifier.
func (s *Cosigner) Verifier() note.Verifier {
	return &cosigVerifier{name: s.name, hash: s.hash, key: s.Public()}
}

// VerifierKey returns the cosigner's verifier key,
// name+hex(key ID)+base64(0x04 || public key).
func (s *Cosigner) VerifierKey() string { return VerifierKey(s.name, s.Public()) }

// VerifierKey encodes a cosignature/v1 Ed25519 verifier key (a signed-note
// vkey with signature type 0x04).
func VerifierKey(name string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", name, cosigKeyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{AlgCosignatureV1}, pub...)))
}

// NewCosignatureVerifier parses a witness verifier key and returns a
// cosignature/v1 verifier. It accepts keys of signature type 0x04
// (cosignature/v1) and, for convenience, plain signed-note Ed25519 keys
// (type 0x01), whose public key is then used for cosignature/v1.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(hash16) != 8 || !isValidName(name) || len(key) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("witness: malformed verifier key %q", vkey)
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("witness: malformed verifier key %q: %w", vkey, err)
	}
	pub := ed25519.PublicKey(key[1:])
	var want uint32
	switch key[0] {
	case AlgCosignatureV1:
		want = cosigKeyHash(name, pub)
	case algEd25519:
		want = keyHash(name, key)
	default:
		return nil, fmt.Errorf("witness: verifier key %q: unsupported signature type %#x", vkey, key[0])
	}
	if uint32(hash) != want {
		return nil, fmt.Errorf("witness: verifier key %q: key ID does not match the key", vkey)
	}
	return &cosigVerifier{name: name, hash: cosigKeyHash(name, pub), key: pub}, nil
}

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosigLen {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > math.MaxInt64 {
		return false
	}
	return ed25519.Verify(v.key, cosignedMessage(t, msg), sig[8:])
}

// cosignedMessage is the cosignature/v1 signed message: a header line, a
// timestamp line and the checkpoint note text.
func cosignedMessage(t uint64, text []byte) []byte {
	m := make([]byte, 0, 40+len(text))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, t, 10)
	m = append(m, '\n')
	return append(m, text...)
}

// cosigKeyHash is SHA-256(name || "\n" || 0x04 || public key)[:4].
func cosigKeyHash(name string, pub ed25519.PublicKey) uint32 {
	return keyHash(name, append([]byte{AlgCosignatureV1}, pub...))
}

func keyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// isValidName reports whether name is a valid signed-note key name.
func isValidName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// ParseSignatureLines parses newline-terminated note signature lines
// ("— <name> <base64(key ID || signature)>"), such as a witness's
// add-checkpoint response body.
func ParseSignatureLines(b []byte) ([]note.Signature, error) {
	var sigs []note.Signature
	for len(b) > 0 {
		line, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w signature line: no final newline", ErrMalformed)
		}
		b = rest
		s, ok := bytes.CutPrefix(line, []byte("— "))
		if !ok {
			return nil, fmt.Errorf("%w signature line: does not start with \"— \"", ErrMalformed)
		}
		name, b64, _ := strings.Cut(string(s), " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || !isValidName(name) || b64 == "" || len(sig) < 5 {
			return nil, fmt.Errorf("%w signature line %q", ErrMalformed, line)
		}
		sigs = append(sigs, note.Signature{Name: name, Hash: binary.BigEndian.Uint32(sig), Base64: b64})
	}
	return sigs, nil
}

func formatSignatureLine(b *bytes.Buffer, s note.Signature) {
	b.WriteString("— ")
	b.WriteString(s.Name)
	b.WriteByte(' ')
	b.WriteString(s.Base64)
	b.WriteByte('\n')
}

// MergeSignatures adds signatures (typically cosignatures returned by
// witnesses) to a signed note. A new signature replaces an existing one with
// the same key name and key ID; the others are appended in order.
func MergeSignatures(signedNote []byte, sigs ...note.Signature) ([]byte, error) {
	text, block, err := splitNote(signedNote)
	if err != nil {
		return nil, err
	}
	existing, err := ParseSignatureLines(block)
	if err != nil {
		return nil, err
	}
	type key struct {
		name string
		hash uint32
	}
	index := make(map[key]int, len(existing)+len(sigs))
	for i, s := range existing {
		if _, dup := index[key{s.Name, s.Hash}]; !dup {
			index[key{s.Name, s.Hash}] = i
		}
	}
	out := existing
	for _, s := range sigs {
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || !isValidName(s.Name) || len(raw) < 5 || binary.BigEndian.Uint32(raw) != s.Hash {
			return nil, fmt.Errorf("%w signature for %q", ErrMalformed, s.Name)
		}
		if i, ok := index[key{s.Name, s.Hash}]; ok {
			out[i] = s
			continue
		}
		index[key{s.Name, s.Hash}] = len(out)
		out = append(out, s)
	}
	var b bytes.Buffer
	b.Write(text)
	b.WriteByte('\n')
	for _, s := range out {
		formatSignatureLine(&b, s)
	}
	return b.Bytes(), nil
}

// VerifyCosignature checks that the signed checkpoint carries a valid
// cosignature from the witness verifier v (see [NewCosignatureVerifier]) and
// returns the cosignature's timestamp.
func VerifyCosignature(signedCheckpoint []byte, v note.Verifier) (time.Time, error) {
	n, err := note.Open(signedCheckpoint, note.VerifierList(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w from %s: %w", ErrNotCosigned, v.Name(), err)
	}
	if _, err := ParseCheckpoint(n.Text); err != nil {
		return time.Time{}, err
	}
	for _, s := range n.Sigs {
		if s.Name != v.Name() || s.Hash != v.KeyHash() {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) != 4+cosigLen {
			return time.Time{}, fmt.Errorf("%w from %s: not a cosignature/v1 signature", ErrNotCosigned, v.Name())
		}
		return time.Unix(int64(binary.BigEndian.Uint64(raw[4:])), 0), nil
	}
	return time.Time{}, fmt.Errorf("%w from %s", ErrNotCosigned, v.Name())
}

// Policy says which witnesses' cosignatures a checkpoint needs before it is
// published: at least Quorum distinct witnesses among Witnesses (all of them
// if Quorum <= 0). It checks cosignatures only; verify the log's own
// signature separately.
type Policy struct {
	Witnesses []note.Verifier
	Quorum    int
}

// Count returns the number of distinct policy witnesses with a valid
// signature on the signed checkpoint. Invalid or unknown signatures are
// ignored.
func (p Policy) Count(signedCheckpoint []byte) (int, error) {
	text, block, err := splitNote(signedCheckpoint)
	if err != nil {
		return 0, err
	}
	if !utf8.Valid(text) || bytes.ContainsFunc(text, func(r rune) bool { return r < 0x20 && r != '\n' }) {
		return 0, fmt.Errorf("%w note: invalid characters in text", ErrMalformed)
	}
	if _, err := ParseCheckpoint(string(text)); err != nil {
		return 0, err
	}
	sigs, err := ParseSignatureLines(block)
	if err != nil {
		return 0, err
	}
	type key struct {
		name string
		hash uint32
	}
	counted := make(map[key]bool)
	for _, v := range p.Witnesses {
		k := key{v.Name(), v.KeyHash()}
		if counted[k] {
			continue
		}
		for _, s := range sigs {
			if s.Name != k.name || s.Hash != k.hash {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(s.Base64)
			if err == nil && v.Verify(text, raw[4:]) {
				counted[k] = true
				break
			}
		}
	}
	return len(counted), nil
}

// Satisfied reports whether the signed checkpoint carries the cosignatures
// the policy requires.
func (p Policy) Satisfied(signedCheckpoint []byte) bool {
	n, err := p.Count(signedCheckpoint)
	if err != nil {
		return false
	}
	return n >= p.quorum()
}

func (p Policy) quorum() int {
	if p.Quorum > 0 {
		return p.Quorum
	}
	type key struct {
		name string
		hash uint32
	}
	distinct := make(map[key]bool)
	for _, v := range p.Witnesses {
		distinct[key{v.Name(), v.KeyHash()}] = true
	}
	return len(distinct)
}
