package postgres_test

import (
	"context"
	"sync"
	"testing"

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
