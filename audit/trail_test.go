package audit_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

func TestCommitDurableEncrypted(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			if _, err := e.trail.Commit(ctx, testRecord(i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	row, err := e.store.Get(ctx, "ex-000007")
	if err != nil {
		t.Fatal(err)
	}
	if row.Requester != "inst-a" || len(row.Nonce) != 32 || len(row.SubjectIndex) != 32 {
		t.Fatalf("row = %+v", row)
	}
	// The subject appears nowhere in clear in the database files.
	for _, f := range []string{"audit.db", "audit.db-wal"} {
		b, err := os.ReadFile(dir + "/" + f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if contains(b, []byte("85073003307")) || contains(b, []byte("DEL-24/123")) {
			t.Fatalf("%s holds personal data in clear", f)
		}
	}
	// A duplicate exchange id is refused.
	if _, err := e.trail.Commit(ctx, testRecord(7)); !errors.Is(err, crossroads.ErrConflict) {
		t.Fatalf("duplicate: err = %v, want ErrConflict", err)
	}
	if _, err := e.trail.Commit(ctx, &crossroads.AuditRecord{}); !errors.Is(err, crossroads.ErrInvalid) {
		t.Fatalf("empty record: err = %v, want ErrInvalid", err)
	}
}

func TestCommitStoreFailure(t *testing.T) {
	e := open(t, t.TempDir())
	commitN(t, e.trail, 0, 3)
	e.store.Close() // the database goes away under the trail
	if _, err := e.trail.Commit(context.Background(), testRecord(10)); err == nil {
		t.Fatal("Commit succeeded with the store closed")
	}
}

func TestReceipt(t *testing.T) {
	e := open(t, t.TempDir())
	rs := commitN(t, e.trail, 0, 1)
	c, err := audit.VerifyReceipt(rs[0].Token, e.trail.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if c.ExchangeID != "ex-000000" || c.Log != e.trail.Origin() {
		t.Fatalf("claims = %+v", c)
	}
	bad := []byte(rs[0].Token)
	bad[5] ^= 1
	if _, err := audit.VerifyReceipt(string(bad), e.trail.VerifierKey()); err == nil {
		t.Fatal("tampered receipt verified")
	}
	other := open(t, t.TempDir())
	if _, err := audit.VerifyReceipt(rs[0].Token, other.trail.VerifierKey()); err == nil {
		t.Fatal("receipt verified under another key")
	}
}

func contains(b, sub []byte) bool {
	return len(sub) > 0 && len(b) >= len(sub) && (string(b) != "" && indexOf(b, sub) >= 0)
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}
