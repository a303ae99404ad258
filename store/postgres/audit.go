package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

// AuditStore implements audit.Store. Records go to audit_records,
// partitioned by month of the record time; the narrow audit_exchanges table
// assigns Seq, keeps exchange ids unique and holds the log indexes (see
// migrations/audit/0001_audit.sql). MarkIntegrated thus never touches the
// partitions, which are written once and updated only when retention
// erases payloads (Erase).
//
// Partitions: OpenAudit creates the current and the next month's partition
// ahead of time, and InsertBatch creates any other month's partition on
// demand before it opens its transaction (records of a month in the past
// or far future are rare but legal). There is no default partition: a row
// could only land there by mistake, and its presence would make creating
// that month's partition later scan and fail. A partition is created as a
// plain table and then attached, which locks the parent only in SHARE
// UPDATE EXCLUSIVE mode: concurrent inserts and searches go on. Creation is
// serialised across nodes by an advisory lock and is idempotent.
type AuditStore struct {
	pool *pgxpool.Pool
	now  func() time.Time

	mu     sync.Mutex
	months map[int]bool // year*12+month-1 of partitions known to exist

	afterSeq func() // test hook: called in InsertBatch once numbers are drawn
}

// auditSeqLock is the pg_advisory_xact_lock key that orders audit inserts
// (see InsertBatch).
const auditSeqLock int64 = 0x6372617564736571 // "craudseq"

var _ audit.Store = (*AuditStore)(nil)

// OpenAudit connects to the database at dsn, applies the audit migrations
// it lacks and makes sure the partitions of this month and the next exist.
// A database with synchronous_commit off is refused: a record must be
// durable before the hub releases anything.
func OpenAudit(ctx context.Context, dsn string) (*AuditStore, error) {
	pool, err := openPool(ctx, dsn, "audit")
	if err != nil {
		return nil, err
	}
	s := &AuditStore{pool: pool, now: time.Now, months: map[int]bool{}}
	var sc string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&sc); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open audit store: %w", err)
	}
	if sc == "off" {
		pool.Close()
		return nil, fmt.Errorf("open audit store: synchronous_commit is off, so commits are not durable on return: %w", crossroads.ErrInvalid)
	}
	this := monthOf(s.now())
	for _, m := range []int{this, this + 1} {
		if err := s.ensurePartition(ctx, m); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open audit store: %w", err)
		}
	}
	return s, nil
}

// Close closes the connections.
func (s *AuditStore) Close() error {
	s.pool.Close()
	return nil
}

// monthOf numbers the month of t (UTC) as year*12 + month-1.
func monthOf(t time.Time) int {
	u := t.UTC()
	return u.Year()*12 + int(u.Month()) - 1
}

func monthStart(m int) time.Time {
	y, mo := m/12, m%12
	if mo < 0 { // years before 0 do not occur in partition keys we create, but keep the arithmetic right
		y, mo = y-1, mo+12
	}
	return time.Date(y, time.Month(mo+1), 1, 0, 0, 0, 0, time.UTC)
}

// partitionName is audit_records_yYYYYmMM.
func partitionName(m int) string {
	t := monthStart(m)
	return fmt.Sprintf("audit_records_y%04dm%02d", t.Year(), int(t.Month()))
}

// ensurePartition creates the partition of month m unless it exists.
func (s *AuditStore) ensurePartition(ctx context.Context, m int) error {
	s.mu.Lock()
	known := s.months[m]
	s.mu.Unlock()
	if known {
		return nil
	}
	name := partitionName(m)
	from, to := monthStart(m), monthStart(m+1)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A query on the catalogue (an MVCC snapshot per statement), not
		// to_regclass (the session's catalogue caches, which taking an
		// advisory lock does not refresh).
		const attached = `SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'audit_records'::regclass AND c.relname = $1)`
		var exists bool
		if err := tx.QueryRow(ctx, attached, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		// Another node may have created it while we waited for the lock.
		if err := tx.QueryRow(ctx, attached, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		id := pgx.Identifier{name}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE TABLE `+id+` (LIKE audit_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`); err != nil {
			return err
		}
		// The check constraint lets ATTACH skip its validation scan; the
		// parent's indexes are created on the (empty) table by ATTACH.
		if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s CHECK (time >= '%s' AND time < '%s')`,
			id, pgx.Identifier{name + "_range"}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339))); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE audit_records ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
			id, from.Format(time.RFC3339), to.Format(time.RFC3339)))
		return err
	})
	if err != nil {
		return fmt.Errorf("create partition %s: %w", name, err)
	}
	s.mu.Lock()
	s.months[m] = true
	s.mu.Unlock()
	return nil
}

