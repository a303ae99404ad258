package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/spe"
)

// SPE is the secure-processing store (spe.Store) in PostgreSQL. Times are
// text in one fixed-width UTC layout, exact to the nanosecond.
type SPE struct{ pool *pgxpool.Pool }

var _ spe.Store = (*SPE)(nil)

// OpenSPE connects to dsn and migrates the spe schema.
func OpenSPE(ctx context.Context, dsn string) (*SPE, error) {
	pool, err := openPool(ctx, dsn, "spe")
	if err != nil {
		return nil, err
	}
	return &SPE{pool: pool}, nil
}

// Close closes the connections.
func (s *SPE) Close() error {
	s.pool.Close()
	return nil
}

const speTime = "2006-01-02T15:04:05.000000000Z"

func speEncTime(t time.Time) (string, error) {
	u := t.UTC()
	if u.Year() < 0 || u.Year() > 9999 {
		return "", fmt.Errorf("%w: time %v outside years 0000–9999", crossroads.ErrInvalid, t)
	}
	return u.Format(speTime), nil
}

func speEncOptTime(t time.Time) (*string, error) {
	if t.IsZero() {
		return nil, nil
	}
	s, err := speEncTime(t)
	return &s, err
}

func speDecTime(s string) (time.Time, error) { return time.Parse(speTime, s) }

func speDecOptTime(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	return speDecTime(*s)
}

func speErr(op string, err error) error {
	if err != nil {
		return fmt.Errorf("spe store: %s: %w", op, classify(err))
	}
	return nil
}

func (s *SPE) Workspace(ctx context.Context, permit string) (spe.Workspace, error) {
	var w spe.Workspace
	var created, changed string
	err := s.pool.QueryRow(ctx, `SELECT permit, state, reason, actor, created, changed FROM spe_workspaces WHERE permit = $1`, permit).
		Scan(&w.Permit, &w.State, &w.Reason, &w.Actor, &created, &changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, fmt.Errorf("spe store: workspace %s: %w", permit, crossroads.ErrNotFound)
	}
	if err != nil {
		return w, speErr("workspace", err)
	}
	var err1, err2 error
	w.Created, err1 = speDecTime(created)
	w.Changed, err2 = speDecTime(changed)
	return w, errors.Join(err1, err2)
}

func (s *SPE) PutWorkspace(ctx context.Context, w spe.Workspace) error {
	created, err1 := speEncTime(w.Created)
	changed, err2 := speEncTime(w.Changed)
	if err := errors.Join(err1, err2); err != nil {
		return speErr("put workspace", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO spe_workspaces(permit, state, reason, actor, created, changed) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (permit) DO UPDATE SET state = excluded.state, reason = excluded.reason, actor = excluded.actor, changed = excluded.changed
		WHERE spe_workspaces.state <> 'terminated' OR excluded.state = 'terminated'`,
		w.Permit, w.State, w.Reason, w.Actor, created, changed)
	if err != nil {
		return speErr("put workspace", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("spe store: workspace %s is terminated: %w", w.Permit, crossroads.ErrConflict)
	}
	return nil
}

func (s *SPE) PutUpload(ctx context.Context, u spe.Upload) error {
	at, err := speEncTime(u.At)
	if err != nil {
		return speErr("put upload", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO spe_uploads(permit, id, dataset, holder, user_id, filename, type, size, sha256, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, u.Permit, u.ID, u.Dataset, u.Holder, u.User, u.Filename, u.Type, u.Size, u.SHA256, at)
	return speErr("put upload", err)
}

func (s *SPE) Uploads(ctx context.Context, permit string) ([]spe.Upload, error) {
	rows, err := s.pool.Query(ctx, `SELECT permit, id, dataset, holder, user_id, filename, type, size, sha256, at FROM spe_uploads
		WHERE permit = $1 ORDER BY at, id`, permit)
	if err != nil {
		return nil, speErr("uploads", err)
	}
	defer rows.Close()
	var out []spe.Upload
	for rows.Next() {
		var u spe.Upload
		var at string
		if err := rows.Scan(&u.Permit, &u.ID, &u.Dataset, &u.Holder, &u.User, &u.Filename, &u.Type, &u.Size, &u.SHA256, &at); err != nil {
			return nil, speErr("uploads", err)
		}
		if u.At, err = speDecTime(at); err != nil {
			return nil, speErr("uploads", err)
		}
		out = append(out, u)
	}
	return out, speErr("uploads", rows.Err())
}

func (s *SPE) PutRelease(ctx context.Context, r spe.Release) error {
	created, err1 := speEncTime(r.Created)
	decided, err2 := speEncOptTime(r.Decided)
	if err := errors.Join(err1, err2); err != nil {
		return speErr("put release", err)
	}
	q := string(r.Query)
	if q == "" {
		q = "null"
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO spe_releases(permit, id, requester, query, status, noisy, federated, created, decided)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (permit, id) DO UPDATE SET status = excluded.status, decided = excluded.decided`,
		r.Permit, r.ID, r.Requester, q, r.Status, r.Noisy, r.Federated, created, decided)
	return speErr("put release", err)
}

const releaseCols = `SELECT permit, id, requester, query, status, noisy, federated, created, decided FROM spe_releases`

func scanRelease(sc pgx.Row) (spe.Release, error) {
	var r spe.Release
	var q, created string
	var decided *string
	if err := sc.Scan(&r.Permit, &r.ID, &r.Requester, &q, &r.Status, &r.Noisy, &r.Federated, &created, &decided); err != nil {
		return r, err
	}
	r.Query = []byte(q)
	var err1, err2 error
	r.Created, err1 = speDecTime(created)
	r.Decided, err2 = speDecOptTime(decided)
	return r, errors.Join(err1, err2)
}

func (s *SPE) Release(ctx context.Context, permit, id string) (spe.Release, error) {
	r, err := scanRelease(s.pool.QueryRow(ctx, releaseCols+` WHERE permit = $1 AND id = $2`, permit, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("spe store: release %s/%s: %w", permit, id, crossroads.ErrNotFound)
	}
	return r, speErr("release", err)
}

func (s *SPE) Releases(ctx context.Context, permit string) ([]spe.Release, error) {
	rows, err := s.pool.Query(ctx, releaseCols+` WHERE permit = $1 ORDER BY created, id`, permit)
	if err != nil {
		return nil, speErr("releases", err)
	}
	defer rows.Close()
	var out []spe.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, speErr("releases", err)
		}
		out = append(out, r)
	}
	return out, speErr("releases", rows.Err())
}

