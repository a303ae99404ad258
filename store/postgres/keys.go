package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
)

var (
	_ keys.Store      = (*AuditStore)(nil)
	_ audit.Reindexer = (*AuditStore)(nil)
)

// WrappedKeys implements keys.Store.
func (s *AuditStore) WrappedKeys(ctx context.Context, kind string) ([]keys.Wrapped, error) {
	q := `SELECT kind, version, provider_key, wrapped, public, created FROM wrapped_keys`
	var args []any
	if kind != "" {
		q += ` WHERE kind = $1`
		args = append(args, kind)
	}
	rows, _ := s.pool.Query(ctx, q+` ORDER BY kind, version`, args...)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keys.Wrapped, error) {
		var w keys.Wrapped
		err := r.Scan(&w.Kind, &w.Version, &w.ProviderKey, &w.Wrapped, &w.Public, &w.Created)
		w.Created = w.Created.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("wrapped keys: %w", classify(err))
	}
	return out, nil
}

// PutWrappedKey implements keys.Store.
func (s *AuditStore) PutWrappedKey(ctx context.Context, w keys.Wrapped) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO wrapped_keys(kind, version, provider_key, wrapped, public, created)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(kind, version) DO NOTHING`,
		w.Kind, w.Version, w.ProviderKey, w.Wrapped, w.Public, w.Created)
	if err != nil {
		return false, fmt.Errorf("put wrapped key %s: %w", w.Kind, classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReplaceWrappedKey implements keys.Store.
func (s *AuditStore) ReplaceWrappedKey(ctx context.Context, w keys.Wrapped) error {
	tag, err := s.pool.Exec(ctx, `UPDATE wrapped_keys SET provider_key = $1, wrapped = $2 WHERE kind = $3 AND version = $4`,
		w.ProviderKey, w.Wrapped, w.Kind, w.Version)
	if err != nil {
		return fmt.Errorf("replace wrapped key %s: %w", w.Kind, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("replace wrapped key %s v%d: %w", w.Kind, w.Version, keys.ErrNotFound)
	}
	return nil
}

// DeleteWrappedKey implements keys.Store.
func (s *AuditStore) DeleteWrappedKey(ctx context.Context, kind string, version int) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM wrapped_keys WHERE kind = $1 AND version = $2`, kind, version); err != nil {
		return fmt.Errorf("delete wrapped key %s: %w", kind, classify(err))
	}
	return nil
}

// SetSubjectIndexes implements audit.Reindexer.
func (s *AuditStore) SetSubjectIndexes(ctx context.Context, ups []audit.IndexUpdate) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range ups {
			b.Queue(`UPDATE audit_records SET subject_index = $1 WHERE seq = $2 AND time = $3 AND octet_length(ciphertext) > 0`,
				u.SubjectIndex, u.Row.Seq, u.Row.Time)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("audit reindex: %w", classify(err))
	}
	return nil
}
