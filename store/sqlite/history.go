package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// ChangeIntegration implements crossroads.RegisterStore. SQLite has one
// writer, so the version read in the transaction cannot change before it
// commits.
func (s *Registers) ChangeIntegration(ctx context.Context, ev crossroads.IntegrationEvent, version int64) (crossroads.IntegrationEvent, error) {
	in := ev.Integration
	from, err1 := encTime(in.From)
	to, err2 := encOptTime(in.To)
	if err := errors.Join(err1, err2); err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	ev.At = time.Now().UTC()
	at, err := encTime(ev.At)
	if err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	defer tx.Rollback()
	if err := checkVersion(ctx, tx, version, false); err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	switch ev.Action {
	case crossroads.IntegrationRegister:
		_, err = tx.ExecContext(ctx, `INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_to, kind)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, in.Person, in.Participant, in.Sector, in.Capacity, from, to, encKind(in.Kind))
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return ev, fmt.Errorf("change integration of %q: %w: already registered", in.Participant, crossroads.ErrConflict)
		}
	case crossroads.IntegrationEnd, crossroads.IntegrationCorrect:
		var res sql.Result
		res, err = tx.ExecContext(ctx, `UPDATE integrations SET valid_to = ? WHERE person = ? AND participant = ? AND sector = ?
			AND capacity = ? AND valid_from = ? AND kind = ?`, to, in.Person, in.Participant, in.Sector, in.Capacity, from, encKind(in.Kind))
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				return ev, fmt.Errorf("change integration of %q: %w", in.Participant, crossroads.ErrNotFound)
			}
		}
	default:
		return ev, fmt.Errorf("change integration: %w: action %q", crossroads.ErrInvalid, ev.Action)
	}
	if err != nil {
		return ev, fmt.Errorf("change integration of %q: %w", in.Participant, constraintErr(err))
	}
	if err := addHistory(ctx, tx, ev, at); err != nil {
		return ev, fmt.Errorf("change integration: history: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT last_insert_rowid()`).Scan(&ev.Seq); err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return ev, fmt.Errorf("change integration: commit: %w", err)
	}
	return ev, nil
}

// IntegrationHistory implements crossroads.RegisterStore.
func (s *Registers) IntegrationHistory(ctx context.Context, q crossroads.HistoryQuery) ([]crossroads.IntegrationEvent, error) {
	where, args := []string{"seq > ?"}, []any{q.After}
	if q.Person != "" {
		where, args = append(where, "person = ?", "kind = ?"), append(args, q.Person, encKind(q.Kind))
	}
	if q.Participant != "" {
		where, args = append(where, "participant = ?"), append(args, q.Participant)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT seq, action, kind, person, participant, sector, capacity, valid_from, valid_to,
		actor, user_name, at FROM integration_history WHERE `+strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("integration history: %w", err)
	}
	defer rows.Close()
	var out []crossroads.IntegrationEvent
	for rows.Next() {
		var (
			ev       crossroads.IntegrationEvent
			from, at string
			to       sql.NullString
		)
		in := &ev.Integration
		if err := rows.Scan(&ev.Seq, &ev.Action, &in.Kind, &in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &to,
			&ev.Actor, &ev.User, &at); err != nil {
			return nil, fmt.Errorf("integration history: %w", err)
		}
		in.Kind = decKind(in.Kind)
		if in.From, err = decTime(from); err == nil {
			if in.To, err = decOptTime(to); err == nil {
				ev.At, err = decTime(at)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("integration history: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integration history: %w", err)
	}
	return out, nil
}
