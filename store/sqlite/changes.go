package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// IntegrationChanges implements crossroads.RegisterStore.
func (s *Registers) IntegrationChanges(ctx context.Context, after int64, limit int) ([]crossroads.IntegrationChange, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT seq, person, participant, sector, capacity, valid_from, valid_to, deleted, kind
		FROM integration_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("integration changes: %w", err)
	}
	defer rows.Close()
	var out []crossroads.IntegrationChange
	for rows.Next() {
		var (
			c    crossroads.IntegrationChange
			from string
			to   sql.NullString
		)
		in := &c.Integration
		if err := rows.Scan(&c.Seq, &in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &to, &c.Deleted, &in.Kind); err != nil {
			return nil, fmt.Errorf("integration changes: %w", err)
		}
		in.Kind = decKind(in.Kind)
		if in.From, err = decTime(from); err != nil {
			return nil, fmt.Errorf("integration changes: %w", err)
		}
		if in.To, err = decOptTime(to); err != nil {
			return nil, fmt.Errorf("integration changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integration changes: %w", err)
	}
	return out, nil
}

// LastIntegrationChange implements crossroads.RegisterStore.
func (s *Registers) LastIntegrationChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.c.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM integration_changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last integration change: %w", err)
	}
	return seq, nil
}

// PruneIntegrationChanges implements crossroads.RegisterStore.
func (s *Registers) PruneIntegrationChanges(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.c.w.ExecContext(ctx, `DELETE FROM integration_changes WHERE at < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune integration changes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune integration changes: %w", err)
	}
	return n, nil
}
