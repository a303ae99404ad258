package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
)

// EFGS is the federation gateway's store (efgs.Store) in PostgreSQL,
// shared by every hub node.
type EFGS struct {
	pool *pgxpool.Pool
}

// efgsUploadLock serialises uploads (pg_advisory_xact_lock): a day's
// batch numbers count without gaps or races across nodes.
const efgsUploadLock int64 = 0x6566677375706c64 // "efgsupld"

// OpenEFGS connects and migrates the efgs schema.
func OpenEFGS(ctx context.Context, dsn string) (*EFGS, error) {
	pool, err := openPool(ctx, dsn, "efgs")
	if err != nil {
		return nil, err
	}
	return &EFGS{pool: pool}, nil
}

// Close closes the pool.
func (s *EFGS) Close() error { s.pool.Close(); return nil }

const efgsCertColumns = `thumbprint, country, type, pem, host, signature, created_at, revoked_at`

func scanEFGSCert(sc interface{ Scan(...any) error }) (crossroads.EFGSCertificate, error) {
	var (
		c       crossroads.EFGSCertificate
		revoked *time.Time
	)
	if err := sc.Scan(&c.Thumbprint, &c.Country, &c.Type, &c.PEM, &c.Host, &c.Signature, &c.CreatedAt, &revoked); err != nil {
		return c, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if revoked != nil {
		c.RevokedAt = revoked.UTC()
	}
	return c, nil
}

// PutCertificate implements efgs.Store.
func (s *EFGS) PutCertificate(ctx context.Context, c crossroads.EFGSCertificate) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO efgs_certificates(`+efgsCertColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
		ON CONFLICT(thumbprint) DO UPDATE SET country = excluded.country, type = excluded.type, pem = excluded.pem,
		host = excluded.host, signature = excluded.signature, created_at = excluded.created_at, revoked_at = NULL`,
		c.Thumbprint, c.Country, c.Type, c.PEM, c.Host, c.Signature, c.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("put efgs certificate %s: %w", c.Thumbprint, classify(err))
	}
	return nil
}

// RevokeCertificate implements efgs.Store.
func (s *EFGS) RevokeCertificate(ctx context.Context, thumbprint string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE efgs_certificates SET revoked_at = COALESCE(revoked_at, $1) WHERE thumbprint = $2`, at.UTC(), thumbprint)
	if err != nil {
		return fmt.Errorf("revoke efgs certificate %s: %w", thumbprint, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke efgs certificate %s: %w", thumbprint, crossroads.ErrNotFound)
	}
	return nil
}

// Certificate implements efgs.Store.
func (s *EFGS) Certificate(ctx context.Context, thumbprint string) (crossroads.EFGSCertificate, error) {
	c, err := scanEFGSCert(s.pool.QueryRow(ctx, `SELECT `+efgsCertColumns+` FROM efgs_certificates WHERE thumbprint = $1`, thumbprint))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("efgs certificate %s: %w", thumbprint, crossroads.ErrNotFound)
	}
	return c, err
}

// Certificates implements efgs.Store.
func (s *EFGS) Certificates(ctx context.Context) ([]crossroads.EFGSCertificate, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+efgsCertColumns+` FROM efgs_certificates ORDER BY country, type, thumbprint`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.EFGSCertificate, error) { return scanEFGSCert(r) })
	if err != nil {
		return nil, fmt.Errorf("efgs certificates: %w", err)
	}
	return out, nil
}

// Upload implements efgs.Store.
func (s *EFGS) Upload(ctx context.Context, u crossroads.EFGSUpload) (crossroads.EFGSBatch, error) {
	b := crossroads.EFGSBatch{UploadTag: u.Tag, Country: u.Country, UploaderThumbprint: u.UploaderThumbprint,
		SigningThumbprint: u.SigningThumbprint, Signature: u.Signature, Amount: len(u.Keys), CreatedAt: u.At.UTC()}
	b.Day = b.CreatedAt.Format(time.DateOnly)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, efgsUploadLock); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM efgs_batches WHERE upload_tag = $1)`, u.Tag).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("%s: %w", u.Tag, crossroads.ErrConflict)
		}
		hashes := make([][]byte, len(u.Keys))
		for i, k := range u.Keys {
			hashes[i] = k.Hash
		}
		rows, _ := tx.Query(ctx, `SELECT hash FROM efgs_keys WHERE hash = ANY($1)`, hashes)
		found, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return fmt.Errorf("duplicates: %w", err)
		}
		known := make(map[string]bool, len(found))
		for _, h := range found {
			known[string(h)] = true
		}
		if dup := splitDuplicates(u.Keys, known); dup != nil {
			return dup
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM efgs_batches WHERE day = $1`, b.Day).Scan(&b.Seq); err != nil {
			return err
		}
		b.Tag = fmt.Sprintf("%s-%d", strings.ReplaceAll(b.Day, "-", ""), b.Seq)
		if _, err := tx.Exec(ctx, `INSERT INTO efgs_batches(tag, day, seq, created_at, upload_tag, country, uploader_thumbprint,
			signing_thumbprint, signature, content_type, amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			b.Tag, b.Day, b.Seq, b.CreatedAt, u.Tag, u.Country, u.UploaderThumbprint, u.SigningThumbprint, u.Signature, u.ContentType, len(u.Keys)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE efgs_batches SET next_tag = $1 WHERE day = $2 AND seq = $3`, b.Tag, b.Day, b.Seq-1); err != nil {
			return fmt.Errorf("link: %w", err)
		}
		rowsIn := make([][]any, len(u.Keys))
		for i, k := range u.Keys {
			rowsIn[i] = []any{b.Tag, i, k.Hash, k.Origin, k.Proto}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"efgs_keys"}, []string{"batch_tag", "idx", "hash", "origin", "proto"}, pgx.CopyFromRows(rowsIn)); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO efgs_callback_tasks(country, callback_id, batch_tag, not_before)
			SELECT country, id, $1, $2 FROM efgs_callbacks`, b.Tag, b.CreatedAt); err != nil {
			return fmt.Errorf("callbacks: %w", err)
		}
		return nil
	})
	if err != nil {
		var dup *crossroads.EFGSDuplicateKeys
		if errors.As(err, &dup) {
			return b, dup
		}
		return b, fmt.Errorf("efgs upload: %w", classify(err))
	}
	return b, nil
}

