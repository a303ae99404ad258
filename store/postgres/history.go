package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
)

// ChangeIntegration implements crossroads.RegisterStore. The registers'
// version is held FOR SHARE until commit: an apply replacing it waits, and
// a change that waited for an apply sees the new version and fails.
func (s *Registers) ChangeIntegration(ctx context.Context, ev crossroads.IntegrationEvent, version int64) (crossroads.IntegrationEvent, error) {
	in := ev.Integration
	from, fromNS := splitTime(in.From)
	to, toNS := splitOptTime(in.To)
	ev.At = time.Now().UTC()
	at, atNS := splitTime(ev.At)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkVersion(ctx, tx, version, false); err != nil {
			return err
		}
		switch ev.Action {
		case crossroads.IntegrationRegister:
			if _, err := tx.Exec(ctx, `INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_from_ns,
				valid_to, valid_to_ns, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				in.Person, in.Participant, in.Sector, in.Capacity, from, fromNS, to, toNS, encKind(in.Kind)); err != nil {
				return fmt.Errorf("of %q: %w", in.Participant, classify(err))
			}
		case crossroads.IntegrationEnd, crossroads.IntegrationCorrect:
			tag, err := tx.Exec(ctx, `UPDATE integrations SET valid_to = $1, valid_to_ns = $2 WHERE person = $3 AND participant = $4
				AND sector = $5 AND capacity = $6 AND valid_from = $7 AND valid_from_ns = $8 AND kind = $9`,
				to, toNS, in.Person, in.Participant, in.Sector, in.Capacity, from, fromNS, encKind(in.Kind))
			if err != nil {
				return fmt.Errorf("of %q: %w", in.Participant, classify(err))
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("of %q: %w", in.Participant, crossroads.ErrNotFound)
			}
		default:
			return fmt.Errorf("%w: action %q", crossroads.ErrInvalid, ev.Action)
		}
		return tx.QueryRow(ctx, `INSERT INTO integration_history(action, kind, person, participant, sector, capacity,
			valid_from, valid_from_ns, valid_to, valid_to_ns, actor, user_name, at, at_ns)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq`,
			ev.Action, encKind(in.Kind), in.Person, in.Participant, in.Sector, in.Capacity, from, fromNS, to, toNS,
			ev.Actor, ev.User, at, atNS).Scan(&ev.Seq)
	})
	if err != nil {
		return ev, fmt.Errorf("change integration: %w", err)
	}
	return ev, nil
}

// IntegrationHistory implements crossroads.RegisterStore.
func (s *Registers) IntegrationHistory(ctx context.Context, q crossroads.HistoryQuery) ([]crossroads.IntegrationEvent, error) {
	where, args := []string{"seq > $1"}, []any{q.After}
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" = $"+strconv.Itoa(len(args)))
	}
	if q.Person != "" {
		arg("person", q.Person)
		arg("kind", encKind(q.Kind))
	}
	if q.Participant != "" {
		arg("participant", q.Participant)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT seq, action, kind, person, participant, sector, capacity, valid_from, valid_from_ns,
		valid_to, valid_to_ns, actor, user_name, at, at_ns FROM integration_history WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("integration history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.IntegrationEvent, error) {
		var (
			ev           crossroads.IntegrationEvent
			from, at     time.Time
			fromNS, atNS int16
			to           *time.Time
			toNS         *int16
		)
		in := &ev.Integration
		if err := r.Scan(&ev.Seq, &ev.Action, &in.Kind, &in.Person, &in.Participant, &in.Sector, &in.Capacity, &from, &fromNS,
			&to, &toNS, &ev.Actor, &ev.User, &at, &atNS); err != nil {
			return ev, err
		}
		in.Kind = decKind(in.Kind)
		in.From, in.To, ev.At = joinTime(from, fromNS), joinOptTime(to, toNS), joinTime(at, atNS)
		return ev, nil
	})
	if err != nil {
		return nil, fmt.Errorf("integration history: %w", err)
	}
	return out, nil
}
