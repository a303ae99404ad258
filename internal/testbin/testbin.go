// Package testbin builds the crossroads binary once per test process, for
// tests that run the hub as a child process (crash, cluster, backup).
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	out  []byte
	err  error
)

// Build returns the path of a crossroads binary built from this module,
// building it on the first call; it fails t if the build fails.
func Build(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		var dir string
		if dir, err = os.MkdirTemp("", "crossroads-bin-"); err != nil {
			return
		}
		path = filepath.Join(dir, "crossroads")
		out, err = exec.Command("go", "build", "-o", path, "github.com/crossroads-hub/crossroads/cmd/crossroads").CombinedOutput()
	})
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return path
}
