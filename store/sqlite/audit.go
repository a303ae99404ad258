package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

// AuditFile is the audit database's file name in the data directory.
const AuditFile = "audit.db"

// AuditStore implements audit.Store on its own database file.
type AuditStore struct {
	c *conn

	mu      sync.Mutex
	inserts [insertChunk + 1]*sql.Stmt // prepared on the writer, by row count
}

var _ audit.Store = (*AuditStore)(nil)

// OpenAudit opens (creating if needed) dir/audit.db.
func OpenAudit(ctx context.Context, dir string) (*AuditStore, error) {
	c, err := openDB(ctx, filepath.Join(dir, AuditFile), "audit")
	if err != nil {
		return nil, err
	}
	// Freed bytes are zeroed, so that a record's ciphertext leaves no stale
	// copy behind (a cell rewritten by MarkIntegrated, a page split) that
	// would survive its erasure. Erase sets it again in case the writer
	// connection was replaced.
	if _, err := c.w.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		c.close()
		return nil, fmt.Errorf("open audit store: %w", err)
	}
	return &AuditStore{c: c}, nil
}

// Close closes the database.
func (s *AuditStore) Close() error {
	s.mu.Lock()
	for i, st := range s.inserts {
		if st != nil {
			st.Close()
			s.inserts[i] = nil
		}
	}
	s.mu.Unlock()
	return s.c.close()
}

const auditCols = `seq, exchange_id, time, requester, provider, service, purpose, outcome, reason, subject_index, period, nonce, ciphertext, leaf, log_index, kind, subject_kind, log_id`

// insertChunk is how many records one INSERT statement carries: one
// statement per chunk instead of one per record is what makes the
// group-commit transaction cheap.
const insertChunk = 64

// InsertBatch implements audit.Store: every row in one transaction (one
// fsync). Sequence numbers are assigned here, in order, from the largest in
// the table (the transaction holds the write lock); a row whose exchange id
// is already recorded is skipped and gets Seq 0.
func (s *AuditStore) InsertBatch(ctx context.Context, rows []*audit.Row) (err error) {
	// Prepare before the transaction takes the writer's only connection.
	if len(rows) >= insertChunk {
		if _, err := s.insertStmt(ctx, insertChunk); err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
	}
	if rest := len(rows) % insertChunk; rest > 0 {
		if _, err := s.insertStmt(ctx, rest); err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			for _, r := range rows {
				r.Seq = 0
			}
		}
	}()
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_records`).Scan(&last); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	first := last + 1
	var inserted int64
	args := make([]any, 0, insertChunk*17)
	for start := 0; start < len(rows); start += insertChunk {
		chunk := rows[start:min(start+insertChunk, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			last++
			r.Seq = last
			args = append(args, r.Seq, r.ExchangeID, r.Time.UnixMicro(), r.Requester, r.Provider, r.Service,
				r.Purpose, r.Outcome, r.Reason, nullBytes(r.SubjectIndex), r.Period, r.Nonce, r.Ciphertext, r.Leaf, r.Kind, r.SubjectKind, nullString(r.Log))
		}
		st, err := s.insertStmt(ctx, len(chunk))
		if err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
		inserted += n
	}
	if inserted != int64(len(rows)) {
		// Some exchange ids were already recorded: find which rows went in.
		present := make(map[int64]bool, inserted)
		q, err := tx.QueryContext(ctx, `SELECT seq FROM audit_records WHERE seq >= ? AND seq <= ?`, first, last)
		if err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
		for q.Next() {
			var seq int64
			if err := q.Scan(&seq); err != nil {
				q.Close()
				return fmt.Errorf("audit insert: %w", err)
			}
			present[seq] = true
		}
		q.Close()
		if err := q.Err(); err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
		for _, r := range rows {
			if !present[r.Seq] {
				r.Seq = 0
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

var insertSQLs [insertChunk + 1]string

func init() {
	const head = `INSERT INTO audit_records
		(seq, exchange_id, time, requester, provider, service, purpose, outcome, reason, subject_index, period, nonce, ciphertext, leaf, kind, subject_kind, log_id)
		VALUES `
	const tuple = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for n := 1; n <= insertChunk; n++ {
		insertSQLs[n] = head + strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ") + ` ON CONFLICT(exchange_id) DO NOTHING`
	}
}

// insertStmt returns the prepared INSERT for n rows: parsing a statement
// of 64 tuples costs more than running it, so each size is prepared once
// (never inside a transaction: preparing takes the writer's connection).
func (s *AuditStore) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.inserts[n]; st != nil {
		return st, nil
	}
	st, err := s.c.w.PrepareContext(ctx, insertSQLs[n])
	if err != nil {
		return nil, err
	}
	s.inserts[n] = st
	return st, nil
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// MarkIntegrated implements audit.Store.
func (s *AuditStore) MarkIntegrated(ctx context.Context, marks []audit.Mark) (err error) {
	// Log indexes can always be recovered from the log itself (the trail
	// reconciles on start), so this transaction skips the fsync: it holds
	// the writer for a moment instead of an fsync's worth, and the next
	// record insert's fsync makes it durable anyway. The connection is
	// pinned so that no insert can run while synchronous is OFF.
	c, err := s.c.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit mark: %w", err)
	}
	defer c.Close()
	// Restore (or discard the connection) however the next statement ends:
	// it may fail after taking effect.
	defer func() {
		if _, rerr := c.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); rerr != nil {
			// Never hand back a connection that would commit records
			// without fsync: discard it.
			c.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("audit mark: restore synchronous: %w", rerr))
		}
	}()
	if _, err := c.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		return fmt.Errorf("audit mark: %w", err)
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit mark: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	st, err := tx.PrepareContext(ctx, `UPDATE audit_records SET log_index = ? WHERE seq = ?`)
	if err != nil {
		return fmt.Errorf("audit mark: %w", err)
	}
	defer st.Close()
	for _, m := range marks {
		if _, err := st.ExecContext(ctx, m.Index, m.Seq); err != nil {
			return fmt.Errorf("audit mark: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit mark: %w", err)
	}
	return nil
}

// Rows implements audit.Store. Unintegrated rows are read lean: what the
// log's integration needs, not the ciphertext (a pass reads thousands).
func (s *AuditStore) Rows(ctx context.Context, afterSeq int64, limit int, unintegrated bool) ([]audit.Row, error) {
	if unintegrated {
		return s.leanRows(ctx, afterSeq, limit)
	}
	q := `SELECT ` + auditCols + ` FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`
	return s.query(ctx, q, afterSeq, limit)
}

func (s *AuditStore) leanRows(ctx context.Context, afterSeq int64, limit int) ([]audit.Row, error) {
	rs, err := s.c.r.QueryContext(ctx, `SELECT seq, exchange_id, time, leaf, log_id FROM audit_records
		WHERE seq > ? AND log_index IS NULL ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("audit rows: %w", err)
	}
	defer rs.Close()
	var out []audit.Row
	for rs.Next() {
		r := audit.Row{Index: -1}
		var t int64
		var logID sql.NullString
		if err := rs.Scan(&r.Seq, &r.ExchangeID, &t, &r.Leaf, &logID); err != nil {
			return nil, fmt.Errorf("audit rows: %w", err)
		}
		r.Time, r.Log = time.UnixMicro(t).UTC(), logID.String
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("audit rows: %w", err)
	}
	return out, nil
}

