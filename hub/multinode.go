package hub

import (
	"context"
	"errors"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/store/mysqllog"
)

// leaser is a store that elects one holder among the nodes sharing it
// (store/postgres).
type leaser interface {
	Lease(name string) audit.Lease
}

// openSharedLog points the trail at the Merkle log shared by every node
// (cfg.LogDatabase), with the integrator elected by a lease on the shared
// PostgreSQL database.
func (h *Hub) openSharedLog(ctx context.Context, acfg *audit.Config) error {
	if h.cfg.LogDatabase == "" {
		return nil
	}
	ls, ok := h.audits.(leaser)
	if !ok || h.cfg.DatabaseURL == "" {
		return errors.New("a shared log database needs the audit records on PostgreSQL (--database-url)")
	}
	lg, err := mysqllog.Open(ctx, h.cfg.LogDatabase)
	if err != nil {
		return err
	}
	h.sharedLog = lg
	acfg.Log = &audit.LogStorage{Driver: lg.Driver(), Reader: lg.Reader(), Barrier: lg.Barrier,
		MinCheckpointInterval: mysqllog.MinCheckpointInterval}
	acfg.Lease = ls.Lease("audit-log")
	return nil
}

// runSIEM runs the SIEM export; on a shared database only the node holding
// the "siem" lease exports (the cursor is in the database), the others
// wait to take over.
func (h *Hub) runSIEM(ctx context.Context) {
	ls, ok := h.audits.(leaser)
	if !ok || h.cfg.DatabaseURL == "" {
		if err := h.SIEM.Run(ctx); err != nil {
			h.log.Error("SIEM export stopped", "err", err)
		}
		return
	}
	l := ls.Lease("siem")
	for ctx.Err() == nil {
		held, release, err := l.Acquire(ctx)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("SIEM lease", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(held, cancel)
		err = h.SIEM.Run(rctx)
		stop()
		cancel()
		release()
		if err != nil {
			h.log.Error("SIEM export stopped", "err", err)
			return
		}
	}
}
