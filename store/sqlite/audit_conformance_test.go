package sqlite_test

import (
	"context"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{} // same t → same database (the suite's reopen)
	storetest.TestAuditStore(t, func(t *testing.T) audit.Store {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		s, err := sqlite.OpenAudit(context.Background(), dir)
		if err != nil {
			t.Fatalf("OpenAudit: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