// splitDuplicates sorts the keys into fresh and duplicate (stored already,
// or seen earlier in the batch); nil if none is a duplicate.
func splitDuplicates(keys []crossroads.EFGSKey, known map[string]bool) *crossroads.EFGSDuplicateKeys {
	d := &crossroads.EFGSDuplicateKeys{Fresh: []int{}, Duplicate: []int{}}
	for i, k := range keys {
		if known[string(k.Hash)] {
			d.Duplicate = append(d.Duplicate, i)
			continue
		}
		known[string(k.Hash)] = true
		d.Fresh = append(d.Fresh, i)
	}
	if len(d.Duplicate) == 0 {
		return nil
	}
	return d
}

// UploadExists implements efgs.Store.
func (s *EFGS) UploadExists(ctx context.Context, tag string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM efgs_batches WHERE upload_tag = $1)`, tag).Scan(&ok)
	return ok, err
}

// FirstBatch implements efgs.Store.
func (s *EFGS) FirstBatch(ctx context.Context, day string) (string, error) {
	var tag string
	err := s.pool.QueryRow(ctx, `SELECT tag FROM efgs_batches WHERE day = $1 ORDER BY seq LIMIT 1`, day).Scan(&tag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("efgs batches of %s: %w", day, crossroads.ErrNotFound)
	}
	return tag, err
}

// Batch implements efgs.Store.
func (s *EFGS) Batch(ctx context.Context, tag string) (crossroads.EFGSBatch, error) {
	var b crossroads.EFGSBatch
	err := s.pool.QueryRow(ctx, `SELECT tag, day, seq, next_tag, created_at, upload_tag, country, uploader_thumbprint,
		signing_thumbprint, signature, amount FROM efgs_batches WHERE tag = $1`, tag).Scan(&b.Tag, &b.Day, &b.Seq, &b.Next, &b.CreatedAt,
		&b.UploadTag, &b.Country, &b.UploaderThumbprint, &b.SigningThumbprint, &b.Signature, &b.Amount)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("efgs batch %s: %w", tag, crossroads.ErrNotFound)
	}
	b.CreatedAt = b.CreatedAt.UTC()
	return b, err
}

// BatchKeys implements efgs.Store.
func (s *EFGS) BatchKeys(ctx context.Context, tag, exclude string) ([]crossroads.EFGSKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT hash, origin, proto FROM efgs_keys WHERE batch_tag = $1 AND origin <> $2 ORDER BY idx`, tag, exclude)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.EFGSKey, error) {
		var k crossroads.EFGSKey
		err := r.Scan(&k.Hash, &k.Origin, &k.Proto)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("efgs batch %s keys: %w", tag, err)
	}
	return out, nil
}

