package pki

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/crossroads-hub/crossroads/internal/batchtree"
)

// A seal of version 2 is one header value of three parts joined by "~"
// (as SD-JWT appends disclosures to a JWS):
//
//	<compact JWS> ~ <base64url(claims JSON)> ~ <base64url(proof JSON)>
//
// The JWS is ES256 with the signer's x5c chain, typ
// "crossroads-seal-batch+jws" (TypeSealBatch), over
//
//	{"v":2,"size":n,"root":"<base64 RFC 6962 tree hash>"}
//
// the root of an RFC 6962 Merkle tree (§2.1) over the claims of the n seals
// a SealSigner signed together: leaf i is the JSON of SealClaims exactly as
// in the token's second part. The proof is {"index":i,"size":n,"path":[…]},
// the RFC 6962 inclusion proof (§2.1.1) of that leaf (base64 hashes; empty
// in a batch of one, whose root is the leaf hash). So each seal is checkable
// on its own with any JOSE library, the network CA and any RFC 6962
// library, while the hub makes one signature per group of concurrent seals.
//
// The typ keeps the kinds apart: a batch JWS is never a v1 seal
// (TypeSeal) nor a request signature (TypeRequest), and a v1 seal never a
// batch. Version 1 seals (a compact JWS of TypeSeal over SealClaims, made
// by Signer.Sign) remain valid: VerifySeal accepts both.

// TypeSealBatch is the token type of the JWS of a v2 seal.
const TypeSealBatch = "crossroads-seal-batch+jws"

// SealSeparator joins the parts of a v2 seal.
const SealSeparator = "~"

// MaxSealBatch bounds the seals signed with one signature.
const MaxSealBatch = 256

// maxSealPath bounds the inclusion path VerifySeal accepts (a tree of up to
// 2^64 leaves).
const maxSealPath = 64

// sealBatchClaims is the payload of the JWS of a v2 seal.
type sealBatchClaims struct {
	Version int    `json:"v"`
	Size    uint64 `json:"size"`
	Root    []byte `json:"root"` // RFC 6962 tree hash, base64 in JSON
}

func (sealBatchClaims) jwsType() string { return TypeSealBatch }

// sealProof places a seal's claims in the tree whose root was signed.
type sealProof struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Path  [][]byte `json:"path"` // RFC 6962 inclusion proof, base64 in JSON
}

// SealSigner makes seals (v2) with one ES256 signature per group of
// concurrent callers (flat combining, as the audit log's group commit
// does for receipts). It never waits on purpose: a caller that finds no
// signature in progress signs at once, alone; callers that arrive while one
// is being computed queue, and the first of them then signs for all of them
// (at most MaxSealBatch) when it is done. Safe for concurrent use; the
// underlying Signer may be rotated at any time (a batch is signed by one
// certificate).
type SealSigner struct {
	s *Signer

	mu    sync.Mutex
	busy  bool       // a caller is signing
	queue []*sealReq // waiting for the next signature, oldest first

	seals, signatures atomic.Uint64
}

// NewSealSigner returns a SealSigner signing with s.
func NewSealSigner(s *Signer) *SealSigner { return &SealSigner{s: s} }

// Signer returns the Signer q signs with.
func (q *SealSigner) Signer() *Signer { return q.s }

// Counts returns the seals made and the signatures made for them
// (seals / signatures = mean batch size).
func (q *SealSigner) Counts() (seals, signatures uint64) {
	return q.seals.Load(), q.signatures.Load()
}

// sealReq is one caller's seal. The fields after done are set before done
// is closed (or, for the caller that signs, by itself).
type sealReq struct {
	claims []byte // JSON of the SealClaims: the leaf data
	leaf   []byte // its RFC 6962 leaf hash
	done   chan struct{}

	batch []*sealReq // non-nil: this caller is to sign batch (itself first)
	jws   string
	index int
	size  int
	path  [][]byte
	err   error
}

