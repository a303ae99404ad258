package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/httpapi"
)

// The person directory's snapshot (directory.WriteSnapshot): written every
// snapshotEvery and when the hub closes, read at start so that a node on a
// national directory need not read every integration from the store
// (issue 13). It is a cache: the store stays the truth, and a snapshot
// that cannot be used is ignored.

// snapshotEvery is how often the hub writes the directory's snapshot; well
// within directory.MaxSnapshotAge, so that a node killed at any moment
// restarts from one.
const snapshotEvery = 10 * time.Minute

func init() {
	addFeature(feature{
		name: "directory-snapshot",
		open: func(context.Context, *Hub) ([]httpapi.Route, error) { return nil, nil },
		run: func(ctx context.Context, h *Hub) {
			t := time.NewTicker(snapshotEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					h.writeSnapshot(ctx)
				}
			}
		},
		close: func(h *Hub) error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h.writeSnapshot(ctx)
			return nil
		},
	})
}

func snapshotFile(dataDir string) string { return filepath.Join(dataDir, directory.SnapshotFile) }

// openDirectory opens the directory from its snapshot when usable, from
// the store otherwise, and removes temporary files of snapshots a crash
// interrupted.
func openDirectory(ctx context.Context, h *Hub) (*directory.Directory, error) {
	if entries, err := os.ReadDir(h.cfg.DataDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".directory-snapshot-") {
				os.Remove(filepath.Join(h.cfg.DataDir, e.Name()))
			}
		}
	}
	start := time.Now()
	d, used, err := directory.OpenSnapshot(ctx, h.Registers, snapshotFile(h.cfg.DataDir))
	if err != nil {
		return nil, err
	}
	h.log.Info("person directory loaded", "from_snapshot", used, "took", time.Since(start).Round(time.Millisecond).String())
	return d, nil
}

func (h *Hub) writeSnapshot(ctx context.Context) {
	if h.Directory == nil {
		return
	}
	if err := h.Directory.WriteSnapshot(ctx, snapshotFile(h.cfg.DataDir)); err != nil {
		h.log.Debug("person directory snapshot not written", "err", err)
	}
}
