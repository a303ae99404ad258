package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	nb, err1 := encTime(c.NotBefore)
	na, err2 := encTime(c.NotAfter)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, err)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO certificates(serial, participant, not_before, not_after, pem) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(serial) DO NOTHING`, c.Serial, c.Participant, nb, na, c.PEM)
	if err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, constraintErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("record certificate %s: %w", c.Serial, err)
	} else if n == 0 {
		var same bool
		if err := tx.QueryRowContext(ctx, `SELECT participant = ? AND not_before = ? AND not_after = ? AND pem = ? FROM certificates WHERE serial = ?`,
			c.Participant, nb, na, c.PEM, c.Serial).Scan(&same); err != nil {
			return fmt.Errorf("record certificate %s: %w", c.Serial, err)
		}
		if !same {
			return fmt.Errorf("record certificate %s: another certificate has this serial: %w", c.Serial, crossroads.ErrConflict)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record certificate %s: commit: %w", c.Serial, err)
	}
	return nil
}

// RevokeCertificate implements crossroads.CertificateStore.
func (s *Registers) RevokeCertificate(ctx context.Context, serial string, at time.Time, reason string) error {
	if err := crossroads.ValidSerial(serial); err != nil {
		return fmt.Errorf("revoke certificate: %w", err)
	}
	if at.IsZero() {
		return fmt.Errorf("revoke certificate %s: %w: revocation time is zero", serial, crossroads.ErrInvalid)
	}
	ts, err := encTime(at)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	defer tx.Rollback()
	var revoked sql.NullString
	switch err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM certificates WHERE serial = ?`, serial).Scan(&revoked); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("revoke certificate %s: %w", serial, crossroads.ErrNotFound)
	case err != nil:
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	case revoked.Valid:
		return nil // revoking twice keeps the first time
	}
	if _, err := tx.ExecContext(ctx, `UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?`, ts, reason, serial); err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revocations(serial) VALUES (?)`, serial); err != nil {
		return fmt.Errorf("revoke certificate %s: %w", serial, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke certificate %s: commit: %w", serial, err)
	}
	return nil
}

// Certificates implements crossroads.CertificateStore, ordered by serial.
func (s *Registers) Certificates(ctx context.Context) ([]crossroads.Certificate, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT serial, participant, not_before, not_after, revoked_at, revocation_reason, pem
		FROM certificates ORDER BY serial`)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	defer rows.Close()
	var out []crossroads.Certificate
	for rows.Next() {
		var (
			c      crossroads.Certificate
			nb, na string
			rev    sql.NullString
		)
		if err := rows.Scan(&c.Serial, &c.Participant, &nb, &na, &rev, &c.RevocationReason, &c.PEM); err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
		var e1, e2, e3 error
		c.NotBefore, e1 = decTime(nb)
		c.NotAfter, e2 = decTime(na)
		c.RevokedAt, e3 = decOptTime(rev)
		if err := errors.Join(e1, e2, e3); err != nil {
			return nil, fmt.Errorf("certificates: %s: %w", c.Serial, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	return out, nil
}

// RevokedSince implements crossroads.CertificateStore: one indexed range
// read over the revocation sequence. The returned cursor is the sequence of
// the last serial returned, or cursor itself when nothing is new.
func (s *Registers) RevokedSince(ctx context.Context, cursor int64) ([]string, int64, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT seq, serial FROM revocations WHERE seq > ? ORDER BY seq`, cursor)
	if err != nil {
		return nil, cursor, fmt.Errorf("revoked since %d: %w", cursor, err)
	}
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
