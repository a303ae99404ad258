package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/keys/keystest"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// TestNodesShareTheHierarchy: two nodes on one PostgreSQL database and one
// provider write records of the same day, and each reads and finds (by
// subject) the other's — the data key, its KEK and the index key are the
// deployment's, not a node's.
func TestNodesShareTheHierarchy(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	pdir := t.TempDir()
	day := time.Now().UTC().Truncate(time.Hour)
	node := func(name string) *audit.Trail {
		st, err := postgres.OpenAudit(ctx, db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		kr, err := keys.Open(ctx, fileProvider(t, pdir), st)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := audit.Open(ctx, audit.Config{Dir: t.TempDir(), Store: st, KeyProvider: kr, MaxMergeDelay: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close(context.Background()) })
		return tr
	}
	a, b := node("a"), node("b")
	commit := func(tr *audit.Trail, id, subject string) {
		t.Helper()
		if _, err := tr.Commit(ctx, &crossroads.AuditRecord{ExchangeID: id, Time: day, Requester: "inst-a", Subject: subject,
			Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}); err != nil {
			t.Fatalf("commit %s: %v", id, err)
		}
	}
	commit(a, "from-a", "85073003328")
	commit(b, "from-b", "85073003328") // the day key node A created
	for _, tr := range []*audit.Trail{a, b} {
		p, err := tr.Search(ctx, audit.Query{Subject: "85073003328"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != 2 {
			t.Fatalf("a node finds %d of the 2 records of the subject", len(p.Records))
		}
	}
	// A rotation of the index key rewrites every record's index (the
	// PostgreSQL store's Reindexer).
	key := make([]byte, 32)
	key[0] = 1
	if n, err := a.Reindex(ctx, key); err != nil || n != 2 {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	if p, err := a.Search(ctx, audit.Query{Subject: "85073003328"}); err != nil || len(p.Records) != 2 {
		t.Fatalf("after reindexing: %v, %v", p, err)
	}
	if p, err := b.Search(ctx, audit.Query{Subject: "85073003328"}); err != nil || len(p.Records) != 0 {
		t.Fatalf("a node still on the old index key finds %v, %v", p, err)
	}
}

func TestPostgresStore(t *testing.T) {
	st, err := postgres.OpenAudit(context.Background(), pgtest.New(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keystest.Store(t, st)
}
