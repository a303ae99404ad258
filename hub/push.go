package hub

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/push"
	"github.com/crossroads-hub/crossroads/storage"
)

// Mutation push (issue 10, package push): its routes, its outbox
// (push.db, or the push tables on PostgreSQL) and its delivery worker.

func init() {
	addFeature(feature{name: "push", open: openPush, run: runPush, close: closePush})
}

// PushOptions tune mutation push (zero: push's defaults).
type PushOptions struct {
	Workers     int           // deliveries in flight on this node (default 8)
	SendTimeout time.Duration // one delivery attempt (default 10 s)
	MinBackoff  time.Duration // first retry (default 1 s)
	MaxBackoff  time.Duration // longest wait between attempts (default 5 min)
	Horizon     time.Duration // dead letter after (default 24 h)
	Poll        time.Duration // idle look for due deliveries (default 200 ms)
}

// Mutations is the hub's mutation push.
type Mutations struct {
	*push.Push
	Store storage.PushStore
}

func openPush(ctx context.Context, h *Hub) ([]httpapi.Route, error) {
	st, err := storage.OpenPush(ctx, h.cfg.DataDir, h.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	o := h.cfg.Push
	p := push.New(push.Config{
		Directory: h.Directory, Kinds: personid.DefaultKinds(h.Scheme), Store: st, Audit: h.Trail, Signer: h.Signer, Sealer: h.Sealer,
		Transport: h.Upstream, Registerer: h.Registry, Logger: h.log,
		Workers: o.Workers, SendTimeout: o.SendTimeout, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Horizon: o.Horizon, Poll: o.Poll,
	})
	h.Push = &Mutations{Push: p, Store: st}
	h.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crossroads_push_backlog", Help: "Outbox entries not yet delivered (pending, or available in a pull feed).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := st.Counts(ctx)
		if err != nil {
			return -1
		}
		return float64(c[push.StatePending] + c[push.StateAvailable])
	}))
	return p.Routes(), nil
}

func runPush(ctx context.Context, h *Hub) { h.Push.Run(ctx) }

func closePush(h *Hub) error {
	if h.Push == nil {
		return nil
	}
	return h.Push.Store.Close()
}
