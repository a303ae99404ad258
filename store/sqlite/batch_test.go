package sqlite_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestBatchConformance(t *testing.T) {
	storetest.TestBatchStore(t, func(t *testing.T) batch.Store {
		s, err := sqlite.OpenBatch(context.Background(), t.TempDir())
		if err != nil {
			t.Fatalf("OpenBatch: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
