package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/crossroads-hub/crossroads/httpapi"
)

// A feature is a part of the hub beyond the exchange path — mutation push,
// batch consultation, the federation gateway, secure processing, the
// console — that brings its own stores, routes and background jobs. Each
// lives in its own file of this package and adds itself to features in an
// init function, so that Open, Serve and Close need not know them.
type feature struct {
	name string
	// open prepares the feature on a hub whose stores, trail, directory,
	// pipeline and key ring are open, and returns the routes it serves.
	open func(ctx context.Context, h *Hub) ([]httpapi.Route, error)
	// run runs its background jobs until ctx is done (nil: none). It must
	// return once ctx is done.
	run func(ctx context.Context, h *Hub)
	// close releases what open opened (nil: nothing).
	close func(h *Hub) error
}

// features are registered by init functions (push.go, batch.go, …), in
// file-name order.
var features []feature

func addFeature(f feature) { features = append(features, f) }

// openFeatures opens every feature and returns their routes.
func (h *Hub) openFeatures(ctx context.Context) ([]httpapi.Route, error) {
	var routes []httpapi.Route
	for _, f := range features {
		r, err := f.open(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		h.opened = append(h.opened, f)
		routes = append(routes, r...)
	}
	return routes, nil
}

// runFeatures starts the features' background jobs.
func (h *Hub) runFeatures(ctx context.Context, jobs *sync.WaitGroup) {
	for _, f := range h.opened {
		if f.run != nil {
			jobs.Go(func() { f.run(ctx, h) })
		}
	}
}

// closeFeatures closes the opened features, last opened first.
func (h *Hub) closeFeatures() error {
	var errs []error
	for i := len(h.opened) - 1; i >= 0; i-- {
		if c := h.opened[i].close; c != nil {
			if err := c(h); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", h.opened[i].name, err))
			}
		}
	}
	h.opened = nil
	return errors.Join(errs...)
}
