package postgres_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/push/outbox"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestPushConformance(t *testing.T) {
	db := pgtest.New(t)
	storetest.TestPushStore(t, func(t *testing.T) outbox.Store {
		s, err := postgres.OpenPush(context.Background(), db.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSubscriptionsConformance(t *testing.T) {
	db := pgtest.New(t)
	s, err := postgres.OpenRegisters(context.Background(), db.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.TestSubscriptions(t, s)
}
