package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/spe"
)

// SPE is the secure-processing store (spe.Store) in its own SQLite file.
type SPE struct{ c *conn }

var _ spe.Store = (*SPE)(nil)

// OpenSPE opens, creating and migrating if needed, the store at file.
func OpenSPE(ctx context.Context, file string) (*SPE, error) {
	c, err := openDB(ctx, file, "spe")
	if err != nil {
		return nil, err
	}
	return &SPE{c: c}, nil
}

// Close closes the database.
func (s *SPE) Close() error { return s.c.close() }

func speErr(op string, err error) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("spe store: %s: %w: %w", op, crossroads.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("spe store: %s: %w", op, constraintErr(err))
	}
	return nil
}

func (s *SPE) Workspace(ctx context.Context, permit string) (spe.Workspace, error) {
	var w spe.Workspace
	var created, changed string
	err := s.c.r.QueryRowContext(ctx, `SELECT permit, state, reason, actor, created, changed FROM spe_workspaces WHERE permit = ?`, permit).
		Scan(&w.Permit, &w.State, &w.Reason, &w.Actor, &created, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("spe store: workspace %s: %w", permit, crossroads.ErrNotFound)
	}
	if err != nil {
		return w, speErr("workspace", err)
	}
	var err1, err2 error
	w.Created, err1 = decTime(created)
	w.Changed, err2 = decTime(changed)
	return w, errors.Join(err1, err2)
}

func (s *SPE) PutWorkspace(ctx context.Context, w spe.Workspace) error {
	created, err1 := encTime(w.Created)
	changed, err2 := encTime(w.Changed)
	if err := errors.Join(err1, err2); err != nil {
		return speErr("put workspace", err)
	}
	res, err := s.c.w.ExecContext(ctx, `INSERT INTO spe_workspaces(permit, state, reason, actor, created, changed) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(permit) DO UPDATE SET state = excluded.state, reason = excluded.reason, actor = excluded.actor, changed = excluded.changed
		WHERE spe_workspaces.state <> 'terminated' OR excluded.state = 'terminated'`,
		w.Permit, w.State, w.Reason, w.Actor, created, changed)
	if err != nil {
		return speErr("put workspace", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("spe store: workspace %s is terminated: %w", w.Permit, crossroads.ErrConflict)
	}
	return nil
}

func (s *SPE) PutUpload(ctx context.Context, u spe.Upload) error {
	at, err := encTime(u.At)
	if err != nil {
		return speErr("put upload", err)
	}
	_, err = s.c.w.ExecContext(ctx, `INSERT INTO spe_uploads(permit, id, dataset, holder, user_id, filename, type, size, sha256, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.Permit, u.ID, u.Dataset, u.Holder, u.User, u.Filename, u.Type, u.Size, u.SHA256, at)
	return speErr("put upload", err)
}

func (s *SPE) Uploads(ctx context.Context, permit string) ([]spe.Upload, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT permit, id, dataset, holder, user_id, filename, type, size, sha256, at FROM spe_uploads
		WHERE permit = ? ORDER BY at, id`, permit)
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
		if u.At, err = decTime(at); err != nil {
			return nil, speErr("uploads", err)
		}
		out = append(out, u)
	}
	return out, speErr("uploads", rows.Err())
}

func (s *SPE) PutRelease(ctx context.Context, r spe.Release) error {
	created, err1 := encTime(r.Created)
	decided, err2 := encOptTime(r.Decided)
	if err := errors.Join(err1, err2); err != nil {
		return speErr("put release", err)
	}
	q := string(r.Query)
	if q == "" {
		q = "null"
	}
	_, err := s.c.w.ExecContext(ctx, `INSERT INTO spe_releases(permit, id, requester, query, status, noisy, federated, created, decided)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(permit, id) DO UPDATE SET status = excluded.status, decided = excluded.decided`,
		r.Permit, r.ID, r.Requester, q, r.Status, r.Noisy, r.Federated, created, decided)
	return speErr("put release", err)
}

const releaseCols = `SELECT permit, id, requester, query, status, noisy, federated, created, decided FROM spe_releases`

func scanRelease(sc interface{ Scan(...any) error }) (spe.Release, error) {
	var r spe.Release
	var q, created string
	var decided sql.NullString
	if err := sc.Scan(&r.Permit, &r.ID, &r.Requester, &q, &r.Status, &r.Noisy, &r.Federated, &created, &decided); err != nil {
		return r, err
	}
	r.Query = []byte(q)
	var err1, err2 error
	r.Created, err1 = decTime(created)
	r.Decided, err2 = decOptTime(decided)
	return r, errors.Join(err1, err2)
}

func (s *SPE) Release(ctx context.Context, permit, id string) (spe.Release, error) {
	r, err := scanRelease(s.c.r.QueryRowContext(ctx, releaseCols+` WHERE permit = ? AND id = ?`, permit, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("spe store: release %s/%s: %w", permit, id, crossroads.ErrNotFound)
	}
	return r, speErr("release", err)
}

func (s *SPE) Releases(ctx context.Context, permit string) ([]spe.Release, error) {
	rows, err := s.c.r.QueryContext(ctx, releaseCols+` WHERE permit = ? ORDER BY created, id`, permit)
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
	at, err := encTime(r.At)
	if err != nil {
		return speErr("add review", err)
	}
	_, err = s.c.w.ExecContext(ctx, `INSERT INTO spe_reviews(permit, release, reviewer, decision, note, at, seq)
		VALUES (?, ?, ?, ?, ?, ?, (SELECT count(*) FROM spe_reviews WHERE permit = ? AND release = ?))`,
		r.Permit, r.Release, r.Reviewer, r.Decision, r.Note, at, r.Permit, r.Release)
	if err != nil && strings.Contains(err.Error(), "PRIMARY KEY") {
		return fmt.Errorf("spe store: %s already decided: %w", r.Reviewer, crossroads.ErrConflict)
	}
	return speErr("add review", err)
}

func (s *SPE) Reviews(ctx context.Context, permit, release string) ([]spe.Review, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT permit, release, reviewer, decision, note, at FROM spe_reviews
		WHERE permit = ? AND release = ? ORDER BY seq`, permit, release)
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
		if r.At, err = decTime(at); err != nil {
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
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return spent, speErr("spend", err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT epsilon, delta FROM spe_budget WHERE permit = ?`, permit).Scan(&spent.Epsilon, &spent.Delta)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return spent, speErr("spend", err)
	}
	next := crossroads.PrivacyBudget{Epsilon: spent.Epsilon + epsilon, Delta: spent.Delta + delta}
	if spe.Exceeds(next, limit) {
		return spent, spe.ErrBudget
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO spe_budget(permit, epsilon, delta) VALUES (?, ?, ?)
		ON CONFLICT(permit) DO UPDATE SET epsilon = excluded.epsilon, delta = excluded.delta`, permit, next.Epsilon, next.Delta); err != nil {
		return spent, speErr("spend", err)
	}
	if err := tx.Commit(); err != nil {
		return spent, speErr("spend", err)
	}
	return next, nil
}

func (s *SPE) Spent(ctx context.Context, permit string) (crossroads.PrivacyBudget, error) {
	var spent crossroads.PrivacyBudget
	err := s.c.r.QueryRowContext(ctx, `SELECT epsilon, delta FROM spe_budget WHERE permit = ?`, permit).Scan(&spent.Epsilon, &spent.Delta)
	if errors.Is(err, sql.ErrNoRows) {
		return spent, nil
	}
	return spent, speErr("spent", err)
}
