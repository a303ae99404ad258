package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// EFGSFile is the federation gateway's database in the data directory.
const EFGSFile = "efgs.db"

// EFGS is the federation gateway's store (efgs.Store) in its own SQLite
// file.
type EFGS struct {
	c         *conn
	closeOnce sync.Once
	closeErr  error
}

// OpenEFGS opens, creating and migrating if needed, the gateway database
// at file.
func OpenEFGS(ctx context.Context, file string) (*EFGS, error) {
	c, err := openDB(ctx, file, "efgs")
	if err != nil {
		return nil, err
	}
	return &EFGS{c: c}, nil
}

// Close closes the database; again is a no-op.
func (s *EFGS) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.close() })
	return s.closeErr
}

const efgsCertColumns = `thumbprint, country, type, pem, host, signature, created_at, revoked_at`

func scanEFGSCert(sc interface{ Scan(...any) error }) (crossroads.EFGSCertificate, error) {
	var (
		c       crossroads.EFGSCertificate
		created string
		revoked sql.NullString
	)
	if err := sc.Scan(&c.Thumbprint, &c.Country, &c.Type, &c.PEM, &c.Host, &c.Signature, &created, &revoked); err != nil {
		return c, err
	}
	var err1, err2 error
	c.CreatedAt, err1 = decTime(created)
	c.RevokedAt, err2 = decOptTime(revoked)
	return c, errors.Join(err1, err2)
}