// newSealReq is the leaf of claims: their JSON and its RFC 6962 hash.
func newSealReq(claims *SealClaims) (*sealReq, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("pki: seal: marshal claims: %w", err)
	}
	return &sealReq{claims: b, leaf: rfc6962.DefaultHasher.HashLeaf(b)}, nil
}

// Seal returns the v2 seal of claims. If ctx is done while the caller
// waits for a signature not yet begun, Seal returns ctx.Err() and the
// others are unaffected; once its claims are being signed (at most one
// signature away) it returns the seal.
func (q *SealSigner) Seal(ctx context.Context, claims SealClaims) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r, err := newSealReq(&claims)
	if err != nil {
		return "", err
	}
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		q.lead([]*sealReq{r})
		return r.token()
	}
	r.done = make(chan struct{})
	q.queue = append(q.queue, r)
	q.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		q.mu.Lock()
		if i := slices.Index(q.queue, r); i >= 0 {
			q.queue = slices.Delete(q.queue, i, i+1)
			q.mu.Unlock()
			return "", ctx.Err()
		}
		q.mu.Unlock()
		// Taken into a batch already: its signature is under way, or this
		// caller is to make it for the others.
		<-r.done
	}
	if r.batch != nil {
		q.lead(r.batch)
	}
	return r.token()
}

// lead signs batch (whose first element is the caller), hands the next
// batch to the oldest waiter, if any, and releases the batch's others.
func (q *SealSigner) lead(batch []*sealReq) {
	q.sign(batch)
	q.handOff(batch[1:])
}

// handOff ends a signature: the oldest waiter, if any, is to sign for the
// waiters (up to MaxSealBatch), then signed is released.
func (q *SealSigner) handOff(signed []*sealReq) {
	q.mu.Lock()
	n := min(len(q.queue), MaxSealBatch)
	var next []*sealReq
	if n == 0 {
		q.busy = false
	} else {
		next = make([]*sealReq, n)
		copy(next, q.queue)
		rest := copy(q.queue, q.queue[n:])
		clear(q.queue[rest:])
		q.queue = q.queue[:rest]
	}
	q.mu.Unlock()
	if next != nil {
		next[0].batch = next
		close(next[0].done)
	}
	for _, r := range signed {
		close(r.done)
	}
}

// sign makes the one signature of batch and gives each its place.
func (q *SealSigner) sign(batch []*sealReq) {
	n := len(batch)
	leaves := make([][]byte, n)
	for i, r := range batch {
		leaves[i] = r.leaf
	}
	paths := make([][][]byte, n)
	if d := batchtree.PathLen(n); d > 0 {
		all := make([][]byte, n*d)
		for i := range paths {
			paths[i] = all[i*d : i*d : (i+1)*d]
		}
	}
	root := batchtree.Root(leaves, paths)
	payload := make([]byte, 0, 64)
	payload = append(payload, `{"v":2,"size":`...)
	payload = strconv.AppendInt(payload, int64(n), 10)
	payload = append(payload, `,"root":"`...)
	payload = base64.StdEncoding.AppendEncode(payload, root)
	payload = append(payload, `"}`...)
	jws, err := q.s.st.Load().sign(TypeSealBatch, payload)
	if err != nil {
		err = fmt.Errorf("pki: seal: %w", err)
	}
	for i, r := range batch {
		r.jws, r.index, r.size, r.path, r.err = jws, i, n, paths[i], err
	}
	q.signatures.Add(1)
	q.seals.Add(uint64(n))
}

