package audit_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
)

// smallFS mounts a tmpfs of size bytes for the test, or skips when the
// machine does not allow it (not root, no mount permission).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("disk-full test: needs root to mount a small file system")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("disk-full test: cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func logTemps(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && audit.IsLogTemp(filepath.Dir(path), e.Name()) {
			n++
		}
		return nil
	})
	return n
}

// removedCounter counts the trail's "orphan temporary files removed" logs.
type removedCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h removedCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "orphan temporary files removed") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "files" {
				h.n.Add(a.Value.Int64())
			}
			return true
		})
	}
	return nil
}
func (h removedCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h removedCounter) Enabled(context.Context, slog.Level) bool { return true }

// TestDiskFull: the public log's file system fills up while records keep
// coming (they are durable in the store, elsewhere). Tessera's failed
// writes leave temporary files, which the trail removes instead of letting
// them accumulate; when space returns, the log catches up by itself, and a
// restart finds no orphan left.
func TestDiskFull(t *testing.T) {
	logFS := smallFS(t, "1m")
	ctx := context.Background()
	var removed atomic.Int64
	// Tessera warns through slog.Default of each file it fails to remove.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	fk := mustFileKeys(t, filepath.Join(t.TempDir(), "keys"))
	mods := func(c *audit.Config) {
		c.Dir = logFS
		c.KeyProvider = fk
		c.Logger = slog.New(removedCounter{Handler: slog.DiscardHandler, n: &removed})
		audit.SetTempMinAge(c, 200*time.Millisecond)
	}
	storeDir := t.TempDir()
	e := open(t, storeDir, mods)
	commitN(t, e.trail, 0, 10)
	waitSize(t, e.trail, 10)
	if n := logTemps(t, logFS); n != 0 {
		t.Fatalf("%d files of a healthy log taken for temporary files", n)
	}

	filler := filepath.Join(logFS, "filler")
	fill(t, filler)
	commitN(t, e.trail, 10, 50) // durable in the store; the log cannot take them
	time.Sleep(3 * time.Second) // many failed integration passes
	n := logTemps(t, logFS)
	t.Logf("disk full: %d orphan temporary files removed, %d present", removed.Load(), n)
	if n > 10 {
		t.Fatalf("%d orphan temporary files in the log directory", n)
	}
	if removed.Load() == 0 {
		t.Fatal("no orphan temporary file was removed: did the writes fail?")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitSize(t, e.trail, 60) // recovers by itself
	rep, err := e.trail.Check(ctx)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check after recovery: %+v, %v", rep, err)
	}
	e.close()
	time.Sleep(300 * time.Millisecond)
	e = open(t, storeDir, mods)
	if n := logTemps(t, logFS); n != 0 {
		t.Fatalf("%d orphan temporary files after a restart", n)
	}
	commitN(t, e.trail, 60, 1)
	waitSize(t, e.trail, 61)
}

func mustFileKeys(t *testing.T, dir string) *audit.FileKeys {
	t.Helper()
	fk, err := audit.OpenFileKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fk
}
