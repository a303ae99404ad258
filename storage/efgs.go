package storage

import (
	"context"
	"path/filepath"

	"github.com/crossroads-hub/crossroads/efgs"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// OpenEFGS opens the federation gateway's store: the efgs tables of the
// PostgreSQL database at databaseURL when given (shared by every node),
// else efgs.db in the data directory dir (created if missing).
func OpenEFGS(ctx context.Context, dir, databaseURL string) (efgs.Store, error) {
	if databaseURL != "" {
		return postgres.OpenEFGS(ctx, databaseURL)
	}
	return sqlite.OpenEFGS(ctx, filepath.Join(dir, sqlite.EFGSFile))
}
