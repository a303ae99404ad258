// Package spe is the secure processing profile of the hub (seed 002,
// issue 14): one isolated workspace per data permit, into which the data
// holders the permit names upload its datasets over tus (resumable), where
// the researchers it names run declarative aggregate queries, and out of
// which only checked results leave (automatically, or after two
// reviewers), alone or merged with the partial results of the same
// permit's workspaces on peer hubs (federated).
//
// Isolation (SPER-6): each workspace is a directory of its own under the
// hub's data directory, opened through an os.Root (no path, ".." or
// symbolic link leads out of it), and every file in it is sealed with a
// key of its own (AES-256-GCM, segment by segment), wrapped by the hub's
// key provider (package keys, secret kind "spe-workspace:<permit>"). The
// key is unwrapped only to serve a request of one of the permit's members
// (SDR-2): no operator route reads contents.
//
// A permit that expires or is revoked terminates its workspace at once
// (OPR-5): every request is checked against the permit, transfers and
// queries in progress check it again between segments, and a watcher
// terminates the workspaces of permits no longer in force. An operator may
// halt a workspace (OPR-20): in-flight requests are cancelled, the members'
// connections closed, and every later request refused. Every act is a
// RecordSPE event of the audit trail, committed before it is acknowledged.
package spe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/limit"
)

// KeyKind is the key-ring secret kind of a permit's workspace key.
func KeyKind(permit string) string { return "spe-workspace:" + permit }

// Keyring is the part of keys.Keyring the workspaces use.
type Keyring interface {
	Ensure(ctx context.Context, kind string, gen func() ([]byte, string, error)) (keys.Secret, error)
}

// Config configures the service.
type Config struct {
	// Dir holds the workspaces, one directory each (the hub's
	// <data dir>/spe).
	Dir   string
	Store Store
	Audit crossroads.AuditLog
	Keys  Keyring
	// Permit returns the authorisation with the given id (the hub's
	// directory, kept current with the registers).
	Permit func(id string) (*crossroads.Authorisation, bool)
	// Permits lists the authorisations (GET /v1/spe/permits); nil: none.
	Permits func() []*crossroads.Authorisation
	// Limiter and Limits rate-limit each caller in each workspace
	// (TIR-16, TIR-36); nil Limiter: no limit.
	Limiter *limit.Limiter
	Limits  crossroads.Limits
	// CloseSessions closes the connections of the given participants
	// (the hub's connection tracker); nil: only in-flight requests end.
	CloseSessions func(participants []string) int
	// MaxUploadBytes bounds an upload when the permit sets no bound
	// (default 1 GiB).
	MaxUploadBytes int64
	// QueryTimeout bounds a query (default 2 minutes).
	QueryTimeout time.Duration
	// Peers are the clients that reach peer hubs for federated queries, by
	// the peer hub's id in the permits (Permit.Peers[].Hub): each with the
	// peer's CA as roots and the certificate the peer issued to this hub
	// (TIR-30, TIR-31). A permit's peer without a client is unreachable.
	Peers map[string]*http.Client
	// Progress, when set, is called before every segment a transfer
	// writes or a query reads (stage "upload" or "query", with the bytes
	// so far): for metrics, and for tests that act mid-way.
	Progress func(permit, stage string, n int64)
	// Hub is this hub's participant id (federated queries name it).
	Hub    string
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultLimits bound each caller in each workspace unless configured:
// enough for a tus client's chunks and a researcher's queries.
var DefaultLimits = crossroads.Limits{RatePerSecond: 20, Burst: 40, MaxConcurrent: 8}

// Service serves the workspaces.
type Service struct {
	cfg Config

	mu     sync.Mutex
	spaces map[string]*space
}

// New opens the service.
func New(cfg Config) (*Service, error) {
	if cfg.Dir == "" || cfg.Store == nil || cfg.Audit == nil || cfg.Keys == nil || cfg.Permit == nil {
		return nil, errors.New("spe: Dir, Store, Audit, Keys and Permit are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 1 << 30
	}
	if cfg.Limits == (crossroads.Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 2 * time.Minute
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spe: %w", err)
	}
	return &Service{cfg: cfg, spaces: map[string]*space{}}, nil
}

// Close ends every in-flight request of every workspace.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spaces {
		sp.cancel(errClosed)
		sp.root.Close()
	}
	s.spaces = map[string]*space{}
	return nil
}

var (
	errClosed = errors.New("spe: service closed")
	// ErrHalted: the workspace was halted or terminated while a request
	// of it was in progress.
	ErrHalted = errors.New("spe: workspace halted")
)

