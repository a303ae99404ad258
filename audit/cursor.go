package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Page tokens are opaque and tamper-proof: the sequence number to continue
// below, followed by an HMAC (under the trail's index key, in a domain of
// its own) over that number and the query the page belongs to. A token
// thus only continues the query it came from: it cannot be forged, nor
// moved to another subject's or another filter's results, and since every
// page re-applies the query's filters it never shows a record the query
// would not. Tokens do not expire; a token of erased records just finds
// fewer.

const cursorMAC = 16 // bytes of HMAC kept

// binding is the canonical form of what a page token is bound to.
func (q *Query) binding() string {
	var b strings.Builder
	for _, s := range []string{q.Participant, q.Service, q.SubjectKind, q.Subject, q.Purpose, q.Outcome, strings.Join(q.Kinds, ",")} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, t := range []time.Time{q.From, q.To} {
		if !t.IsZero() {
			b.WriteString(t.UTC().Format(time.RFC3339Nano))
		}
		b.WriteByte(0)
	}
	return b.String()
}

func (t *Trail) cursorMAC(binding string, seq int64) []byte {
	m := hmac.New(sha256.New, t.indexKey)
	m.Write([]byte("crossroads-audit-cursor:"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write([]byte(binding))
	return m.Sum(nil)[:cursorMAC]
}

// pageToken returns the token continuing q below seq.
func (t *Trail) pageToken(q *Query, seq int64) string {
	b := make([]byte, 8, 8+cursorMAC)
	binary.BigEndian.PutUint64(b, uint64(seq))
	b = append(b, t.cursorMAC(q.binding(), seq)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parsePageToken checks a token against q and returns its sequence number.
func (t *Trail) parsePageToken(q *Query, tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 8+cursorMAC {
		return 0, fmt.Errorf("audit: bad page token: %w", crossroads.ErrInvalid)
	}
	seq := int64(binary.BigEndian.Uint64(b))
	if seq <= 0 || !hmac.Equal(b[8:], t.cursorMAC(q.binding(), seq)) {
		return 0, fmt.Errorf("audit: bad page token: %w", crossroads.ErrInvalid)
	}
	return seq, nil
}
