package postgres_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestEFGS(t *testing.T) {
	dsn := schemas(pgtest.New(t))
	storetest.TestEFGSStore(t, func(t *testing.T) storetest.EFGSStore {
		s, err := postgres.OpenEFGS(context.Background(), dsn(t))
		if err != nil {
			t.Fatalf("OpenEFGS: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
