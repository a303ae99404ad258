package storage

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// BatchStore is the batch consultation store.
type BatchStore = batch.Store

var (
	_ BatchStore = (*sqlite.BatchStore)(nil)
	_ BatchStore = (*postgres.BatchStore)(nil)
)

// OpenBatch opens the batch store: batch.db in the data directory dir, or
// schema batch of the PostgreSQL database at databaseURL (shared by every
// node), creating it if needed.
func OpenBatch(ctx context.Context, dir, databaseURL string) (BatchStore, error) {
	if databaseURL != "" {
		s, err := postgres.OpenBatch(ctx, databaseURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if dir == "" {
		return nil, errors.New("storage: no data directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create data directory: %w", err)
	}
	s, err := sqlite.OpenBatch(ctx, dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}
