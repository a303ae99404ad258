package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestEFGS(t *testing.T) {
	storetest.TestEFGSStore(t, func(t *testing.T) storetest.EFGSStore {
		s, err := sqlite.OpenEFGS(context.Background(), filepath.Join(t.TempDir(), sqlite.EFGSFile))
		if err != nil {
			t.Fatalf("OpenEFGS: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
