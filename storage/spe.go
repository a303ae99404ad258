package storage

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/crossroads-hub/crossroads/spe"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// SPEFile is the embedded secure-processing database in the data directory.
const SPEFile = "spe.db"

// SPEDir is where the workspaces are, one directory each (always in the
// data directory: their contents are sealed files, not rows).
func SPEDir(dir string) string { return filepath.Join(dir, "spe") }

// SPEStore is the secure-processing store.
type SPEStore interface {
	spe.Store
	Close() error
}

// OpenSPE opens the secure-processing store of o (PostgreSQL when
// o.DatabaseURL is set, else spe.db in o.Dir), creating it.
func OpenSPE(ctx context.Context, o Options) (SPEStore, error) {
	if o.Dir == "" {
		return nil, errors.New("storage: no data directory")
	}
	if o.DatabaseURL != "" {
		return postgres.OpenSPE(ctx, o.DatabaseURL)
	}
	return sqlite.OpenSPE(ctx, filepath.Join(o.Dir, SPEFile))
}
