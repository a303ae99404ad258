package exchange

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
)

// Metrics are the exchange pipeline's Prometheus metrics. Labels carry no
// personal data: outcome, reason and service id only.
type Metrics struct {
	exchanges       *prometheus.CounterVec
	seconds         *prometheus.HistogramVec
	providerSeconds *prometheus.HistogramVec
	providerErrors  *prometheus.CounterVec
	auditFailures   prometheus.Counter
	unauthenticated prometheus.Counter
	// refusedParticipants counts requests of unknown or suspended
	// participants (summarised, not audited one by one).
	refusedParticipants *prometheus.CounterVec
	abuseSummaries      prometheus.Counter
	options             prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .002, .003, .005, .0075, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossroads_exchanges_total", Help: "Exchanges by outcome (allowed, denied, failed) and reason.",
		}, []string{"outcome", "reason"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crossroads_exchange_duration_seconds", Help: "Time from request to release, by outcome.", Buckets: buckets,
		}, []string{"outcome"}),
		providerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crossroads_provider_duration_seconds", Help: "Provider round trip, by service.", Buckets: buckets,
		}, []string{"service"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossroads_provider_errors_total", Help: "Provider failures by service and kind.",
		}, []string{"service", "kind"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crossroads_audit_failures_total", Help: "Exchanges refused because their audit record could not be made durable.",
		}),
		unauthenticated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crossroads_unauthenticated_requests_total", Help: "Exchange requests without a usable client certificate.",
		}),
		refusedParticipants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossroads_refused_participants_total", Help: "Exchange requests of unknown or suspended participants, refused before any work (recorded as abuse summaries).",
		}, []string{"reason"}),
		abuseSummaries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crossroads_abuse_summaries_total", Help: "Abuse-summary audit records written (one per actor, reason and window).",
		}),
		options: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crossroads_exchange_options_total", Help: "OPTIONS requests answered by the hub (not audited).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.exchanges, m.seconds, m.providerSeconds, m.providerErrors, m.auditFailures, m.unauthenticated, m.refusedParticipants, m.abuseSummaries, m.options)
	}
	return m
}

func (m *Metrics) observe(s *state, outcome string, reason crossroads.Reason, end time.Time) {
	m.exchanges.WithLabelValues(outcome, string(reason)).Inc()
	m.seconds.WithLabelValues(outcome).Observe(end.Sub(s.start).Seconds())
}

func (m *Metrics) providerError(service, kind string) {
	m.providerErrors.WithLabelValues(service, kind).Inc()
}
