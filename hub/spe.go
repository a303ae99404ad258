package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
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
		Limiter: h.Limiter, Limits: h.cfg.SPE.Limits, Peers: h.cfg.SPE.clients(h.log),
		CloseSessions: h.closeSessionsOf,
		Progress:      h.cfg.SPE.Progress, Hub: HubID, Logger: h.log,
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

// SPEOptions configure secure processing.
type SPEOptions struct {
	// Limits bound each caller in each workspace (zero: spe.DefaultLimits).
	Limits crossroads.Limits
	// Peers are the peer hubs federated queries may reach, by the id the
	// permits give them (Permit.Peers[].Hub): only these, each explicitly
	// (TIR-31).
	Peers map[string]SPEPeer
	// Progress observes transfers and queries segment by segment (see
	// spe.Config.Progress); nil: none.
	Progress func(permit, stage string, n int64)
}

// SPEPeer is how to reach one peer hub: its network CA (to verify its
// server certificate) and the client certificate it issued to this hub.
type SPEPeer struct {
	Roots       *x509.CertPool
	Certificate tls.Certificate
}

func (o SPEOptions) clients(log *slog.Logger) map[string]*http.Client {
	out := map[string]*http.Client{}
	for id, p := range o.Peers {
		cert := p.Certificate
		out[id] = &http.Client{
			Timeout: 2 * time.Minute,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: p.Roots,
				Certificates: []tls.Certificate{cert}}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		log.Info("spe: federation peer", "hub", id)
	}
	return out
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
