package push

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
)

// Directory is what push needs of the registers and the person directory
// (directory.Directory).
type Directory interface {
	Participant(id string) (*crossroads.Participant, bool)
	Service(id string) (*crossroads.Service, bool)
	Authorisations(grantee, service string) []*crossroads.Authorisation
	Authorisation(id string) (*crossroads.Authorisation, bool)
	Integrations(subject, participant string) []crossroads.Integration
	// Snapshot is the registers as last loaded (subscriptions included);
	// a new pointer after every reload.
	Snapshot() *crossroads.Network
	// Store writes through to the registers (self-service subscriptions).
	Store() crossroads.RegisterStore
}

// Config wires Push.
type Config struct {
	Directory Directory
	Kinds     personid.Kinds // the network's subject kinds; nil: personid.DefaultKinds(nil)
	Store     Store
	Audit     crossroads.AuditLog
	Signer    *pki.Signer
	Sealer    *pki.SealSigner // seals deliveries, one signature per group of concurrent seals (nil: over Signer)
	// Transport reaches subscribers' endpoints: mTLS with the hub's
	// certificate, accepting only the network CA's certificate of the
	// participant named by crossroads.WithProvider (upstream.Transport).
	Transport  http.RoundTripper
	Registerer prometheus.Registerer // nil: metrics not registered
	Logger     *slog.Logger
	// Node names this hub node as the holder of delivery leases (default
	// a random id).
	Node string
	Now  func() time.Time

	Workers      int           // deliveries in flight (default 8)
	SendTimeout  time.Duration // one attempt (default 10 s)
	Lease        time.Duration // claim lease (default 2×SendTimeout + 10 s): longer than any attempt
	MinBackoff   time.Duration // first retry (default 1 s)
	MaxBackoff   time.Duration // longest wait between attempts (default 5 min)
	Horizon      time.Duration // dead letter after (default 24 h)
	Poll         time.Duration // how often the worker looks for due entries when idle (default 200 ms)
	MaxPayload   int64         // mutation body (default 256 KiB)
	MaxWait      time.Duration // longest long poll of the feed (default 30 s)
	AuditTimeout time.Duration // default 5 s
}

// Push publishes and delivers mutations. It is safe for concurrent use.
type Push struct {
	cfg     Config
	client  *http.Client
	metrics *metrics
	subs    atomic.Pointer[subIndex]
	wake    chan struct{} // a publication or redelivery: look for work now
	feedMu  sync.Mutex
	feedCh  chan struct{} // closed and replaced when entries become available in a feed
}

// New returns Push.
func New(cfg Config) *Push {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Kinds == nil {
		cfg.Kinds = personid.DefaultKinds(nil)
	}
	if cfg.Node == "" {
		cfg.Node = uuid.NewString()
	}
	if cfg.Sealer == nil && cfg.Signer != nil {
		cfg.Sealer = pki.NewSealSigner(cfg.Signer)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2*cfg.SendTimeout + 10*time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 24 * time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 256 << 10
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.AuditTimeout <= 0 {
		cfg.AuditTimeout = 5 * time.Second
	}
	return &Push{
		cfg: cfg,
		client: &http.Client{
			Transport: cfg.Transport,
			// A subscriber's endpoint is called at its registered URL only.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		metrics: newMetrics(cfg.Registerer),
		wake:    make(chan struct{}, 1),
		feedCh:  make(chan struct{}),
	}
}

// poke wakes the worker.
func (p *Push) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// fed wakes the long polls of the feeds.
func (p *Push) fed() {
	p.feedMu.Lock()
	close(p.feedCh)
	p.feedCh = make(chan struct{})
	p.feedMu.Unlock()
}

func (p *Push) feedSignal() <-chan struct{} {
	p.feedMu.Lock()
	defer p.feedMu.Unlock()
	return p.feedCh
}

// commit makes rec durable, even if the caller has gone away.
func (p *Push) commit(ctx context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	if p.cfg.Audit == nil {
		return crossroads.Receipt{}, errors.New("push: no audit trail")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AuditTimeout)
	defer cancel()
	r, err := p.cfg.Audit.Commit(ctx, rec)
	if err != nil {
		p.metrics.auditFailures.Inc()
	}
	return r, err
}

type metrics struct {
	published     *prometheus.CounterVec // by outcome
	routed        prometheus.Counter
	deliveries    *prometheus.CounterVec // by outcome: delivered, retry, dead, dropped, sealed
	redelivered   prometheus.Counter
	auditFailures prometheus.Counter
	latency       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crossroads_push_publications_total",
			Help: "Mutations published to the hub, by outcome (accepted, duplicate, refused, failed)."}, []string{"outcome"}),
		routed: prometheus.NewCounter(prometheus.CounterOpts{Name: "crossroads_push_routed_total",
			Help: "Outbox entries written: one per eligible subscriber of each accepted mutation."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crossroads_push_deliveries_total",
			Help: "Delivery steps, by outcome (sealed, delivered, retry, dead, dropped, acknowledged)."}, []string{"outcome"}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "crossroads_push_redelivered_total",
			Help: "Entries an operator made pending again."}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "crossroads_push_audit_failures_total",
			Help: "Publications and deliveries refused because their audit record could not be made durable."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crossroads_push_delivery_seconds",
			Help: "From publication to acknowledgement by the subscriber's endpoint.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.routed, m.deliveries, m.redelivered, m.auditFailures, m.latency)
	}
	return m
}

// Store returns the outbox.
func (p *Push) Store() Store { return p.cfg.Store }
