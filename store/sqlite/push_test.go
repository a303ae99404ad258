package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/push/outbox"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestPushConformance(t *testing.T) {
	storetest.TestPushStore(t, func(t *testing.T) outbox.Store {
		s, err := sqlite.OpenPush(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSubscriptionsConformance(t *testing.T) {
	s, err := sqlite.OpenRegisters(context.Background(), filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.TestSubscriptions(t, s)
}
