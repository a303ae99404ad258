package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
)

// readPermits fills in the kind and terms of the authorisations that are
// data permits (migration 0007), in the read transaction of Registers.
func readPermits(ctx context.Context, tx pgx.Tx, as []crossroads.Authorisation) error {
	rows, err := tx.Query(ctx, `SELECT authorisation, kind, terms FROM permits`)
	if err != nil {
		return fmt.Errorf("permits: %w", err)
	}
	defer rows.Close()
	index := make(map[string]int, len(as))
	for i := range as {
		index[as[i].ID] = i
	}
	for rows.Next() {
		var id, kind, terms string
		if err := rows.Scan(&id, &kind, &terms); err != nil {
			return fmt.Errorf("permits: %w", err)
		}
		i, ok := index[id]
		if !ok {
			continue
		}
		as[i].Kind = kind
		if terms != "null" {
			if err := json.Unmarshal([]byte(terms), &as[i].Permit); err != nil {
				return fmt.Errorf("permit %s: %w", id, err)
			}
		}
	}
	return rows.Err()
}

// putPermits writes the kind and terms of the authorisations of an apply:
// a row for each one with a kind, none for the others.
func putPermits(ctx context.Context, tx pgx.Tx, as []crossroads.Authorisation) error {
	for _, a := range as {
		if _, err := tx.Exec(ctx, `DELETE FROM permits WHERE authorisation = $1`, a.ID); err != nil {
			return fmt.Errorf("permit %q: %w", a.ID, err)
		}
		if a.Kind == "" {
			if a.Permit != nil {
				return fmt.Errorf("authorisation %q: %w: permit terms without kind %q", a.ID, crossroads.ErrInvalid, crossroads.KindDataPermit)
			}
			continue
		}
		terms, err := json.Marshal(a.Permit)
		if err != nil {
			return fmt.Errorf("permit %q: %w", a.ID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO permits(authorisation, kind, terms) VALUES ($1, $2, $3)`, a.ID, a.Kind, string(terms)); err != nil {
			return fmt.Errorf("permit %q: %w", a.ID, classify(err))
		}
	}
	return nil
}
