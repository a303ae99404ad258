package audit_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/pki"
)

// Concurrent callers share group commits: the caller that finds no commit
// in progress writes, the others join the next one.
func TestGroupCommitShares(t *testing.T) {
	e := open(t, t.TempDir())
	const n = 640
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				if _, err := e.trail.Commit(context.Background(), testRecord(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := e.trail.Stats()
	if st.Records != n {
		t.Fatalf("%d records made durable, want %d", st.Records, n)
	}
	if st.Batches >= n/2 {
		t.Errorf("%d commits for %d records from 64 callers: the group commit does not group", st.Batches, n)
	}
	var commits int64
	for _, c := range st.Commit.Counts {
		commits += c
	}
	if commits != st.Batches {
		t.Errorf("commit latency counts %d commits, stats %d", commits, st.Batches)
	}
}

// A record is either durable with a receipt or refused with ErrClosed,
// however Close and Commit interleave; Close returns once every accepted
// record is written.
func TestCloseWhileCommitting(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir)
	const n = 400
	var wg sync.WaitGroup
	ok := make([]bool, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				r, err := e.trail.Commit(context.Background(), testRecord(i))
				switch {
				case err == nil && r.Token != "":
					ok[i] = true
				case errors.Is(err, audit.ErrClosed):
				default:
					t.Errorf("commit %d: receipt %q, err %v", i, r.Token, err)
				}
			}
		})
	}
	for e.trail.Stats().Records < n/4 {
		runtime.Gosched()
	}
	if err := e.trail.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	durable := e.trail.Stats().Records
	wg.Wait()
	accepted := 0
	for i, k := range ok {
		if !k {
			continue
		}
		accepted++
		if _, err := e.store.Get(context.Background(), testRecord(i).ExchangeID); err != nil {
			t.Errorf("record %d has a receipt but is not in the store: %v", i, err)
		}
	}
	if int64(accepted) != durable {
		t.Errorf("%d receipts, %d records durable when Close returned", accepted, durable)
	}
}

type failingSealer struct{}

func (failingSealer) SealGroup([]*pki.SealClaims) ([]string, error) {
	return nil, errors.New("the HSM is gone")
}

// countingSealer signs nothing real: it counts the groups it is asked for.
type countingSealer struct {
	mu     sync.Mutex
	groups int
}

func (c *countingSealer) SealGroup(cs []*pki.SealClaims) ([]string, error) {
	c.mu.Lock()
	c.groups++
	c.mu.Unlock()
	out := make([]string, len(cs))
	for i, cl := range cs {
		out[i] = "seal-of-" + cl.ExchangeID
	}
	return out, nil
}

// The seals of one group commit are signed together, each caller gets its
// own.
func TestCommitSealedOneGroupPerCommit(t *testing.T) {
	cs := &countingSealer{}
	e := open(t, t.TempDir(), func(c *audit.Config) { c.Sealer = cs })
	var wg sync.WaitGroup
	const n = 256
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				rec := testRecord(i)
				_, seal, err := e.trail.CommitSealed(context.Background(), rec, &pki.SealClaims{ExchangeID: rec.ExchangeID})
				if err != nil || seal != "seal-of-"+rec.ExchangeID {
					t.Errorf("record %d: seal %q, err %v", i, seal, err)
				}
			}
		})
	}
	wg.Wait()
	if b := e.trail.Stats().Batches; int64(cs.groups) != b {
		t.Errorf("%d seal groups for %d group commits", cs.groups, b)
	}
	if cs.groups >= n/2 {
		t.Errorf("%d seal groups for %d records from 32 callers", cs.groups, n)
	}
	// A plain Commit asks for no seal.
	if _, err := e.trail.Commit(context.Background(), testRecord(n)); err != nil {
		t.Fatal(err)
	}
}

// A seal that cannot be signed leaves the record durable, with its
// receipt, and says so: the caller releases nothing.
func TestCommitSealedSealFails(t *testing.T) {
	e := open(t, t.TempDir(), func(c *audit.Config) { c.Sealer = failingSealer{} })
	rec := testRecord(1)
	r, seal, err := e.trail.CommitSealed(context.Background(), rec, &pki.SealClaims{ExchangeID: rec.ExchangeID})
	if !errors.Is(err, crossroads.ErrNotSealed) || seal != "" {
		t.Fatalf("seal %q, err %v; want ErrNotSealed", seal, err)
	}
	if r.Token == "" {
		t.Error("no receipt for a durable record")
	}
	if _, err := e.store.Get(context.Background(), rec.ExchangeID); err != nil {
		t.Errorf("the record is not durable: %v", err)
	}
}

func TestCommitSealedNeedsSealer(t *testing.T) {
	e := open(t, t.TempDir())
	if _, _, err := e.trail.CommitSealed(context.Background(), testRecord(1), &pki.SealClaims{}); err == nil {
		t.Fatal("CommitSealed without a Sealer succeeded")
	}
}