// The planner cannot tell that (seq, time) of an exchange matches exactly
// one record, and estimates a join of the two tables at one row whatever
// the filters, which leads it to hash whole partitions. So every query
// first picks its rows from one table, LIMIT included, and fetches the
// other side row by row through LATERAL ... OFFSET 0 (which keeps the
// subquery from being flattened): a primary-key probe per row, and for
// records, into the one partition that r.time = e.time selects at run time.
const auditCols = `e.seq, r.exchange_id, r.time, r.requester, r.provider, r.service, r.purpose, r.outcome, r.reason,
	r.subject_index, r.period, r.nonce, r.ciphertext, r.leaf, e.log_index, r.kind, r.subject_kind, e.log_id`

// byExchanges selects the exchanges of sub (seq, time, log_index, log_id) with their records.
func byExchanges(sub, order string) string {
	return `SELECT ` + auditCols + ` FROM (` + sub + `) e CROSS JOIN LATERAL
		(SELECT * FROM audit_records r WHERE r.seq = e.seq AND r.time = e.time OFFSET 0) r ORDER BY e.seq` + order
}

// byRecords selects the records of sub (all columns) with their exchanges.
func byRecords(sub, order string) string {
	return `SELECT ` + auditCols + ` FROM (` + sub + `) r CROSS JOIN LATERAL
		(SELECT seq, log_index, log_id FROM audit_exchanges e WHERE e.seq = r.seq OFFSET 0) e ORDER BY e.seq` + order
}

var auditRecordColumns = []string{"seq", "time", "exchange_id", "requester", "provider", "service", "purpose",
	"outcome", "reason", "subject_index", "period", "nonce", "ciphertext", "leaf", "kind", "subject_kind"}

