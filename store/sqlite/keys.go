package sqlite

import (
	"context"
	"fmt"
	"time"

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
		q += ` WHERE kind = ?`
		args = append(args, kind)
	}
	rs, err := s.c.w.QueryContext(ctx, q+` ORDER BY kind, version`, args...)
	if err != nil {
		return nil, fmt.Errorf("wrapped keys: %w", err)
	}
	defer rs.Close()
	var out []keys.Wrapped
	for rs.Next() {
		var w keys.Wrapped
		var created int64
		if err := rs.Scan(&w.Kind, &w.Version, &w.ProviderKey, &w.Wrapped, &w.Public, &created); err != nil {
			return nil, fmt.Errorf("wrapped keys: %w", err)
		}
		w.Created = time.UnixMicro(created).UTC()
		out = append(out, w)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("wrapped keys: %w", err)
	}
	return out, nil
}

// PutWrappedKey implements keys.Store.
func (s *AuditStore) PutWrappedKey(ctx context.Context, w keys.Wrapped) (bool, error) {
	res, err := s.c.w.ExecContext(ctx, `INSERT INTO wrapped_keys(kind, version, provider_key, wrapped, public, created)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, version) DO NOTHING`,
		w.Kind, w.Version, w.ProviderKey, w.Wrapped, w.Public, w.Created.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("put wrapped key %s: %w", w.Kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put wrapped key %s: %w", w.Kind, err)
	}
	return n == 1, nil
}

// ReplaceWrappedKey implements keys.Store.
func (s *AuditStore) ReplaceWrappedKey(ctx context.Context, w keys.Wrapped) error {
	res, err := s.c.w.ExecContext(ctx, `UPDATE wrapped_keys SET provider_key = ?, wrapped = ? WHERE kind = ? AND version = ?`,
		w.ProviderKey, w.Wrapped, w.Kind, w.Version)
	if err != nil {
		return fmt.Errorf("replace wrapped key %s: %w", w.Kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("replace wrapped key %s v%d: %w", w.Kind, w.Version, keys.ErrNotFound)
	}
	return nil
}

// DeleteWrappedKey implements keys.Store (secure_delete zeroes the freed
// bytes).
func (s *AuditStore) DeleteWrappedKey(ctx context.Context, kind string, version int) error {
	if _, err := s.c.w.ExecContext(ctx, `DELETE FROM wrapped_keys WHERE kind = ? AND version = ?`, kind, version); err != nil {
		return fmt.Errorf("delete wrapped key %s: %w", kind, err)
	}
	return nil
}

// SetSubjectIndexes implements audit.Reindexer.
func (s *AuditStore) SetSubjectIndexes(ctx context.Context, ups []audit.IndexUpdate) (err error) {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit reindex: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	st, err := tx.PrepareContext(ctx, `UPDATE audit_records SET subject_index = ? WHERE seq = ? AND erased_at IS NULL`)
	if err != nil {
		return fmt.Errorf("audit reindex: %w", err)
	}
	defer st.Close()
	for _, u := range ups {
		if _, err := st.ExecContext(ctx, u.SubjectIndex, u.Row.Seq); err != nil {
			return fmt.Errorf("audit reindex: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit reindex: %w", err)
	}
	return nil
}
