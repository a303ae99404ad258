//go:build !unix

package witness

import "os"

// lockFile is a no-op where flock is unavailable; the caller must ensure a
// single process uses the directory.
func lockFile(*os.File) error { return nil }
