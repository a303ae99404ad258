package hub

import (
	"context"

	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/storage"
)

// Batch consultation (package batch): POST /v1/batches and its workers,
// which run every item through the hub's exchange pipeline.
func init() {
	addFeature(feature{
		name: "batch",
		open: func(ctx context.Context, h *Hub) ([]httpapi.Route, error) {
			st, err := storage.OpenBatch(ctx, h.cfg.DataDir, h.cfg.DatabaseURL)
			if err != nil {
				return nil, err
			}
			h.batch = batch.New(batch.Config{
				Store: st, Pipeline: h.Exchange, Directory: h.Directory, Audit: h.Trail, Logger: h.log.With("feature", "batch"),
				Options: h.cfg.Batch,
			})
			return h.batch.Routes(), nil
		},
		run: func(ctx context.Context, h *Hub) { h.batch.Run(ctx) },
		close: func(h *Hub) error {
			if h.batch == nil {
				return nil
			}
			return h.batch.Close()
		},
	})
}

// Batch returns the batch service (tests, tools).
func (h *Hub) Batch() *batch.Service { return h.batch }
