package audit

import (
	"context"
	"time"

	"github.com/transparency-dev/tessera"
)

// LogStorage is where the Merkle log lives, injected the way Tessera's own
// drivers are: Driver is handed to tessera.NewAppender by the node that
// integrates. The default (Config.Log nil) is Tessera's POSIX driver in
// Dir/log. A log shared by several hub nodes (Tessera's MySQL driver on
// MariaDB, see package store/mysqllog) also needs Reader, through which
// the nodes that do not integrate serve checkpoints, tiles and proofs,
// and a Config.Lease electing the one integrator.
type LogStorage struct {
	// Driver is a Tessera storage driver (required).
	Driver tessera.Driver
	// Reader reads the log without appending (required with a Lease).
	Reader tessera.LogReader
	// Barrier, if set, returns once no write begun by a previous
	// integrator can still land in the log (e.g. a locking read of the
	// tree state, which waits for an open transaction of a killed node to
	// end). The new integrator calls it before reconciling the log with
	// the store, so that it never re-adds records a dead node's last batch
	// put in the log.
	Barrier func(context.Context) error
	// MinCheckpointInterval is the driver's lower bound on the interval
	// between checkpoints (Tessera's MySQL driver: 1 s). The trail's
	// MaxMergeDelay is at least three times as long.
	MinCheckpointInterval time.Duration
}

// Lease elects one holder among the nodes sharing a store; the integrator
// of a shared log holds one (store/postgres: a PostgreSQL advisory lock).
type Lease interface {
	// Acquire blocks until the caller holds the lease, or ctx is done.
	// The returned context is done as soon as the lease is lost (the
	// holder stops what the lease guards) or released; release gives the
	// lease up and must be called once.
	Acquire(ctx context.Context) (held context.Context, release func(), err error)
}

// Integrating reports whether this trail is integrating records into its
// log now: always without a Lease, only while holding it with one.
func (t *Trail) Integrating() bool { return t.lg.leading.Load() }

// Reader reads the trail's Merkle log (checkpoint, tiles, entry bundles).
func (t *Trail) Reader() tessera.LogReader { return t.lg.reader }
