package postgres_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestBatch(t *testing.T) {
	db := pgtest.New(t)
	storetest.TestBatchStore(t, func(t *testing.T) batch.Store {
		s, err := postgres.OpenBatch(context.Background(), db.Schema(t))
		if err != nil {
			t.Fatalf("OpenBatch: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
