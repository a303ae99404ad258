package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Tessera v1.0.4's POSIX driver writes every file through a temporary file
// named after its target plus random digits ("checkpoint1234567",
// "tile/0/0011234567"); when the write fails (a full disk), createTemp
// means to remove it, but its deferred os.Remove runs after the named
// result was set to "" by the return, so the file stays: one orphan per
// failed write (storage/posix/file_ops.go, createTemp). cleanLogTemp removes
// them, at start and after a failed pass. The bug is Tessera's and should be
// reported upstream (see docs/operations.md).

// tempMinAge is how old an orphan must be before it is removed while the
// log runs: a temporary file in use lives for one write.
const tempMinAge = 30 * time.Second

// stateFiles are the log's own files that are not tiles or bundles.
var stateFiles = []string{"checkpoint", "treeState", "gcState", "version"}

// isLogTemp tells whether name, a file in the log directory, is one of
// Tessera's temporary files: a known file name followed by digits, or, in
// tile and bundle directories (whose files are 3-digit indexes, or in
// NNN.p/ directories partial widths 1 to 255), a digit string that is no
// such name.
func isLogTemp(dir, name string) bool {
	for _, s := range stateFiles {
		if rest, ok := strings.CutPrefix(name, s); ok {
			return rest != "" && allDigits(rest)
		}
	}
	if !allDigits(name) {
		return false
	}
	if strings.HasSuffix(dir, ".p") {
		w, err := strconv.Atoi(name)
		return err != nil || w < 1 || w > 255 || strconv.Itoa(w) != name
	}
	return len(name) != 3
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cleanLogTemp removes the orphan temporary files older than minAge under
// the log directory root and returns how many it removed.
func cleanLogTemp(root string, minAge time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-minAge)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() || !isLogTemp(filepath.Dir(path), e.Name()) {
			return nil
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	return n, err
}