// MaxIndex implements audit.Store.
func (s *AuditStore) MaxIndex(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.c.r.QueryRowContext(ctx, `SELECT max(log_index) FROM audit_records WHERE log_index IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit max index: %w", err)
	}
	if !n.Valid {
		return -1, nil
	}
	return n.Int64, nil
}

// Get implements audit.Store.
func (s *AuditStore) Get(ctx context.Context, exchangeID string) (audit.Row, error) {
	rows, err := s.query(ctx, `SELECT `+auditCols+` FROM audit_records WHERE exchange_id = ?`, exchangeID)
	if err != nil {
		return audit.Row{}, err
	}
	if len(rows) == 0 {
		return audit.Row{}, fmt.Errorf("audit record %q: %w", exchangeID, crossroads.ErrNotFound)
	}
	return rows[0], nil
}

// Search implements audit.Store.
func (s *AuditStore) Search(ctx context.Context, q audit.StoreQuery) ([]audit.Row, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Participant != "" {
		add(`(requester = ? OR provider = ?)`, q.Participant, q.Participant)
	}
	if q.Service != "" {
		add(`service = ?`, q.Service)
	}
	if q.Purpose != "" {
		add(`purpose = ?`, q.Purpose)
	}
	if q.Outcome != "" {
		add(`outcome = ?`, q.Outcome)
	}
	if q.SubjectIndex != nil {
		add(`subject_index = ?`, q.SubjectIndex)
	}
	if q.SubjectKind != "" {
		add(`subject_kind = ?`, q.SubjectKind)
	}
	if len(q.Kinds) > 0 {
		in := strings.TrimSuffix(strings.Repeat("?, ", len(q.Kinds)), ", ")
		where = append(where, `kind IN (`+in+`)`)
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	if !q.From.IsZero() {
		add(`time >= ?`, q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		add(`time < ?`, q.To.UnixMicro())
	}
	if q.BeforeSeq > 0 {
		add(`seq < ?`, q.BeforeSeq)
	}
	sqlq := `SELECT ` + auditCols + ` FROM audit_records`
	if len(where) > 0 {
		sqlq += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	sqlq += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	return s.query(ctx, sqlq, args...)
}

func (s *AuditStore) query(ctx context.Context, q string, args ...any) ([]audit.Row, error) {
	rs, err := s.c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	defer rs.Close()
	var out []audit.Row
	for rs.Next() {
		var r audit.Row
		var t int64
		var idx sql.NullInt64
		var logID sql.NullString
		if err := rs.Scan(&r.Seq, &r.ExchangeID, &t, &r.Requester, &r.Provider, &r.Service, &r.Purpose,
			&r.Outcome, &r.Reason, &r.SubjectIndex, &r.Period, &r.Nonce, &r.Ciphertext, &r.Leaf, &idx, &r.Kind, &r.SubjectKind, &logID); err != nil {
			return nil, fmt.Errorf("audit query: %w", err)
		}
		r.Log = logID.String
		r.Time = time.UnixMicro(t).UTC()
		if len(r.Ciphertext) == 0 { // erased
			r.Ciphertext, r.Nonce, r.SubjectIndex = nil, nil, nil
		}
		r.Index = -1
		if idx.Valid {
			r.Index = idx.Int64
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	return out, nil
}

// Key implements audit.Store.
func (s *AuditStore) Key(ctx context.Context, period string) (audit.DataKey, error) {
	k := audit.DataKey{Period: period}
	err := s.c.r.QueryRowContext(ctx, `SELECT kek_id, wrapped FROM audit_keys WHERE period = ?`, period).Scan(&k.KEKID, &k.Wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("audit key %s: %w", period, crossroads.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("audit key %s: %w", period, err)
	}
	return k, nil
}

// PutKey implements audit.Store.
func (s *AuditStore) PutKey(ctx context.Context, k audit.DataKey) (audit.DataKey, error) {
	if _, err := s.c.w.ExecContext(ctx, `INSERT INTO audit_keys(period, kek_id, wrapped) VALUES (?, ?, ?) ON CONFLICT(period) DO NOTHING`,
		k.Period, k.KEKID, k.Wrapped); err != nil {
		return k, fmt.Errorf("audit put key %s: %w", k.Period, err)
	}
	var out audit.DataKey
	out.Period = k.Period
	if err := s.c.w.QueryRowContext(ctx, `SELECT kek_id, wrapped FROM audit_keys WHERE period = ?`, k.Period).Scan(&out.KEKID, &out.Wrapped); err != nil {
		return k, fmt.Errorf("audit put key %s: %w", k.Period, err)
	}
	return out, nil
}

// Keys implements audit.Store.
func (s *AuditStore) Keys(ctx context.Context) ([]audit.DataKey, error) {
	rs, err := s.c.r.QueryContext(ctx, `SELECT period, kek_id, wrapped FROM audit_keys ORDER BY period`)
	if err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	defer rs.Close()
	var out []audit.DataKey
	for rs.Next() {
		var k audit.DataKey
		if err := rs.Scan(&k.Period, &k.KEKID, &k.Wrapped); err != nil {
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	return out, nil
}

// ReplaceKey implements audit.Store.
func (s *AuditStore) ReplaceKey(ctx context.Context, k audit.DataKey) error {
	res, err := s.c.w.ExecContext(ctx, `UPDATE audit_keys SET kek_id = ?, wrapped = ? WHERE period = ?`, k.KEKID, k.Wrapped, k.Period)
	if err != nil {
		return fmt.Errorf("audit replace key %s: %w", k.Period, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("audit replace key %s: %w", k.Period, crossroads.ErrNotFound)
	}
	return nil
}

// Erase implements audit.Store. SQLite's secure_delete overwrites the freed
// bytes in the database pages, and the WAL is checkpointed and truncated
// afterwards so that the old pages do not linger there.
func (s *AuditStore) Erase(ctx context.Context, before time.Time, limit int) (n int, err error) {
	if limit <= 0 {
		return 0, nil
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("audit erase: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			n = 0
		}
	}()
	if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return 0, fmt.Errorf("audit erase: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE audit_records SET ciphertext = X'', nonce = X'', subject_index = NULL, erased_at = ?
		WHERE seq IN (SELECT seq FROM audit_records WHERE erased_at IS NULL AND time < ? ORDER BY time, seq LIMIT ?)`,
		time.Now().UnixMicro(), before.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("audit erase: %w", err)
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("audit erase: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit erase: %w", err)
	}
	if affected > 0 {
		// Best effort: readers may keep the WAL from being truncated now; a
		// later checkpoint overwrites it.
		s.c.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return int(affected), nil
}

// DeleteKey implements audit.Store.
func (s *AuditStore) DeleteKey(ctx context.Context, period string) error {
	if _, err := s.c.w.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("audit delete key %s: %w", period, err)
	}
	if _, err := s.c.w.ExecContext(ctx, `DELETE FROM audit_keys WHERE period = ?`, period); err != nil {
		return fmt.Errorf("audit delete key %s: %w", period, err)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Cursor implements audit.CursorStore.
func (s *AuditStore) Cursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.c.r.QueryRowContext(ctx, `SELECT position FROM audit_cursors WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit cursor %s: %w", name, err)
	}
	return pos, nil
}

// SetCursor implements audit.CursorStore.
func (s *AuditStore) SetCursor(ctx context.Context, name string, pos int64) error {
	if _, err := s.c.w.ExecContext(ctx, `INSERT INTO audit_cursors(name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
		name, pos, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("audit set cursor %s: %w", name, err)
	}
	return nil
}