// Erase implements efgs.Store.
func (s *EFGS) Erase(ctx context.Context, day string) (batches, keys int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t, err := tx.Exec(ctx, `DELETE FROM efgs_keys WHERE batch_tag IN (SELECT tag FROM efgs_batches WHERE day < $1)`, day)
		if err != nil {
			return err
		}
		keys = t.RowsAffected()
		if t, err = tx.Exec(ctx, `DELETE FROM efgs_batches WHERE day < $1`, day); err != nil {
			return err
		}
		batches = t.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("efgs erase: %w", classify(err))
	}
	return batches, keys, nil
}

// PutCallback implements efgs.Store.
func (s *EFGS) PutCallback(ctx context.Context, c crossroads.EFGSCallback) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO efgs_callbacks(country, id, url) VALUES ($1, $2, $3)
		ON CONFLICT(country, id) DO UPDATE SET url = excluded.url, failures = 0`, c.Country, c.ID, c.URL)
	if err != nil {
		return fmt.Errorf("put efgs callback %s/%s: %w", c.Country, c.ID, classify(err))
	}
	return nil
}

// Callbacks implements efgs.Store.
func (s *EFGS) Callbacks(ctx context.Context, country string) ([]crossroads.EFGSCallback, error) {
	rows, _ := s.pool.Query(ctx, `SELECT country, id, url, failures FROM efgs_callbacks WHERE country = $1 ORDER BY id`, country)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.EFGSCallback, error) {
		var c crossroads.EFGSCallback
		err := r.Scan(&c.Country, &c.ID, &c.URL, &c.Failures)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("efgs callbacks: %w", err)
	}
	if out == nil {
		out = []crossroads.EFGSCallback{}
	}
	return out, nil
}

// DeleteCallback implements efgs.Store.
func (s *EFGS) DeleteCallback(ctx context.Context, country, id string) error {
	t, err := s.pool.Exec(ctx, `DELETE FROM efgs_callbacks WHERE country = $1 AND id = $2`, country, id)
	if err != nil {
		return fmt.Errorf("delete efgs callback %s/%s: %w", country, id, classify(err))
	}
	if t.RowsAffected() == 0 {
		return fmt.Errorf("delete efgs callback %s/%s: %w", country, id, crossroads.ErrNotFound)
	}
	return nil
}

// DueCallbacks implements efgs.Store.
func (s *EFGS) DueCallbacks(ctx context.Context, now time.Time, limit int) ([]crossroads.EFGSCallbackTask, error) {
	rows, _ := s.pool.Query(ctx, `SELECT t.id, t.country, t.callback_id, c.url, t.batch_tag, b.day, t.retries
		FROM efgs_callback_tasks t JOIN efgs_callbacks c ON c.country = t.country AND c.id = t.callback_id
		JOIN efgs_batches b ON b.tag = t.batch_tag
		WHERE t.not_before <= $1 ORDER BY t.not_before, t.id LIMIT $2`, now.UTC(), limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (crossroads.EFGSCallbackTask, error) {
		var t crossroads.EFGSCallbackTask
		err := r.Scan(&t.ID, &t.Country, &t.CallbackID, &t.URL, &t.BatchTag, &t.Day, &t.Retries)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("efgs due callbacks: %w", err)
	}
	return out, nil
}

// CallbackDelivered implements efgs.Store.
func (s *EFGS) CallbackDelivered(ctx context.Context, task int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE efgs_callbacks c SET failures = 0 FROM efgs_callback_tasks t
			WHERE t.id = $1 AND c.country = t.country AND c.id = t.callback_id`, task); err != nil {
			return fmt.Errorf("efgs callback delivered: %w", err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM efgs_callback_tasks WHERE id = $1`, task)
		return err
	})
}

// CallbackFailed implements efgs.Store.
func (s *EFGS) CallbackFailed(ctx context.Context, task int64, retryAt time.Time, maxFailures int) (removed bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var country, id string
		var failures int
		err := tx.QueryRow(ctx, `SELECT c.country, c.id, c.failures + 1 FROM efgs_callback_tasks t
			JOIN efgs_callbacks c ON c.country = t.country AND c.id = t.callback_id WHERE t.id = $1 FOR UPDATE OF c`, task).Scan(&country, &id, &failures)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("efgs callback task %d: %w", task, crossroads.ErrNotFound)
		} else if err != nil {
			return err
		}
		if removed = failures >= maxFailures; removed {
			_, err = tx.Exec(ctx, `DELETE FROM efgs_callbacks WHERE country = $1 AND id = $2`, country, id)
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE efgs_callbacks SET failures = $1 WHERE country = $2 AND id = $3`, failures, country, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE efgs_callback_tasks SET retries = retries + 1, not_before = $1 WHERE id = $2`, retryAt.UTC(), task)
		return err
	})
	return removed, err
}
