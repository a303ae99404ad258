package audit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/internal/batchtree"
)

// receiptContext separates receipt signatures from checkpoint signatures
// made with the same note key: a checkpoint's first line is the log's
// origin, which is the note key's name, and a note key name cannot contain
// a space; this line does, so no receipt signature is a checkpoint's.
const receiptContext = "crossroads receipt v2\n"

// ReceiptClaims is what a receipt states: the hub promises that the leaf
// with LeafHash, committing to the record of ExchangeID, will be in the log
// named Log within MaxMergeDelay of Time.
type ReceiptClaims struct {
	Version       int       `json:"v"`
	Log           string    `json:"log"`
	ExchangeID    string    `json:"exchangeId"`
	LeafHash      []byte    `json:"leafHash"` // RFC 6962 leaf hash, base64 in JSON
	Time          time.Time `json:"time"`     // when the record became durable
	MaxMergeDelay int64     `json:"mmd"`      // seconds
}

// receiptBatch places one receipt's claims in the batch the hub signed.
type receiptBatch struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Root  []byte   `json:"root"` // RFC 6962 tree hash of the batch, base64 in JSON
	Path  [][]byte `json:"path"` // RFC 6962 inclusion proof, base64 in JSON
}

// A receipt token is three base64url parts joined by dots:
//
//	claims . batch . signature
//
// claims is the JSON of ReceiptClaims; its RFC 6962 leaf hash is a leaf of
// a small Merkle tree over every receipt of one group commit; batch gives
// the leaf's index, the tree size, its root and the inclusion path (checkable
// with tlog.CheckRecord or any RFC 6962 library); the signature is the
// log's note key (Ed25519) over
//
//	"crossroads receipt v2\n" <size> "\n" <base64 root> "\n"
//
// One signature per group commit instead of one per exchange: the path is
// what makes each receipt checkable on its own, with any RFC 6962 library.
//
// signReceipts makes the receipts of one durable batch.
func signReceipts(s note.Signer, claims []*ReceiptClaims) ([]string, error) {
	n := len(claims)
	payloads := make([][]byte, n)
	leaves := make([][]byte, n)
	for i, c := range claims {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("audit: receipt: %w", err)
		}
		payloads[i] = b
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(b)
	}
	paths := make([][][]byte, n)
	root := batchtree.Root(leaves, paths)
	sig, err := s.Sign(receiptMessage(uint64(n), root))
	if err != nil {
		return nil, fmt.Errorf("audit: sign receipts: %w", err)
	}
	sig64 := base64.RawURLEncoding.EncodeToString(sig)
	out := make([]string, n)
	for i := range claims {
		p := paths[i]
		if p == nil {
			p = [][]byte{}
		}
		b, err := json.Marshal(receiptBatch{Index: uint64(i), Size: uint64(n), Root: root, Path: p})
		if err != nil {
			return nil, fmt.Errorf("audit: receipt: %w", err)
		}
		out[i] = base64.RawURLEncoding.EncodeToString(payloads[i]) + "." + base64.RawURLEncoding.EncodeToString(b) + "." + sig64
	}
	return out, nil
}

func receiptMessage(size uint64, root []byte) []byte {
	return []byte(receiptContext + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n")
}

// VerifyReceipt checks a receipt token against the log's note verifier key
// (as served at /v1/log/key) and returns its claims.
func VerifyReceipt(token, verifierKey string) (*ReceiptClaims, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("audit: malformed receipt")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("audit: malformed receipt claims: %w", err)
	}
	bb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("audit: malformed receipt batch: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("audit: malformed receipt signature: %w", err)
	}
	var b receiptBatch
	if err := json.Unmarshal(bb, &b); err != nil || b.Size == 0 || b.Index >= b.Size || len(b.Path) > 64 {
		return nil, errors.New("audit: malformed receipt batch")
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, b.Index, b.Size, rfc6962.DefaultHasher.HashLeaf(payload), b.Path, b.Root); err != nil {
		return nil, fmt.Errorf("audit: receipt inclusion path: %w", err)
	}
	if !v.Verify(receiptMessage(b.Size, b.Root), sig) {
		return nil, errors.New("audit: receipt signature invalid")
	}
	var c ReceiptClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("audit: malformed receipt claims: %w", err)
	}
	if c.Version != 2 || c.Log != v.Name() || len(c.LeafHash) != 32 {
		return nil, errors.New("audit: receipt is not a version 2 receipt of this log")
	}
	return &c, nil
}