// token formats the caller's v2 seal (in its own goroutine).
func (r *sealReq) token() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	enc := base64.RawURLEncoding
	proof := make([]byte, 0, 40+len(r.path)*(base64.StdEncoding.EncodedLen(32)+3))
	proof = append(proof, `{"index":`...)
	proof = strconv.AppendInt(proof, int64(r.index), 10)
	proof = append(proof, `,"size":`...)
	proof = strconv.AppendInt(proof, int64(r.size), 10)
	proof = append(proof, `,"path":[`...)
	for i, h := range r.path {
		if i > 0 {
			proof = append(proof, ',')
		}
		proof = append(proof, '"')
		proof = base64.StdEncoding.AppendEncode(proof, h)
		proof = append(proof, '"')
	}
	proof = append(proof, "]}"...)
	buf := make([]byte, 0, len(r.jws)+2+enc.EncodedLen(len(r.claims))+enc.EncodedLen(len(proof)))
	buf = append(buf, r.jws...)
	buf = append(buf, SealSeparator...)
	buf = enc.AppendEncode(buf, r.claims)
	buf = append(buf, SealSeparator...)
	buf = enc.AppendEncode(buf, proof)
	// buf is never written again: the token shares its bytes (as sign's).
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}

// verifySealBatch checks a v2 seal: the JWS (signature, chain, typ), that
// the claims part with its proof leads to the signed root, and decodes the
// claims into c. It returns the signer's participant id.
func verifySealBatch(token string, roots *x509.CertPool, now time.Time, c *SealClaims) (string, error) {
	if len(token) > MaxTokenLen {
		return "", fmt.Errorf("%w: token too long", ErrInvalidSignature)
	}
	jws, rest, _ := strings.Cut(token, SealSeparator)
	claims64, proof64, ok := strings.Cut(rest, SealSeparator)
	if !ok || strings.Contains(proof64, SealSeparator) {
		return "", fmt.Errorf("%w: not a seal: want three parts", ErrInvalidSignature)
	}
	var b sealBatchClaims
	signer, err := Verify(jws, roots, now, &b)
	if err != nil {
		return "", err
	}
	if b.Version != 2 || b.Size == 0 || len(b.Root) != rfc6962.DefaultHasher.Size() {
		return "", fmt.Errorf("%w: not a version 2 seal batch", ErrInvalidSignature)
	}
	enc := base64.RawURLEncoding.Strict()
	claims, err := enc.DecodeString(claims64)
	if err != nil {
		return "", fmt.Errorf("%w: claims encoding", ErrInvalidSignature)
	}
	pb, err := enc.DecodeString(proof64)
	if err != nil {
		return "", fmt.Errorf("%w: proof encoding", ErrInvalidSignature)
	}
	var p sealProof
	if err := json.Unmarshal(pb, &p); err != nil || p.Size != b.Size || p.Index >= p.Size || len(p.Path) > maxSealPath {
		return "", fmt.Errorf("%w: malformed seal proof", ErrInvalidSignature)
	}
	for _, h := range p.Path {
		if len(h) != rfc6962.DefaultHasher.Size() {
			return "", fmt.Errorf("%w: malformed seal proof", ErrInvalidSignature)
		}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, p.Size, rfc6962.DefaultHasher.HashLeaf(claims), p.Path, b.Root); err != nil {
		// (the library's error would print the hashes)
		return "", fmt.Errorf("%w: seal claims not in the signed batch", ErrInvalidSignature)
	}
	if err := json.Unmarshal(claims, c); err != nil {
		return "", fmt.Errorf("%w: claims: %w", ErrInvalidSignature, err)
	}
	return signer, nil
}

// SealGroup returns the v2 seals of a group whose members are already
// known together — the records of one audit group commit — with one ES256
// signature per MaxSealBatch of them, without queueing behind Seal's
// callers. seals[i] is the seal of claims[i].
func (q *SealSigner) SealGroup(claims []*SealClaims) ([]string, error) {
	out := make([]string, 0, len(claims))
	for len(claims) > 0 {
		n := min(len(claims), MaxSealBatch)
		batch := make([]*sealReq, n)
		for i, c := range claims[:n] {
			r, err := newSealReq(c)
			if err != nil {
				return nil, err
			}
			batch[i] = r
		}
		q.sign(batch)
		for _, r := range batch {
			tok, err := r.token()
			if err != nil {
				return nil, err
			}
			out = append(out, tok)
		}
		claims = claims[n:]
	}
	return out, nil
}
