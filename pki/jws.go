package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
)

// Errors of signature verification. Wrapped; test with errors.Is.
var (
	// ErrInvalidSignature: malformed token, bad signature, untrusted or
	// expired signing certificate, or wrong token type.
	ErrInvalidSignature = errors.New("pki: invalid signature")
	// ErrUnexpectedSigner: a valid signature by a participant other than
	// the one required.
	ErrUnexpectedSigner = errors.New("pki: unexpected signer")
)

// MaxTokenLen bounds the size of a token Verify accepts.
const MaxTokenLen = 64 << 10

// typedClaims is implemented by the claim sets of this package: their
// tokens carry a "typ" header that Verify checks, so that a token of one
// kind (a seal) can never pass as another (a request signature).
type typedClaims interface{ jwsType() string }

// Token types ("typ" header); TypeSealBatch is in sealbatch.go.
const (
	TypeSeal    = "crossroads-seal+jws" // a v1 seal: SealClaims
	TypeRequest = "crossroads-request+jws"
)

// Signer produces compact ES256 JWS tokens whose protected header carries
// the signer's certificate chain ("x5c"). Safe for concurrent use.
//
// go-jose produces the protected header of each token type once, in
// NewSigner; Sign then only appends the payload and computes the ES256
// signature (RFC 7515 §5.1, RFC 7518 §3.4) over the same bytes go-jose
// would, which saves it re-encoding the x5c header twice per token.
// NewSigner checks, with go-jose, that a token so made verifies.
type Signer struct {
	st atomic.Pointer[signerState] // swapped whole by Rotate
}

type signerState struct {
	participant string
	leaf        *x509.Certificate
	key         *ecdsa.PrivateKey
	headers     map[string]string // typ ("" for untyped claims) → encoded protected header + "."
}

// Rotate makes s sign with cert from now on (a renewed certificate of the
// same participant); tokens being signed finish with the old one.
func (s *Signer) Rotate(cert tls.Certificate) error {
	n, err := NewSigner(cert)
	if err != nil {
		return err
	}
	if old := s.st.Load(); old != nil && old.participant != n.st.Load().participant {
		return fmt.Errorf("pki: rotate signer: certificate of %q, not %q", n.st.Load().participant, old.participant)
	}
	s.st.Store(n.st.Load())
	return nil
}

// NewSigner returns a Signer for cert, whose key must be ECDSA P-256 and
// whose leaf must carry a participant id.
func NewSigner(cert tls.Certificate) (*Signer, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("pki: new signer: no certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("pki: new signer: %w", err)
		}
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: new signer: %w: ES256 needs an ECDSA P-256 key, got %T", ErrUnsupportedKey, cert.PrivateKey)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("pki: new signer: private key does not match certificate")
	}
	id, err := ParticipantID(leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: new signer: %w", err)
	}
	x5c := make([]string, len(cert.Certificate))
	for i, der := range cert.Certificate {
		x5c[i] = base64.StdEncoding.EncodeToString(der)
	}
	st := &signerState{participant: id, leaf: leaf, key: key, headers: make(map[string]string)}
	for _, typ := range []string{"", TypeSeal, TypeSealBatch, TypeRequest} {
		opts := (&jose.SignerOptions{}).WithHeader("x5c", x5c)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			return nil, fmt.Errorf("pki: new signer: %w", err)
		}
		obj, err := js.Sign([]byte("{}"))
		if err != nil {
			return nil, fmt.Errorf("pki: new signer: %w", err)
		}
		tok, err := obj.CompactSerialize()
		if err != nil {
			return nil, fmt.Errorf("pki: new signer: %w", err)
		}
		hdr, _, _ := strings.Cut(tok, ".")
		st.headers[typ] = hdr + "."
		// Self-check: go-jose verifies what sign produces.
		own, err := st.sign(typ, []byte(`{"selfCheck":true}`))
		if err != nil {
			return nil, fmt.Errorf("pki: new signer: %w", err)
		}
		parsed, err := jose.ParseSignedCompact(own, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return nil, fmt.Errorf("pki: new signer: self-check: %w", err)
		}
		if p, err := parsed.Verify(&key.PublicKey); err != nil || string(p) != `{"selfCheck":true}` {
			return nil, fmt.Errorf("pki: new signer: self-check failed: %v", err)
		}
	}
	s := &Signer{}
	s.st.Store(st)
	return s, nil
}

// Participant returns the participant id of the signing certificate.
func (s *Signer) Participant() string { return s.st.Load().participant }

// Certificate returns the signing certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.st.Load().leaf }

// Sign marshals claims to JSON and returns the compact JWS.
func (s *Signer) Sign(claims any) (string, error) {
	typ := ""
	if tc, ok := claims.(typedClaims); ok {
		typ = tc.jwsType()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("pki: sign: marshal claims: %w", err)
	}
	return s.st.Load().sign(typ, payload)
}