// permitID is the form of an authorisation id (apply's id pattern): no
// separator, never "." or "..", so it names one directory entry.
var permitID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// space is an open workspace.
type space struct {
	permit string
	root   *os.Root
	ctx    context.Context // cancelled (with ErrHalted) when halted or terminated
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	state Workspace
	key   []byte // unwrapped on a member's first request
	tus   http.Handler

	queryMu sync.Mutex // one query or review at a time: history and budget move together
}

// space opens (creating on first use) the workspace of permit a.
func (s *Service) space(ctx context.Context, a *crossroads.Authorisation) (*space, error) {
	if !permitID.MatchString(a.ID) {
		return nil, fmt.Errorf("spe: %w: permit id %q", crossroads.ErrInvalid, a.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp, ok := s.spaces[a.ID]; ok {
		return sp, nil
	}
	w, err := s.cfg.Store.Workspace(ctx, a.ID)
	created := errors.Is(err, crossroads.ErrNotFound)
	switch {
	case created:
		now := s.cfg.Now().UTC()
		w = Workspace{Permit: a.ID, State: StateOpen, Created: now, Changed: now}
	case err != nil:
		return nil, fmt.Errorf("spe: workspace %s: %w", a.ID, err)
	}
	dir := filepath.Join(s.cfg.Dir, a.ID)
	for _, d := range []string{dir, filepath.Join(dir, "uploads"), filepath.Join(dir, "results")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("spe: workspace %s: %w", a.ID, err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("spe: workspace %s: %w", a.ID, err)
	}
	if created {
		// The key first: a workspace never exists without its own key.
		if _, err := s.cfg.Keys.Ensure(ctx, KeyKind(a.ID), newKey); err != nil {
			root.Close()
			return nil, fmt.Errorf("spe: workspace %s key: %w", a.ID, err)
		}
		if err := s.record(ctx, a, "workspace-open", hubActor, "", nil); err != nil {
			root.Close()
			return nil, err
		}
		if err := s.cfg.Store.PutWorkspace(ctx, w); err != nil {
			root.Close()
			return nil, fmt.Errorf("spe: workspace %s: %w", a.ID, err)
		}
	}
	sp := &space{permit: a.ID, root: root, state: w}
	sp.ctx, sp.cancel = context.WithCancelCause(context.Background())
	if w.State != StateOpen {
		sp.cancel(ErrHalted)
	}
	sp.tus, err = s.newTus(sp)
	if err != nil {
		root.Close()
		return nil, err
	}
	s.spaces[a.ID] = sp
	return sp, nil
}

// done is the workspace's context: cancelled when it halts.
func (sp *space) done() context.Context {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.ctx
}

func newKey() ([]byte, string, error) {
	k := make([]byte, 32)
	rand.Read(k)
	return k, "", nil
}

// contentKey unwraps the workspace key. Only handlers that have checked
// the caller is a member of the permit call it (SDR-2).
func (s *Service) contentKey(ctx context.Context, sp *space) ([]byte, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.key != nil {
		return sp.key, nil
	}
	sec, err := s.cfg.Keys.Ensure(ctx, KeyKind(sp.permit), func() ([]byte, string, error) {
		return nil, "", errors.New("the workspace key is missing")
	})
	if err != nil {
		return nil, fmt.Errorf("spe: workspace %s key: %w", sp.permit, err)
	}
	sp.key = sec.Key
	return sp.key, nil
}

// live reports why work in sp must stop now: the workspace halted or
// terminated, or its permit no longer in force (checked between segments
// of a transfer or a query).
func (s *Service) live(sp *space) func() error {
	return func() error {
		if sp.done().Err() != nil {
			return ErrHalted
		}
		a, ok := s.cfg.Permit(sp.permit)
		if !ok || !crossroads.PermitActiveAt(a, s.cfg.Now()) {
			go s.Terminate(context.Background(), sp.permit, "the permit is no longer in force")
			return ErrHalted
		}
		return nil
	}
}

// hubActor is the actor of what the hub does by itself (termination at
// expiry, opening a workspace).
const hubActor = "hub"

// record commits a RecordSPE event about permit a.
func (s *Service) record(ctx context.Context, a *crossroads.Authorisation, action, actor, user string, detail any) error {
	return s.recordOutcome(ctx, a, action, actor, user, crossroads.OutcomeAllowed, crossroads.ReasonAllowed, detail)
}

func (s *Service) recordOutcome(ctx context.Context, a *crossroads.Authorisation, action, actor, user, outcome string, reason crossroads.Reason, detail any) error {
	if actor == "" {
		actor = hubActor
	}
	rec, err := audit.Event(crossroads.RecordSPE, action, actor, user, detail)
	if err != nil {
		return err
	}
	rec.AuthorisationID, rec.AuthorisationRef = a.ID, a.Reference
	rec.Outcome, rec.Reason = outcome, reason
	if _, err := s.cfg.Audit.Commit(ctx, rec); err != nil {
		return fmt.Errorf("spe: audit %s: %w", action, err)
	}
	return nil
}

// Halt halts a workspace at once (OPR-20): every in-flight request of it
// is cancelled, the members' connections are closed and every later
// request is refused, until the permit's workspace is resumed. The halt
// takes effect before it is recorded (stopping misuse comes first); an
// error says it could not be recorded or persisted.
func (s *Service) Halt(ctx context.Context, permit, actor, reason string) error {
	return s.stop(ctx, permit, StateHalted, actor, reason)
}

// Terminate ends a workspace for good (OPR-5: its permit expired or was
// revoked), as Halt does.
func (s *Service) Terminate(ctx context.Context, permit, reason string) error {
	return s.stop(ctx, permit, StateTerminated, "", reason)
}

func (s *Service) stop(ctx context.Context, permit, state, actor, reason string) error {
	a, ok := s.cfg.Permit(permit)
	if !ok || a.Kind != crossroads.KindDataPermit {
		if state != StateTerminated {
			return fmt.Errorf("spe: permit %s: %w", permit, crossroads.ErrNotFound)
		}
		// The permit is gone from the registers: its workspace ends all the same.
		a = &crossroads.Authorisation{ID: permit, Kind: crossroads.KindDataPermit, Permit: &crossroads.Permit{}}
	}
	sp, err := s.space(ctx, a)
	if err != nil {
		return err
	}
	sp.mu.Lock()
	prev := sp.state
	if prev.State == StateTerminated || prev.State == state {
		sp.mu.Unlock()
		return nil
	}
	sp.cancel(ErrHalted) // in-flight transfers and queries stop at their next segment
	now := s.cfg.Now().UTC()
	sp.state = Workspace{Permit: permit, State: state, Reason: reason, Actor: actor, Created: prev.Created, Changed: now}
	next := sp.state
	sp.mu.Unlock()
	var members []string
	if a.Permit != nil {
		for _, m := range a.Permit.Members {
			if m.Participant != actor { // whoever halts keeps the session that asked
				members = append(members, m.Participant)
			}
		}
	}
	closed := 0
	if s.cfg.CloseSessions != nil {
		closed = s.cfg.CloseSessions(members)
	}
	action := "halt"
	if state == StateTerminated {
		action = "terminate"
	}
	s.cfg.Logger.Warn("spe: workspace stopped", "permit", permit, "state", state, "reason", reason, "actor", actor, "connections", closed)
	err1 := s.record(ctx, a, action, actor, "", map[string]any{"reason": reason, "connectionsClosed": closed, "previous": prev.State})
	err2 := s.cfg.Store.PutWorkspace(ctx, next)
	return errors.Join(err1, err2)
}

// Resume reopens a halted workspace whose permit is in force.
func (s *Service) Resume(ctx context.Context, permit, actor string) error {
	a, ok := s.cfg.Permit(permit)
	if !ok || a.Kind != crossroads.KindDataPermit {
		return fmt.Errorf("spe: permit %s: %w", permit, crossroads.ErrNotFound)
	}
	if !crossroads.PermitActiveAt(a, s.cfg.Now()) {
		return fmt.Errorf("spe: permit %s is not in force: %w", permit, crossroads.ErrConflict)
	}
	sp, err := s.space(ctx, a)
	if err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.state.State != StateHalted {
		return fmt.Errorf("spe: workspace %s is %s: %w", permit, sp.state.State, crossroads.ErrConflict)
	}
	next := sp.state
	next.State, next.Reason, next.Actor, next.Changed = StateOpen, "", actor, s.cfg.Now().UTC()
	if err := s.record(ctx, a, "resume", actor, "", nil); err != nil {
		return err
	}
	if err := s.cfg.Store.PutWorkspace(ctx, next); err != nil {
		return err
	}
	sp.state = next
	sp.ctx, sp.cancel = context.WithCancelCause(context.Background())
	return nil
}

// Watch terminates, every interval, the open workspaces whose permit is
// no longer in force, until ctx is done.
func (s *Service) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var ids []string
		for id, sp := range s.spaces {
			if sp.done().Err() == nil {
				ids = append(ids, id)
			}
		}
		s.mu.Unlock()
		now := s.cfg.Now()
		for _, id := range ids {
			if a, ok := s.cfg.Permit(id); !ok || !crossroads.PermitActiveAt(a, now) {
				if err := s.Terminate(ctx, id, "the permit is no longer in force"); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Error("spe: terminate workspace", "permit", id, "err", err)
				}
			}
		}
	}
}