// InsertBatch implements audit.Store: one transaction that assigns Seq
// through audit_exchanges (skipping exchange ids already stored, and
// repeats within rows after the first) and copies the new records into
// audit_records with COPY. Seq increases in the order of rows; like any
// PostgreSQL sequence it may have gaps (a skipped duplicate or a rolled
// back batch uses up numbers).
func (s *AuditStore) InsertBatch(ctx context.Context, rows []*audit.Row) (err error) {
	for _, r := range rows {
		r.Seq = 0
	}
	if len(rows) == 0 {
		return nil
	}
	defer func() {
		if err != nil {
			for _, r := range rows {
				r.Seq = 0
			}
		}
	}()
	ids := make([]string, len(rows))
	times := make([]time.Time, len(rows))
	logs := make([]*string, len(rows))
	for i, r := range rows {
		ids[i], times[i] = r.ExchangeID, r.Time
		if r.Log != "" {
			logs[i] = &rows[i].Log
		}
		if err := s.ensurePartition(ctx, monthOf(r.Time)); err != nil {
			return fmt.Errorf("audit insert: %w", err)
		}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Sequence numbers follow commit order across nodes: the lock is
		// taken before a number is drawn and held until commit, so a
		// reader that has seen seq n committed will never see a smaller
		// one commit later (the SIEM export and other cursors resume after
		// the last number they handled). Rolled-back batches leave gaps.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditSeqLock); err != nil {
			return classify(err)
		}
		res, _ := tx.Query(ctx, `INSERT INTO audit_exchanges(exchange_id, time, log_id)
			SELECT id, t, l FROM unnest($1::text[], $2::timestamptz[], $3::text[]) WITH ORDINALITY AS u(id, t, l, o) ORDER BY o
			ON CONFLICT (exchange_id) DO NOTHING RETURNING exchange_id, seq`, ids, times, logs)
		seqs := make(map[string]int64, len(rows))
		var id string
		var seq int64
		if _, err := pgx.ForEachRow(res, []any{&id, &seq}, func() error {
			seqs[id] = seq
			return nil
		}); err != nil {
			return classify(err)
		}
		copyRows := make([][]any, 0, len(seqs))
		for _, r := range rows {
			seq, ok := seqs[r.ExchangeID]
			if !ok {
				continue // stored before, or earlier in rows
			}
			delete(seqs, r.ExchangeID)
			r.Seq = seq
			copyRows = append(copyRows, []any{seq, r.Time, r.ExchangeID, r.Requester, r.Provider, r.Service, r.Purpose,
				r.Outcome, r.Reason, nilIfEmptyBytes(r.SubjectIndex), r.Period, r.Nonce, r.Ciphertext, r.Leaf, r.Kind, r.SubjectKind})
		}
		if s.afterSeq != nil {
			s.afterSeq()
		}
		if len(copyRows) == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"}, auditRecordColumns, pgx.CopyFromRows(copyRows)); err != nil {
			return classify(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

func nilIfEmptyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// MarkIntegrated implements audit.Store with one statement: it updates
// only the narrow audit_exchanges table, never the partitions.
func (s *AuditStore) MarkIntegrated(ctx context.Context, marks []audit.Mark) error {
	if len(marks) == 0 {
		return nil
	}
	seqs := make([]int64, len(marks))
	idxs := make([]int64, len(marks))
	for i, m := range marks {
		seqs[i], idxs[i] = m.Seq, m.Index
	}
	if _, err := s.pool.Exec(ctx, `UPDATE audit_exchanges e SET log_index = m.idx
		FROM unnest($1::bigint[], $2::bigint[]) AS m(seq, idx) WHERE e.seq = m.seq`, seqs, idxs); err != nil {
		return fmt.Errorf("audit mark: %w", classify(err))
	}
	return nil
}

// Rows implements audit.Store. A negative limit means no limit.
func (s *AuditStore) Rows(ctx context.Context, afterSeq int64, limit int, unintegrated bool) ([]audit.Row, error) {
	sub := `SELECT seq, time, log_index, log_id FROM audit_exchanges WHERE seq > $1`
	if unintegrated {
		sub += ` AND log_index IS NULL`
	}
	sub += ` ORDER BY seq LIMIT $2`
	var lim *int
	if limit >= 0 {
		lim = &limit
	}
	return s.query(ctx, byExchanges(sub, ""), afterSeq, lim)
}

// MaxIndex implements audit.Store.
func (s *AuditStore) MaxIndex(ctx context.Context) (int64, error) {
	var n *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(log_index) FROM audit_exchanges`).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit max index: %w", err)
	}
	if n == nil {
		return -1, nil
	}
	return *n, nil
}

// Get implements audit.Store.
func (s *AuditStore) Get(ctx context.Context, exchangeID string) (audit.Row, error) {
	rows, err := s.query(ctx, byExchanges(`SELECT seq, time, log_index, log_id FROM audit_exchanges WHERE exchange_id = $1`, ""), exchangeID)
	if err != nil {
		return audit.Row{}, err
	}
	if len(rows) == 0 {
		return audit.Row{}, fmt.Errorf("audit record %q: %w", exchangeID, crossroads.ErrNotFound)
	}
	return rows[0], nil
}

// Search implements audit.Store. The filters apply to the partitioned
// table (a time range prunes partitions); a Limit of 0 or less means 100.
func (s *AuditStore) Search(ctx context.Context, q audit.StoreQuery) ([]audit.Row, error) {
	var where []string
	var args []any
	add := func(cond string, a any) {
		args = append(args, a)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if q.Participant != "" {
		add(`(requester = $? OR provider = $?)`, q.Participant)
	}
	if q.Service != "" {
		add(`service = $?`, q.Service)
	}
	if q.Purpose != "" {
		add(`purpose = $?`, q.Purpose)
	}
	if q.Outcome != "" {
		add(`outcome = $?`, q.Outcome)
	}
	if q.SubjectIndex != nil {
		add(`subject_index = $?`, q.SubjectIndex)
	}
	if q.SubjectKind != "" {
		add(`subject_kind = $?`, q.SubjectKind)
	}
	if len(q.Kinds) > 0 {
		add(`kind = ANY($?)`, q.Kinds)
	}
	if !q.From.IsZero() {
		add(`time >= $?`, q.From)
	}
	if !q.To.IsZero() {
		add(`time < $?`, q.To)
	}
	if q.BeforeSeq > 0 {
		add(`seq < $?`, q.BeforeSeq)
	}
	sub := `SELECT * FROM audit_records`
	if len(where) > 0 {
		sub += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	sub += fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	return s.query(ctx, byRecords(sub, " DESC"), args...)
}

func (s *AuditStore) query(ctx context.Context, q string, args ...any) ([]audit.Row, error) {
	rows, _ := s.pool.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(rs pgx.CollectableRow) (audit.Row, error) {
		var r audit.Row
		var idx *int64
		var logID *string
		err := rs.Scan(&r.Seq, &r.ExchangeID, &r.Time, &r.Requester, &r.Provider, &r.Service, &r.Purpose,
			&r.Outcome, &r.Reason, &r.SubjectIndex, &r.Period, &r.Nonce, &r.Ciphertext, &r.Leaf, &idx, &r.Kind, &r.SubjectKind, &logID)
		if logID != nil {
			r.Log = *logID
		}
		r.Time = r.Time.UTC()
		if len(r.Ciphertext) == 0 { // erased
			r.Ciphertext, r.Nonce, r.SubjectIndex = nil, nil, nil
		}
		r.Index = -1
		if idx != nil {
			r.Index = *idx
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	return out, nil
}

// Key implements audit.Store.
func (s *AuditStore) Key(ctx context.Context, period string) (audit.DataKey, error) {
	k := audit.DataKey{Period: period}
	err := s.pool.QueryRow(ctx, `SELECT kek_id, wrapped FROM audit_keys WHERE period = $1`, period).Scan(&k.KEKID, &k.Wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, fmt.Errorf("audit key %s: %w", period, crossroads.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("audit key %s: %w", period, err)
	}
	return k, nil
}

// PutKey implements audit.Store. A conflicting insert waits for the other
// transaction, so the following read (a new snapshot) sees the winner.
func (s *AuditStore) PutKey(ctx context.Context, k audit.DataKey) (audit.DataKey, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_keys(period, kek_id, wrapped) VALUES ($1, $2, $3) ON CONFLICT(period) DO NOTHING`,
		k.Period, k.KEKID, k.Wrapped); err != nil {
		return k, fmt.Errorf("audit put key %s: %w", k.Period, classify(err))
	}
	out := audit.DataKey{Period: k.Period}
	if err := s.pool.QueryRow(ctx, `SELECT kek_id, wrapped FROM audit_keys WHERE period = $1`, k.Period).Scan(&out.KEKID, &out.Wrapped); err != nil {
		return k, fmt.Errorf("audit put key %s: %w", k.Period, err)
	}
	return out, nil
}

// Keys implements audit.Store, ordered by period.
func (s *AuditStore) Keys(ctx context.Context) ([]audit.DataKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT period, kek_id, wrapped FROM audit_keys ORDER BY period`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.DataKey, error) {
		var k audit.DataKey
		err := r.Scan(&k.Period, &k.KEKID, &k.Wrapped)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	return out, nil
}

// ReplaceKey implements audit.Store.
func (s *AuditStore) ReplaceKey(ctx context.Context, k audit.DataKey) error {
	tag, err := s.pool.Exec(ctx, `UPDATE audit_keys SET kek_id = $1, wrapped = $2 WHERE period = $3`, k.KEKID, k.Wrapped, k.Period)
	if err != nil {
		return fmt.Errorf("audit replace key %s: %w", k.Period, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("audit replace key %s: %w", k.Period, crossroads.ErrNotFound)
	}
	return nil
}

// Erase implements audit.Store: an UPDATE of the expired rows (the only one
// the record partitions see). The old tuple versions keep the erased bytes
// until VACUUM reclaims them; run VACUUM on the partitions after erasing.
func (s *AuditStore) Erase(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE audit_records SET ciphertext = ''::bytea, nonce = ''::bytea, subject_index = NULL
		WHERE (seq, time) IN (SELECT seq, time FROM audit_records
			WHERE time < $1 AND octet_length(ciphertext) > 0 ORDER BY time, seq LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("audit erase: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}

// DeleteKey implements audit.Store.
func (s *AuditStore) DeleteKey(ctx context.Context, period string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM audit_keys WHERE period = $1`, period); err != nil {
		return fmt.Errorf("audit delete key %s: %w", period, classify(err))
	}
	return nil
}

// Cursor implements audit.CursorStore.
func (s *AuditStore) Cursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT position FROM audit_cursors WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit cursor %s: %w", name, err)
	}
	return pos, nil
}

// SetCursor implements audit.CursorStore.
func (s *AuditStore) SetCursor(ctx context.Context, name string, pos int64) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_cursors(name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`, name, pos); err != nil {
		return fmt.Errorf("audit set cursor %s: %w", name, classify(err))
	}
	return nil
}
