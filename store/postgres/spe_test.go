package postgres_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/spe"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestSPEStore(t *testing.T) {
	db := pgtest.New(t)
	storetest.TestSPEStore(t, func(t *testing.T) spe.Store {
		s, err := postgres.OpenSPE(context.Background(), db.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