// PutCertificate implements efgs.Store.
func (s *EFGS) PutCertificate(ctx context.Context, c crossroads.EFGSCertificate) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	ts, err := encTime(c.CreatedAt)
	if err != nil {
		return fmt.Errorf("put efgs certificate: %w", err)
	}
	_, err = s.c.w.ExecContext(ctx, `INSERT INTO efgs_certificates(`+efgsCertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT(thumbprint) DO UPDATE SET country = excluded.country, type = excluded.type, pem = excluded.pem,
		host = excluded.host, signature = excluded.signature, created_at = excluded.created_at, revoked_at = NULL`,
		c.Thumbprint, c.Country, c.Type, c.PEM, c.Host, c.Signature, ts)
	if err != nil {
		return fmt.Errorf("put efgs certificate %s: %w", c.Thumbprint, err)
	}
	return nil
}

// RevokeCertificate implements efgs.Store.
func (s *EFGS) RevokeCertificate(ctx context.Context, thumbprint string, at time.Time) error {
	ts, err := encTime(at)
	if err != nil {
		return fmt.Errorf("revoke efgs certificate: %w", err)
	}
	res, err := s.c.w.ExecContext(ctx, `UPDATE efgs_certificates SET revoked_at = COALESCE(revoked_at, ?) WHERE thumbprint = ?`, ts, thumbprint)
	if err != nil {
		return fmt.Errorf("revoke efgs certificate %s: %w", thumbprint, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke efgs certificate %s: %w", thumbprint, crossroads.ErrNotFound)
	}
	return nil
}

// Certificate implements efgs.Store.
func (s *EFGS) Certificate(ctx context.Context, thumbprint string) (crossroads.EFGSCertificate, error) {
	c, err := scanEFGSCert(s.c.r.QueryRowContext(ctx, `SELECT `+efgsCertColumns+` FROM efgs_certificates WHERE thumbprint = ?`, thumbprint))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("efgs certificate %s: %w", thumbprint, crossroads.ErrNotFound)
	}
	return c, err
}

// Certificates implements efgs.Store.
func (s *EFGS) Certificates(ctx context.Context) ([]crossroads.EFGSCertificate, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT `+efgsCertColumns+` FROM efgs_certificates ORDER BY country, type, thumbprint`)
	if err != nil {
		return nil, fmt.Errorf("efgs certificates: %w", err)
	}
	defer rows.Close()
	var out []crossroads.EFGSCertificate
	for rows.Next() {
		c, err := scanEFGSCert(rows)
		if err != nil {
			return nil, fmt.Errorf("efgs certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// efgsHashChunk bounds the host parameters of one duplicate lookup.
const efgsHashChunk = 500

// Upload implements efgs.Store.
func (s *EFGS) Upload(ctx context.Context, u crossroads.EFGSUpload) (crossroads.EFGSBatch, error) {
	b := crossroads.EFGSBatch{UploadTag: u.Tag, Country: u.Country, UploaderThumbprint: u.UploaderThumbprint,
		SigningThumbprint: u.SigningThumbprint, Signature: u.Signature, Amount: len(u.Keys), CreatedAt: u.At.UTC()}
	created, err := encTime(u.At)
	if err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	b.Day = b.CreatedAt.Format(time.DateOnly)
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	defer tx.Rollback()
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM efgs_batches WHERE upload_tag = ?)`, u.Tag).Scan(&exists); err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	if exists {
		return b, fmt.Errorf("efgs upload %s: %w", u.Tag, crossroads.ErrConflict)
	}
	if dup, err := s.duplicates(ctx, tx, u.Keys); err != nil {
		return b, err
	} else if dup != nil {
		return b, dup
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM efgs_batches WHERE day = ?`, b.Day).Scan(&b.Seq); err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	b.Tag = fmt.Sprintf("%s-%d", strings.ReplaceAll(b.Day, "-", ""), b.Seq)
	if _, err := tx.ExecContext(ctx, `INSERT INTO efgs_batches(tag, day, seq, created_at, upload_tag, country, uploader_thumbprint,
		signing_thumbprint, signature, content_type, amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Tag, b.Day, b.Seq, created, u.Tag, u.Country, u.UploaderThumbprint, u.SigningThumbprint, u.Signature, u.ContentType, len(u.Keys)); err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE efgs_batches SET next_tag = ? WHERE day = ? AND seq = ?`, b.Tag, b.Day, b.Seq-1); err != nil {
		return b, fmt.Errorf("efgs upload: link: %w", err)
	}
	if err := insertKeys(ctx, tx, b.Tag, u.Keys); err != nil {
		return b, fmt.Errorf("efgs upload: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO efgs_callback_tasks(country, callback_id, batch_tag, not_before)
		SELECT country, id, ?, ? FROM efgs_callbacks`, b.Tag, created); err != nil {
		return b, fmt.Errorf("efgs upload: callbacks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return b, fmt.Errorf("efgs upload: commit: %w", err)
	}
	return b, nil
}

// efgsInsertRows is how many keys one INSERT writes (5 parameters each).
const efgsInsertRows = 200

// insertKeys writes the keys with multi-row INSERTs: a few dozen
// statements per batch instead of 5,000.
func insertKeys(ctx context.Context, tx *sql.Tx, tag string, keys []crossroads.EFGSKey) error {
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	args := make([]any, 0, 5*efgsInsertRows)
	for start := 0; start < len(keys); start += efgsInsertRows {
		end := min(start+efgsInsertRows, len(keys))
		n := end - start
		st, ok := stmts[n]
		if !ok {
			var err error
			st, err = tx.PrepareContext(ctx, `INSERT INTO efgs_keys(batch_tag, idx, hash, origin, proto) VALUES (?, ?, ?, ?, ?)`+strings.Repeat(", (?, ?, ?, ?, ?)", n-1))
			if err != nil {
				return err
			}
			stmts[n] = st
		}
		args = args[:0]
		for i := start; i < end; i++ {
			args = append(args, tag, i, keys[i].Hash, keys[i].Origin, keys[i].Proto)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("keys %d–%d: %w", start, end-1, err)
		}
	}
	return nil
}

// duplicates finds the keys whose hash is stored already or repeats.
func (s *EFGS) duplicates(ctx context.Context, tx *sql.Tx, keys []crossroads.EFGSKey) (*crossroads.EFGSDuplicateKeys, error) {
	known := map[string]bool{}
	for start := 0; start < len(keys); start += efgsHashChunk {
		end := min(start+efgsHashChunk, len(keys))
		args := make([]any, 0, end-start)
		for _, k := range keys[start:end] {
			args = append(args, k.Hash)
		}
		rows, err := tx.QueryContext(ctx, `SELECT hash FROM efgs_keys WHERE hash IN (?`+strings.Repeat(",?", len(args)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("efgs upload: duplicates: %w", err)
		}
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("efgs upload: duplicates: %w", err)
			}
			known[string(h)] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("efgs upload: duplicates: %w", err)
		}
	}
	return splitDuplicates(keys, known), nil
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
	err := s.c.r.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM efgs_batches WHERE upload_tag = ?)`, tag).Scan(&ok)
	return ok, err
}

// FirstBatch implements efgs.Store.
func (s *EFGS) FirstBatch(ctx context.Context, day string) (string, error) {
	var tag string
	err := s.c.r.QueryRowContext(ctx, `SELECT tag FROM efgs_batches WHERE day = ? ORDER BY seq LIMIT 1`, day).Scan(&tag)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("efgs batches of %s: %w", day, crossroads.ErrNotFound)
	}
	return tag, err
}

// Batch implements efgs.Store.
func (s *EFGS) Batch(ctx context.Context, tag string) (crossroads.EFGSBatch, error) {
	var (
		b       crossroads.EFGSBatch
		created string
	)
	err := s.c.r.QueryRowContext(ctx, `SELECT tag, day, seq, next_tag, created_at, upload_tag, country, uploader_thumbprint,
		signing_thumbprint, signature, amount FROM efgs_batches WHERE tag = ?`, tag).Scan(&b.Tag, &b.Day, &b.Seq, &b.Next, &created,
		&b.UploadTag, &b.Country, &b.UploaderThumbprint, &b.SigningThumbprint, &b.Signature, &b.Amount)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("efgs batch %s: %w", tag, crossroads.ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("efgs batch %s: %w", tag, err)
	}
	b.CreatedAt, err = decTime(created)
	return b, err
}

// BatchKeys implements efgs.Store.
func (s *EFGS) BatchKeys(ctx context.Context, tag, exclude string) ([]crossroads.EFGSKey, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT hash, origin, proto FROM efgs_keys WHERE batch_tag = ? AND origin <> ? ORDER BY idx`, tag, exclude)
	if err != nil {
		return nil, fmt.Errorf("efgs batch %s keys: %w", tag, err)
	}
	defer rows.Close()
	var out []crossroads.EFGSKey
	for rows.Next() {
		var k crossroads.EFGSKey
		if err := rows.Scan(&k.Hash, &k.Origin, &k.Proto); err != nil {
			return nil, fmt.Errorf("efgs batch %s keys: %w", tag, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Erase implements efgs.Store.
func (s *EFGS) Erase(ctx context.Context, day string) (batches, keys int64, err error) {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("efgs erase: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM efgs_keys WHERE batch_tag IN (SELECT tag FROM efgs_batches WHERE day < ?)`, day)
	if err != nil {
		return 0, 0, fmt.Errorf("efgs erase: %w", err)
	}
	keys, _ = res.RowsAffected()
	if res, err = tx.ExecContext(ctx, `DELETE FROM efgs_batches WHERE day < ?`, day); err != nil {
		return 0, 0, fmt.Errorf("efgs erase: %w", err)
	}
	batches, _ = res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("efgs erase: commit: %w", err)
	}
	return batches, keys, nil
}

