package sqlite_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"

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

// BenchmarkEFGSUpload5000 stores one full batch (5,000 keys, duplicate
// check included) per iteration.
func BenchmarkEFGSUpload5000(b *testing.B) {
	s, err := sqlite.OpenEFGS(context.Background(), filepath.Join(b.TempDir(), sqlite.EFGSFile))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		u := crossroads.EFGSUpload{Tag: fmt.Sprint("b", n), Country: "DE", At: time.Now(), Keys: make([]crossroads.EFGSKey, 5000)}
		for i := range u.Keys {
			h := sha256.Sum256(fmt.Appendf(nil, "%d-%d", n, i))
			u.Keys[i] = crossroads.EFGSKey{Hash: h[:], Origin: "DE", Proto: h[:]}
		}
		n++
		if _, err := s.Upload(context.Background(), u); err != nil {
			b.Fatal(err)
		}
	}
}
