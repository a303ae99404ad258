package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads"
)

// RecordCertificate implements crossroads.CertificateStore. Recording the
// same certificate again is a no-op; recording a different certificate
// under a known serial fails with crossroads.ErrConflict. Revocation fields
// of c are ignored: revoke with RevokeCertificate.
func (s *Registers) RecordCertificate(ctx context.Context, c crossroads.Certificate) error {
	if err := crossroads.ValidSerial(c.Serial); err != nil {
		return fmt.Errorf("record certificate: %w", err)
	}
	nb, nbNS := splitTime(c.NotBefore)
	na, naNS := splitTime(c.NotAfter)
	tag, err := s.pool.Exec(ctx, `INSERT INTO certificates(serial, participant, not_before, not_before_ns, not_after, not_after_ns, pem)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(serial) DO NOTHING`,
		c.Serial, c.Participant, nb, nbNS, na, naNS, c.PEM)
	if err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, classify(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// A conflicting insert waited for the other transaction to commit, so
	// this statement (a new snapshot) sees its row.
	var same bool
	if err := s.pool.QueryRow(ctx, `SELECT participant = $2 AND not_before = $3 AND not_before_ns = $4 AND not_after = $5
		AND not_after_ns = $6 AND pem = $7 FROM certificates WHERE serial = $1`,
		c.Serial, c.Participant, nb, nbNS, na, naNS, c.PEM).Scan(&same); err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, classify(err))
	}
	if !same {
		return fmt.Errorf("record certificate %s: another certificate has this serial: %w", c.Serial, crossroads.ErrConflict)
	}
	return nil
}

// RevokeCertificate implements crossroads.CertificateStore. Revocations are
// serialised by a table lock on revocations (readers are not blocked), so
// that revocation sequence numbers are assigned in commit order.
func (s *Registers) RevokeCertificate(ctx context.Context, serial string, at time.Time, reason string) error {
	if err := crossroads.ValidSerial(serial); err != nil {
		return fmt.Errorf("revoke certificate: %w", err)
	}
	if at.IsZero() {
		return fmt.Errorf("revoke certificate %s: %w: revocation time is zero", serial, crossroads.ErrInvalid)
	}
	ts, ns := splitTime(at)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var revoked bool
		switch err := tx.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM certificates WHERE serial = $1 FOR UPDATE`, serial).Scan(&revoked); {
		case errors.Is(err, pgx.ErrNoRows):
			return crossroads.ErrNotFound
		case err != nil:
			return err
		case revoked:
			return nil // revoking twice keeps the first time
		}
		if _, err := tx.Exec(ctx, `UPDATE certificates SET revoked_at = $1, revoked_at_ns = $2, revocation_reason = $3 WHERE serial = $4`,
			ts, ns, reason, serial); err != nil {
			return classify(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO revocations(serial) VALUES ($1)`, serial)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	return nil
}

// Certificates implements crossroads.CertificateStore, ordered by serial.
func (s *Registers) Certificates(ctx context.Context) ([]crossroads.Certificate, error) {
	rows, _ := s.pool.Query(ctx, `SELECT serial, participant, not_before, not_before_ns, not_after, not_after_ns,
		revoked_at, revoked_at_ns, revocation_reason, pem FROM certificates ORDER BY serial`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.Certificate, error) {
		var (
			c            crossroads.Certificate
			nb, na       time.Time
			nbNS, naNS   int16
			rev          *time.Time
			revNS        *int16
			reason, cpem string
		)
		err := r.Scan(&c.Serial, &c.Participant, &nb, &nbNS, &na, &naNS, &rev, &revNS, &reason, &cpem)
		c.NotBefore, c.NotAfter, c.RevokedAt = joinTime(nb, nbNS), joinTime(na, naNS), joinOptTime(rev, revNS)
		c.RevocationReason, c.PEM = reason, cpem
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	return out, nil
}

// RevokedSince implements crossroads.CertificateStore: one indexed range
// read over the revocation sequence. The returned cursor is the sequence of
// the last serial returned, or cursor itself when nothing is new.
func (s *Registers) RevokedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT seq, serial FROM revocations WHERE seq > $1 ORDER BY seq`, cursor)
	defer rows.Close()
	var serials []string
	next := cursor
	for rows.Next() {
		var serial string
		if err := rows.Scan(&next, &serial); err != nil {
			return nil, cursor, fmt.Errorf("revoked since %d: %w", cursor, err)
		}
		serials = append(serials, serial)
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, fmt.Errorf("revoked since %d: %w", cursor, err)
	}
	return serials, next, nil
}