// PutCallback implements efgs.Store.
func (s *EFGS) PutCallback(ctx context.Context, c crossroads.EFGSCallback) error {
	ts, _ := encTime(time.Now())
	_, err := s.c.w.ExecContext(ctx, `INSERT INTO efgs_callbacks(country, id, url, failures, created_at) VALUES (?, ?, ?, 0, ?)
		ON CONFLICT(country, id) DO UPDATE SET url = excluded.url, failures = 0`, c.Country, c.ID, c.URL, ts)
	if err != nil {
		return fmt.Errorf("put efgs callback %s/%s: %w", c.Country, c.ID, err)
	}
	return nil
}

// Callbacks implements efgs.Store.
func (s *EFGS) Callbacks(ctx context.Context, country string) ([]crossroads.EFGSCallback, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT country, id, url, failures FROM efgs_callbacks WHERE country = ? ORDER BY id`, country)
	if err != nil {
		return nil, fmt.Errorf("efgs callbacks: %w", err)
	}
	defer rows.Close()
	out := []crossroads.EFGSCallback{}
	for rows.Next() {
		var c crossroads.EFGSCallback
		if err := rows.Scan(&c.Country, &c.ID, &c.URL, &c.Failures); err != nil {
			return nil, fmt.Errorf("efgs callbacks: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteCallback implements efgs.Store.
func (s *EFGS) DeleteCallback(ctx context.Context, country, id string) error {
	res, err := s.c.w.ExecContext(ctx, `DELETE FROM efgs_callbacks WHERE country = ? AND id = ?`, country, id)
	if err != nil {
		return fmt.Errorf("delete efgs callback %s/%s: %w", country, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete efgs callback %s/%s: %w", country, id, crossroads.ErrNotFound)
	}
	return nil
}

// DueCallbacks implements efgs.Store.
func (s *EFGS) DueCallbacks(ctx context.Context, now time.Time, limit int) ([]crossroads.EFGSCallbackTask, error) {
	ts, err := encTime(now)
	if err != nil {
		return nil, err
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT t.id, t.country, t.callback_id, c.url, t.batch_tag, b.day, t.retries
		FROM efgs_callback_tasks t JOIN efgs_callbacks c ON c.country = t.country AND c.id = t.callback_id
		JOIN efgs_batches b ON b.tag = t.batch_tag
		WHERE t.not_before <= ? ORDER BY t.not_before, t.id LIMIT ?`, ts, limit)
	if err != nil {
		return nil, fmt.Errorf("efgs due callbacks: %w", err)
	}
	defer rows.Close()
	var out []crossroads.EFGSCallbackTask
	for rows.Next() {
		var t crossroads.EFGSCallbackTask
		if err := rows.Scan(&t.ID, &t.Country, &t.CallbackID, &t.URL, &t.BatchTag, &t.Day, &t.Retries); err != nil {
			return nil, fmt.Errorf("efgs due callbacks: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CallbackDelivered implements efgs.Store.
func (s *EFGS) CallbackDelivered(ctx context.Context, task int64) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("efgs callback delivered: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE efgs_callbacks SET failures = 0 WHERE (country, id) IN
		(SELECT country, callback_id FROM efgs_callback_tasks WHERE id = ?)`, task); err != nil {
		return fmt.Errorf("efgs callback delivered: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM efgs_callback_tasks WHERE id = ?`, task); err != nil {
		return fmt.Errorf("efgs callback delivered: %w", err)
	}
	return tx.Commit()
}

// CallbackFailed implements efgs.Store.
func (s *EFGS) CallbackFailed(ctx context.Context, task int64, retryAt time.Time, maxFailures int) (bool, error) {
	ts, err := encTime(retryAt)
	if err != nil {
		return false, err
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("efgs callback failed: %w", err)
	}
	defer tx.Rollback()
	var country, id string
	var failures int
	err = tx.QueryRowContext(ctx, `SELECT c.country, c.id, c.failures + 1 FROM efgs_callback_tasks t
		JOIN efgs_callbacks c ON c.country = t.country AND c.id = t.callback_id WHERE t.id = ?`, task).Scan(&country, &id, &failures)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("efgs callback task %d: %w", task, crossroads.ErrNotFound)
	} else if err != nil {
		return false, fmt.Errorf("efgs callback failed: %w", err)
	}
	removed := failures >= maxFailures
	if removed {
		_, err = tx.ExecContext(ctx, `DELETE FROM efgs_callbacks WHERE country = ? AND id = ?`, country, id)
	} else {
		if _, err = tx.ExecContext(ctx, `UPDATE efgs_callbacks SET failures = ? WHERE country = ? AND id = ?`, failures, country, id); err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE efgs_callback_tasks SET retries = retries + 1, not_before = ? WHERE id = ?`, ts, task)
		}
	}
	if err != nil {
		return false, fmt.Errorf("efgs callback failed: %w", err)
	}
	return removed, tx.Commit()
}
