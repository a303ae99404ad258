package audit_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
)

// TestBatchReceipts: receipts of records committed together share one
// signature, and each still verifies on its own; a receipt moved to
// another place in the batch, or given another's claims, does not.
func TestBatchReceipts(t *testing.T) {
	e := open(t, t.TempDir())
	rs := commitParallel(t, e.trail, 0, 200)
	seen := map[string]bool{}
	shared := false
	for _, r := range rs {
		c, err := audit.VerifyReceipt(r.Token, e.trail.VerifierKey())
		if err != nil {
			t.Fatalf("%s: %v", r.ExchangeID, err)
		}
		if c.ExchangeID != r.ExchangeID {
			t.Fatalf("receipt of %s names %s", r.ExchangeID, c.ExchangeID)
		}
		sig := r.Token[strings.LastIndex(r.Token, ".")+1:]
		if seen[sig] {
			shared = true
		}
		seen[sig] = true
	}
	if !shared {
		t.Log("every receipt had its own signature: no batch of more than one record formed")
	}

	// Find a receipt from a batch of at least two and tamper with its place.
	for _, r := range rs {
		parts := strings.Split(r.Token, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var b struct {
			Index, Size uint64
			Path        [][]byte
		}
		json.Unmarshal(raw, &b)
		if b.Size < 2 {
			continue
		}
		b.Index = (b.Index + 1) % b.Size
		moved, _ := json.Marshal(map[string]any{"index": b.Index, "size": b.Size, "path": b.Path})
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(moved) + "." + parts[2]
		if _, err := audit.VerifyReceipt(forged, e.trail.VerifierKey()); err == nil {
			t.Fatal("a receipt moved within its batch still verified")
		}
		for _, o := range rs {
			op := strings.Split(o.Token, ".")
			if op[0] != parts[0] && op[2] == parts[2] {
				swapped := op[0] + "." + parts[1] + "." + parts[2]
				if _, err := audit.VerifyReceipt(swapped, e.trail.VerifierKey()); err == nil {
					t.Fatal("another record's claims verified with this receipt's path")
				}
				return
			}
		}
		return
	}
	if shared {
		t.Fatal("no receipt from a batch of two or more found")
	}
}