func (s *SPE) AddReview(ctx context.Context, r spe.Review) error {
	at, err := speEncTime(r.At)
	if err != nil {
		return speErr("add review", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO spe_reviews(permit, release, reviewer, decision, note, at, seq)
		VALUES ($1, $2, $3, $4, $5, $6, (SELECT count(*) FROM spe_reviews WHERE permit = $7 AND release = $8))`,
		r.Permit, r.Release, r.Reviewer, r.Decision, r.Note, at, r.Permit, r.Release)
	if errors.Is(classify(err), crossroads.ErrConflict) {
		return fmt.Errorf("spe store: %s already decided: %w", r.Reviewer, crossroads.ErrConflict)
	}
	return speErr("add review", err)
}

func (s *SPE) Reviews(ctx context.Context, permit, release string) ([]spe.Review, error) {
	rows, err := s.pool.Query(ctx, `SELECT permit, release, reviewer, decision, note, at FROM spe_reviews
		WHERE permit = $1 AND release = $2 ORDER BY seq`, permit, release)
	if err != nil {
		return nil, speErr("reviews", err)
	}
	defer rows.Close()
	var out []spe.Review
	for rows.Next() {
		var r spe.Review
		var at string
		if err := rows.Scan(&r.Permit, &r.Release, &r.Reviewer, &r.Decision, &r.Note, &at); err != nil {
			return nil, speErr("reviews", err)
		}
		if r.At, err = speDecTime(at); err != nil {
			return nil, speErr("reviews", err)
		}
		out = append(out, r)
	}
	return out, speErr("reviews", rows.Err())
}

func (s *SPE) SpendBudget(ctx context.Context, permit string, epsilon, delta float64, limit crossroads.PrivacyBudget) (crossroads.PrivacyBudget, error) {
	var spent crossroads.PrivacyBudget
	if !(epsilon >= 0 && delta >= 0) {
		return spent, fmt.Errorf("spe store: spend: %w: negative spend", crossroads.ErrInvalid)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return spent, speErr("spend", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO spe_budget(permit, epsilon, delta) VALUES ($1, 0, 0) ON CONFLICT (permit) DO NOTHING`, permit); err != nil {
		return spent, speErr("spend", err)
	}
	err = tx.QueryRow(ctx, `SELECT epsilon, delta FROM spe_budget WHERE permit = $1 FOR UPDATE`, permit).Scan(&spent.Epsilon, &spent.Delta)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return spent, speErr("spend", err)
	}
	next := crossroads.PrivacyBudget{Epsilon: spent.Epsilon + epsilon, Delta: spent.Delta + delta}
	if spe.Exceeds(next, limit) {
		return spent, spe.ErrBudget
	}
	if _, err := tx.Exec(ctx, `INSERT INTO spe_budget(permit, epsilon, delta) VALUES ($1, $2, $3)
		ON CONFLICT (permit) DO UPDATE SET epsilon = excluded.epsilon, delta = excluded.delta`, permit, next.Epsilon, next.Delta); err != nil {
		return spent, speErr("spend", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return spent, speErr("spend", err)
	}
	return next, nil
}

func (s *SPE) Spent(ctx context.Context, permit string) (crossroads.PrivacyBudget, error) {
	var spent crossroads.PrivacyBudget
	err := s.pool.QueryRow(ctx, `SELECT epsilon, delta FROM spe_budget WHERE permit = $1`, permit).Scan(&spent.Epsilon, &spent.Delta)
	if errors.Is(err, pgx.ErrNoRows) {
		return spent, nil
	}
	return spent, speErr("spent", err)
}
