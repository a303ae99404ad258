package hub

import (
	"context"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/spe"
	"github.com/crossroads-hub/crossroads/storage"
)

// Secure processing (issue 14): the workspaces of data permits, under
// /v1/spe/…, for participants (every member of a permit is a participant
// with its own certificate); the spe store beside the registers.
func init() {
	addFeature(feature{name: "spe", open: openSPE, run: runSPE, close: closeSPE})
}

// speWatch is how often the hub looks for workspaces whose permit has
// ended (transfers and queries in progress check at every segment).
const speWatch = 250 * time.Millisecond

func openSPE(ctx context.Context, h *Hub) ([]httpapi.Route, error) {
	st, err := storage.OpenSPE(ctx, storage.Options{Dir: h.cfg.DataDir, DatabaseURL: h.cfg.DatabaseURL})
	if err != nil {
		return nil, err
	}
	svc, err := spe.New(spe.Config{
		Dir: storage.SPEDir(h.cfg.DataDir), Store: st, Audit: h.Trail, Keys: h.Keys,
		Permit: h.Directory.Authorisation,
		Permits: func() []*crossroads.Authorisation {
			n := h.Directory.Snapshot()
			out := make([]*crossroads.Authorisation, 0, len(n.Authorisations))
			for i := range n.Authorisations {
				out = append(out, &n.Authorisations[i])
			}
			return out
		},
		Limiter: h.Limiter, Limits: h.cfg.SPELimits,
		CloseSessions: h.closeSessionsOf,
		Hub:           HubID, Logger: h.log,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	h.spe = &speFeature{svc: svc, store: st}
	var routes []httpapi.Route
	for _, r := range svc.Routes() {
		routes = append(routes, httpapi.Route{Method: r.Method, Pattern: r.Pattern, Access: httpapi.Participant, Handler: r.Handler})
	}
	return routes, nil
}

type speFeature struct {
	svc   *spe.Service
	store storage.SPEStore
}

func runSPE(ctx context.Context, h *Hub) { h.spe.svc.Watch(ctx, speWatch) }

func closeSPE(h *Hub) error {
	if h.spe == nil {
		return nil
	}
	h.spe.svc.Close()
	return h.spe.store.Close()
}

// SPE returns the secure-processing service (nil before Open).
func (h *Hub) SPE() *spe.Service {
	if h.spe == nil {
		return nil
	}
	return h.spe.svc
}

// closeSessionsOf closes the connections of the participants' current
// certificates (a halted workspace's members: OPR-20).
func (h *Hub) closeSessionsOf(participants []string) int {
	certs, err := h.Registers.Certificates(context.Background())
	if err != nil {
		h.log.Error("spe: list certificates to close sessions", "err", err)
		return 0
	}
	want := map[string]bool{}
	for _, p := range participants {
		want[p] = true
	}
	var serials []string
	for _, c := range certs {
		if want[c.Participant] {
			serials = append(serials, c.Serial)
		}
	}
	return h.Tracker.CloseSerial(serials...)
}
