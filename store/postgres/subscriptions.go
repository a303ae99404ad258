package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
)

// The subscription table (registers/0006): read with the other registers,
// written by Apply after the services and authorisations it refers to.

func readSubscriptions(ctx context.Context, tx pgx.Tx) ([]crossroads.Subscription, error) {
	rows, err := tx.Query(ctx, `SELECT id, subscriber, service, operation, purpose, capacities::text, delivery, endpoint, status
		FROM subscriptions ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	defer rows.Close()
	var out []crossroads.Subscription
	for rows.Next() {
		var s crossroads.Subscription
		var caps string
		if err := rows.Scan(&s.ID, &s.Subscriber, &s.Service, &s.Operation, &s.Purpose, &caps, &s.Delivery, &s.Endpoint, &s.Status); err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		if caps != "null" {
			if err := json.Unmarshal([]byte(caps), &s.Capacities); err != nil {
				return nil, fmt.Errorf("subscription %s capacities: %w", s.ID, err)
			}
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	return out, nil
}

func putSubscriptions(ctx context.Context, tx pgx.Tx, subs []crossroads.Subscription) error {
	for _, s := range subs {
		caps, err := json.Marshal(s.Capacities)
		if err != nil {
			return fmt.Errorf("subscription %q: encode: %w", s.ID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions(id, subscriber, service, operation, purpose, capacities, delivery, endpoint, status)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)
			ON CONFLICT(id) DO UPDATE SET subscriber = excluded.subscriber, service = excluded.service, operation = excluded.operation,
			purpose = excluded.purpose, capacities = excluded.capacities, delivery = excluded.delivery, endpoint = excluded.endpoint,
			status = excluded.status`,
			s.ID, s.Subscriber, s.Service, s.Operation, s.Purpose, string(caps), s.Delivery, s.Endpoint, s.Status); err != nil {
			return fmt.Errorf("subscription %q: %w", s.ID, classify(err))
		}
	}
	return nil
}
