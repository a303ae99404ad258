package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// LeafVersion is the first byte of every leaf.
const LeafVersion = 1

// LeafSize is the length of a leaf: version (1) ‖ hour (8) ‖ commitment (32).
const LeafSize = 1 + 8 + 32

// Canonical returns the canonical bytes of rec: its JSON encoding with the
// time in UTC. The commitment and the ciphertext are over these bytes.
func Canonical(rec *crossroads.AuditRecord) ([]byte, error) {
	r := *rec
	r.Time = r.Time.UTC()
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	return b, nil
}

// Commitment is the hiding commitment SHA-256(nonce ‖ canonical).
func Commitment(nonce, canonical []byte) [32]byte {
	h := sha256.New()
	h.Write(nonce)
	h.Write(canonical)
	var c [32]byte
	h.Sum(c[:0])
	return c
}

// Leaf builds the leaf data of a record: a version byte, the record time
// truncated to the hour (Unix seconds, big-endian), and the commitment. It
// holds no personal data.
func Leaf(t time.Time, commitment [32]byte) []byte {
	b := make([]byte, LeafSize)
	b[0] = LeafVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(t.UTC().Truncate(time.Hour).Unix()))
	copy(b[9:], commitment[:])
	return b
}

// ParseLeaf splits leaf data into its hour and commitment.
func ParseLeaf(leaf []byte) (hour time.Time, commitment [32]byte, err error) {
	if len(leaf) != LeafSize || leaf[0] != LeafVersion {
		return time.Time{}, commitment, errors.New("audit: not a version 1 leaf")
	}
	hour = time.Unix(int64(binary.BigEndian.Uint64(leaf[1:9])), 0).UTC()
	copy(commitment[:], leaf[9:])
	return hour, commitment, nil
}

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 ‖ leaf), as in the tree.
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// blindIndex is the keyed blind index of a canonical subject id of a kind.
// The kind is part of what is indexed (crossroads.SubjectKey: a person's
// id as is, any other kind's as "kind:id"), so a person and an enterprise
// whose ids are written alike never find each other's records.
func blindIndex(key []byte, kind, subject string) []byte {
	if subject == "" {
		return nil
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("crossroads-audit-subject:"))
	m.Write([]byte(crossroads.SubjectKey(kind, subject)))
	return m.Sum(nil)
}

// period names the data key of a record time: one key per UTC day.
func period(t time.Time) string { return t.UTC().Format("2006-01-02") }

// recordAAD binds a ciphertext to its exchange.
func recordAAD(exchangeID string) []byte { return []byte("crossroads-audit-record:" + exchangeID) }
