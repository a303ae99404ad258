package storage

import (
	"context"

	"github.com/crossroads-hub/crossroads/push/outbox"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// PushStore is the outbox of mutation push.
type PushStore interface {
	outbox.Store
	Close() error
}

// OpenPush opens the outbox of mutation push: push.db in the data
// directory dir (created if missing), or, with databaseURL, the push tables
// in PostgreSQL, shared by every hub node.
func OpenPush(ctx context.Context, dir, databaseURL string) (PushStore, error) {
	if databaseURL != "" {
		s, err := postgres.OpenPush(ctx, databaseURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := sqlite.OpenPush(ctx, dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}
