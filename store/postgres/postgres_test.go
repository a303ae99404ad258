package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

// schemas gives each (sub)test its own schema in db, the same one when
// the suite reopens with the same t.
func schemas(db *pgtest.DB) func(t *testing.T) string {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = db.Schema(t)
			dsns[t] = dsn
		}
		return dsn
	}
}

func TestRegisters(t *testing.T) {
	dsn := schemas(pgtest.New(t))
	storetest.TestRegisterStore(t, func(t *testing.T) interface {
		crossroads.RegisterStore
		crossroads.CertificateStore
	} {
		s, err := postgres.OpenRegisters(context.Background(), dsn(t))
		if err != nil {
			t.Fatalf("OpenRegisters: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAudit(t *testing.T) {
	dsn := schemas(pgtest.New(t))
	storetest.TestAuditStore(t, func(t *testing.T) audit.Store {
		s, err := postgres.OpenAudit(context.Background(), dsn(t))
		if err != nil {
			t.Fatalf("OpenAudit: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConcurrentOpen: several hub nodes starting together on an empty
// database apply each migration once and all start.
func TestConcurrentOpen(t *testing.T) {
	db := pgtest.New(t)
	dsn := db.Schema(t)
	ctx := context.Background()
	const nodes = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*nodes)
	for range nodes {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s, err := postgres.OpenRegisters(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			s, err := postgres.OpenAudit(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT schema || '/' || name FROM schema_migrations ORDER BY schema, version`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// Every embedded migration, once (read from the source tree, so that
	// new migrations need no edit here).
	var want []string
	for _, schema := range []string{"audit", "registers"} {
		files, err := filepath.Glob(filepath.Join("migrations", schema, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			want = append(want, schema+"/"+filepath.Base(f))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

func partitions(t *testing.T, dsn string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_records'::regclass ORDER BY 1`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPartitions: the current and next month exist after opening; other
// months are created on demand, also by two nodes racing for the same one.
func TestPartitions(t *testing.T) {
	db := pgtest.New(t)
	dsn := db.Schema(t)
	ctx := context.Background()
	a, err := postgres.OpenAudit(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	now := time.Now().UTC()
	next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	name := func(t time.Time) string { return fmt.Sprintf("audit_records_y%04dm%02d", t.Year(), int(t.Month())) }
	if got, want := partitions(t, dsn), []string{name(now), name(next)}; !slices.Equal(got, want) {
		t.Errorf("partitions after open = %v, want %v", got, want)
	}
	b, err := postgres.OpenAudit(ctx, dsn) // a second node
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	old := time.Date(2010, 5, 17, 8, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*postgres.AuditStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InsertBatch(ctx, []*audit.Row{{ExchangeID: fmt.Sprintf("old-%d", i), Time: old, Requester: "r", Outcome: "allowed",
				Period: "2010-05-17", Nonce: []byte{1}, Ciphertext: []byte{2}, Leaf: []byte{3}}})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("InsertBatch of a new month on two nodes: %v", err)
	}
	if got := partitions(t, dsn); !slices.Contains(got, "audit_records_y2010m05") || len(got) != 3 {
		t.Errorf("partitions = %v, want audit_records_y2010m05 added", got)
	}
	rows, err := a.Search(ctx, audit.StoreQuery{To: old.AddDate(0, 1, 0)})
	if err != nil || len(rows) != 2 {
		t.Errorf("Search of the old month = %d rows, %v", len(rows), err)
	}
}

// TestRevocationOrder: concurrent revocations (several nodes) never let a
// poller's cursor pass a revocation it has not returned.
func TestRevocationOrder(t *testing.T) {
	db := pgtest.New(t)
	dsn := db.Schema(t)
	ctx := context.Background()
	s, err := postgres.OpenRegisters(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 60
	for i := range n {
		if err := s.RecordCertificate(ctx, crossroads.Certificate{Serial: fmt.Sprintf("%04x", i), Participant: "p",
			NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e9, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	seen := map[string]bool{}
	var pollErr error
	go func() {
		defer close(done)
		var cursor int64
		for polls := 0; len(seen) < n && polls < 100000; polls++ {
			serials, next, err := s.RevokedSince(ctx, cursor)
			if err != nil {
				pollErr = err
				return
			}
			for _, serial := range serials {
				seen[serial] = true
			}
			cursor = next
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if err := s.RevokeCertificate(ctx, fmt.Sprintf("%04x", i), time.Now(), "keyCompromise"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	<-done
	if pollErr != nil {
		t.Fatal(pollErr)
	}
	if len(seen) != n {
		t.Errorf("poller saw %d of %d revocations", len(seen), n)
	}
}

// TestInvalidData: what PostgreSQL refuses but Go allows (a NUL byte, a
// time beyond its range) is ErrInvalid, not an opaque error.
func TestInvalidData(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	s, err := postgres.OpenRegisters(ctx, db.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Apply(ctx, &crossroads.Network{Participants: []crossroads.Participant{{ID: "p\x00", Kind: "operator", Status: "active"}}})
	if !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("NUL in an id: %v, want ErrInvalid", err)
	}
	if err := s.Apply(ctx, &crossroads.Network{Participants: []crossroads.Participant{{ID: "p", Kind: "operator", Status: "active"}}}); err != nil {
		t.Fatal(err)
	}
	far := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
	err = s.PutIntegration(ctx, crossroads.Integration{Person: "x", Participant: "p", Sector: "1", Capacity: "c", From: far})
	if !errors.Is(err, crossroads.ErrInvalid) {
		t.Errorf("time beyond PostgreSQL's range: %v, want ErrInvalid", err)
	}
}

func TestAuditRefusesAsyncCommit(t *testing.T) {
	db := pgtest.New(t)
	dsn := db.Schema(t)
	async, err := pgtest.WithParams(dsn, db.Name, map[string]string{"synchronous_commit": "off"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.OpenAudit(context.Background(), async); err == nil {
		s.Close()
		t.Error("OpenAudit with synchronous_commit=off succeeded")
	}
}
