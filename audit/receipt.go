package audit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// receiptContext separates receipt signatures from checkpoint signatures
// made with the same note key: a checkpoint's second line is a decimal
// tree size, never this.
const receiptContext = "crossroads-receipt/v1\n"

// ReceiptClaims is the statement a receipt signs: the hub promises that the
// leaf with LeafHash, committing to the record of ExchangeID, will be in
// the log named Log within MaxMergeDelay of Time.
type ReceiptClaims struct {
	Version       int       `json:"v"`
	Log           string    `json:"log"`
	ExchangeID    string    `json:"exchangeId"`
	LeafHash      []byte    `json:"leafHash"` // RFC 6962 leaf hash, base64 in JSON
	Time          time.Time `json:"time"`     // when the record became durable
	MaxMergeDelay int64     `json:"mmd"`      // seconds
}

// signReceipt returns the compact token base64url(JSON) "." base64url(sig).
func signReceipt(s note.Signer, c *ReceiptClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("audit: receipt: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	sig, err := s.Sign([]byte(receiptContext + p))
	if err != nil {
		return "", fmt.Errorf("audit: sign receipt: %w", err)
	}
	return p + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifyReceipt checks a receipt token against the log's note verifier key
// (as served at /v1/log/key) and returns its claims.
func VerifyReceipt(token, verifierKey string) (*ReceiptClaims, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errors.New("audit: malformed receipt")
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("audit: malformed receipt signature: %w", err)
	}
	if !v.Verify([]byte(receiptContext+p), sig) {
		return nil, errors.New("audit: receipt signature invalid")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("audit: malformed receipt payload: %w", err)
	}
	var c ReceiptClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("audit: malformed receipt payload: %w", err)
	}
	if c.Version != 1 || c.Log != v.Name() || len(c.LeafHash) != 32 {
		return nil, errors.New("audit: receipt is not a version 1 receipt of this log")
	}
	return &c, nil
}