// sign returns header.payload.signature, compact-serialised.
func (s *signerState) sign(typ string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	hdr := s.headers[typ]
	buf := make([]byte, 0, len(hdr)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, hdr...)
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("pki: sign: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	// buf is never written again: the token shares its bytes instead of
	// copying them (a token is ~3 KB with its x5c chain).
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}

// Verify checks a compact ES256 JWS made by a Signer: the signature, that
// the x5c chain leads to roots and every certificate in it is valid at now
// (time.Now() if zero), and, when claims is one of this package's claim
// types, the token type. It decodes the payload into claims (if not nil) and
// returns the participant id of the signing certificate.
//
// Verify remembers (bounded cache) the outcome of chain validation per
// byte-identical protected header and roots, so that repeat tokens of one
// signer skip certificate parsing and chain building.
func Verify(token string, roots *x509.CertPool, now time.Time, claims any) (signer string, err error) {
	if roots == nil {
		return "", fmt.Errorf("%w: no trust roots", ErrInvalidSignature)
	}
	if now.IsZero() {
		now = time.Now()
	}
	if len(token) > MaxTokenLen {
		return "", fmt.Errorf("%w: token too long", ErrInvalidSignature)
	}
	i := strings.IndexByte(token, '.')
	j := strings.LastIndexByte(token, '.')
	if i <= 0 || j == i || strings.IndexByte(token[i+1:j], '.') >= 0 {
		return "", fmt.Errorf("%w: not a compact JWS", ErrInvalidSignature)
	}
	header := token[:i]
	want := ""
	if tc, ok := claims.(typedClaims); ok {
		want = tc.jwsType()
	}

	var payload []byte
	e := cachedHeader(header, roots)
	if e != nil {
		if now.Before(e.notBefore) || now.After(e.notAfter) {
			return "", fmt.Errorf("%w: signing certificate chain not valid at %s", ErrInvalidSignature, now.UTC().Format(time.RFC3339))
		}
		if payload, err = verifyES256(e.pub, token[:j], token[j+1:], token[i+1:j]); err != nil {
			return "", err
		}
	} else {
		if e, payload, err = verifySlow(token, header, roots, now); err != nil {
			return "", err
		}
	}
	if want != "" && e.typ != want {
		return "", fmt.Errorf("%w: token type %q, want %q", ErrInvalidSignature, e.typ, want)
	}
	if claims != nil {
		if err := json.Unmarshal(payload, claims); err != nil {
			return "", fmt.Errorf("%w: claims: %w", ErrInvalidSignature, err)
		}
	}
	return e.participant, nil
}

// verifySlow validates a token with go-jose and the x509 chain, and caches
// the validated header.
func verifySlow(token, header string, roots *x509.CertPool, now time.Time) (*verifiedHeader, []byte, error) {
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, nil, fmt.Errorf("%w: want one signature", ErrInvalidSignature)
	}
	h := obj.Signatures[0].Protected
	chains, err := h.Certificates(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signing certificate: %w", ErrInvalidSignature, err)
	}
	leaf := chains[0][0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: signing key is not ECDSA P-256", ErrInvalidSignature)
	}
	payload, err := obj.Verify(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	id, err := ParticipantID(leaf)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signing certificate: %w", ErrInvalidSignature, err)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	e := &verifiedHeader{roots: roots, pub: pub, participant: id, typ: typ, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter}
	for _, c := range chains[0][1:] {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	storeHeader(header, e)
	return e, payload, nil
}

// verifyES256 checks an ES256 signature (RFC 7518 §3.4: R‖S, 32 bytes each)
// over signingInput and returns the decoded payload.
func verifyES256(pub *ecdsa.PublicKey, signingInput, sig64, payload64 string) ([]byte, error) {
	var sig [64]byte
	if base64.RawURLEncoding.DecodedLen(len(sig64)) != len(sig) {
		return nil, fmt.Errorf("%w: signature length", ErrInvalidSignature)
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(sig[:], []byte(sig64)); err != nil || n != len(sig) {
		return nil, fmt.Errorf("%w: signature encoding", ErrInvalidSignature)
	}
	h := sha256.New()
	_, _ = io.WriteString(h, signingInput)
	var r, s big.Int
	r.SetBytes(sig[:32])
	s.SetBytes(sig[32:])
	if !ecdsa.Verify(pub, h.Sum(nil), &r, &s) {
		return nil, fmt.Errorf("%w: signature does not verify", ErrInvalidSignature)
	}
	payload, err := base64.RawURLEncoding.DecodeString(payload64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding: %w", ErrInvalidSignature, err)
	}
	return payload, nil
}

// verifiedHeader is a protected header whose certificate chain has been
// validated against roots; the chain is valid from notBefore to notAfter.
type verifiedHeader struct {
	roots               *x509.CertPool
	pub                 *ecdsa.PublicKey
	participant, typ    string
	notBefore, notAfter time.Time
}

const headerCacheMax = 1024

var headerCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*verifiedHeader]
}

func cachedHeader(header string, roots *x509.CertPool) *verifiedHeader {
	m := headerCache.m.Load()
	if m == nil {
		return nil
	}
	e := (*m)[header]
	if e == nil || (e.roots != roots && !e.roots.Equal(roots)) {
		return nil
	}
	return e
}

func storeHeader(header string, e *verifiedHeader) {
	headerCache.mu.Lock()
	defer headerCache.mu.Unlock()
	var old map[string]*verifiedHeader
	if p := headerCache.m.Load(); p != nil && len(*p) < headerCacheMax {
		old = *p
	}
	m := make(map[string]*verifiedHeader, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[header] = e
	headerCache.m.Store(&m)
}

// Digest returns the RFC 9530 style digest of body: "sha-256=:<base64>:".
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}
