package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// IntegrationChanges implements crossroads.RegisterStore.
func (s *Registers) IntegrationChanges(ctx context.Context, after int64, limit int) ([]crossroads.IntegrationChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, deleted, kind
		FROM integration_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("integration changes: %w", err)
	}
	defer rows.Close()
	var out []crossroads.IntegrationChange
	for rows.Next() {
		var (
			c      crossroads.IntegrationChange
			from   time.Time
			fromNS int16
			to     *time.Time
			toNS   *int16
		)
		in := &c.Integration
		if err := rows.Scan(&c.Seq, &in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &fromNS, &to, &toNS, &c.Deleted, &in.Kind); err != nil {
			return nil, fmt.Errorf("integration changes: %w", err)
		}
		in.Kind = decKind(in.Kind)
		in.From, in.To = joinTime(from, fromNS), joinOptTime(to, toNS)
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
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM integration_changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last integration change: %w", err)
	}
	return seq, nil
}

// PruneIntegrationChanges implements crossroads.RegisterStore.
func (s *Registers) PruneIntegrationChanges(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM integration_changes WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune integration changes: %w", err)
	}
	return tag.RowsAffected(), nil
}
