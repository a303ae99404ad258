package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/spe"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/crossroads-hub/crossroads/store/storetest"
)

func TestRegisters(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{} // same t → same database (the suite's reopen)
	storetest.TestRegisterStore(t, func(t *testing.T) interface {
		crossroads.RegisterStore
		crossroads.CertificateStore
	} {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		s, err := sqlite.OpenRegisters(context.Background(), filepath.Join(dir, "registers.db"))
		if err != nil {
			t.Fatalf("OpenRegisters: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestOpenRegistersUnwritable(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()

	t.Run("missing directory", func(t *testing.T) {
		_, err := sqlite.OpenRegisters(ctx, filepath.Join(base, "nope", "registers.db"))
		if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "data directory") {
			t.Errorf("err = %v, want a data directory error wrapping ErrNotExist", err)
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(base, "plain")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.OpenRegisters(ctx, filepath.Join(file, "registers.db"))
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("err = %v, want 'not a directory'", err)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		dir := filepath.Join(base, "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		if f, err := os.Create(filepath.Join(dir, "x")); err == nil {
			f.Close()
			t.Skip("the directory is writable anyway (running as root?)")
		}
		_, err := sqlite.OpenRegisters(ctx, filepath.Join(dir, "registers.db"))
		if err == nil || !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("err = %v, want 'not writable' wrapping ErrPermission", err)
		}
	})
	t.Run("database is a directory", func(t *testing.T) {
		dir := filepath.Join(base, "dbdir")
		if err := os.MkdirAll(filepath.Join(dir, "registers.db"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.OpenRegisters(ctx, filepath.Join(dir, "registers.db"))
		if err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("err = %v, want 'not writable'", err)
		}
	})
}

// TestOpenRegistersOddPath: '?', '#' and '%' in the path are file name
// characters, not URI syntax.
func TestOpenRegistersOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "registers.db")
	s, err := sqlite.OpenRegisters(context.Background(), file)
	if err != nil {
		t.Fatalf("OpenRegisters: %v", err)
	}
	defer s.Close()
	if err := s.Apply(context.Background(), &crossroads.Network{Participants: []crossroads.Participant{{ID: "p", Kind: "operator", Status: "active"}}}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Errorf("database not at %s: %v", file, err)
	}
}

func TestSPEStore(t *testing.T) {
	storetest.TestSPEStore(t, func(t *testing.T) spe.Store {
		s, err := sqlite.OpenSPE(context.Background(), filepath.Join(t.TempDir(), "spe.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
