// Package upstream is the hub's transport to providers (design §2, forward;
// issue 8 item 4): it reaches a service's registered endpoint over TLS 1.3
// with the hub's certificate and accepts the connection only if the server
// certificate chains to the network CA, is issued to the provider
// participant the request names (crossroads.WithProvider), and is neither
// revoked nor expired.
//
// Each provider has its own connection pool, so a connection verified for
// one provider is never reused for another, even at the same address. The
// checks run on every handshake (full or resumed); open connections are
// closed when their certificate is revoked (CloseSerials, hooked to
// pki.Revocations.Watch) and when it expires.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
)

// Errors of RoundTrip. Wrapped; test with errors.Is.
var (
	// ErrNoProvider: the request's context names no provider participant.
	ErrNoProvider = errors.New("upstream: the request names no provider")
	// ErrNotHTTPS: the provider URL is not https (a plain connection could
	// not be authenticated).
	ErrNotHTTPS = errors.New("upstream: provider URL is not https")
	// ErrWrongParticipant: the server certificate is the network CA's but
	// issued to another participant than the service's provider.
	ErrWrongParticipant = errors.New("upstream: provider certificate issued to another participant")
)

// Refusal reasons, the "reason" label of crossroads_provider_certificate_refusals_total.
const (
	RefusedWrongParticipant = "wrong-participant" // another participant's certificate
	RefusedRevoked          = "revoked"
	RefusedExpired          = "expired"        // or not yet valid
	RefusedUntrusted        = "untrusted"      // not issued by the network CA
	RefusedHostname         = "hostname"       // not valid for the endpoint's host
	RefusedNoParticipant    = "no-participant" // the certificate names no participant
	RefusedInvalid          = "invalid"        // any other verification failure (key usage, …)
)

// Config configures a Transport.
type Config struct {
	Roots       *x509.CertPool  // the network CA: the only trusted root
	Certificate tls.Certificate // the hub's certificate, presented to providers
	// CurrentCertificate, when set, is asked for the hub's certificate on
	// every handshake instead (a hub that renews its certificate).
	CurrentCertificate func() *tls.Certificate
	Revocations        *pki.Revocations // checked on every handshake (nil: none revoked)
	Registerer         prometheus.Registerer
	Logger             *slog.Logger
	Now                func() time.Time // default time.Now; also the TLS verification time

	// Pooling, per provider. HTTP/1.1 keep-alive: the hub's exchanges are
	// small request/response pairs, so many warm connections beat
	// multiplexing.
	MaxIdleConnsPerProvider int           // default 256
	MaxConnsPerProvider     int           // 0: no limit
	IdleConnTimeout         time.Duration // default 90 s
	DialTimeout             time.Duration // default 5 s
	TLSHandshakeTimeout     time.Duration // default 5 s
}

// Transport is an http.RoundTripper to providers. Safe for concurrent use.
type Transport struct {
	cfg    Config
	dialer net.Dialer
	pools  sync.Map // provider id → *http.Transport

	mu       sync.Mutex
	bySerial map[string]map[*conn]struct{}

	refusals *prometheus.CounterVec
	closed   *prometheus.CounterVec
}

// New returns a Transport.
func New(cfg Config) *Transport {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxIdleConnsPerProvider == 0 {
		cfg.MaxIdleConnsPerProvider = 256
	}
	if cfg.IdleConnTimeout == 0 {
		cfg.IdleConnTimeout = 90 * time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.TLSHandshakeTimeout == 0 {
		cfg.TLSHandshakeTimeout = 5 * time.Second
	}
	t := &Transport{
		cfg:      cfg,
		dialer:   net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		bySerial: make(map[string]map[*conn]struct{}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossroads_provider_certificate_refusals_total",
			Help: "Connections to providers refused because of the server certificate, by provider and reason (wrong-participant, revoked, expired, untrusted, hostname, no-participant, invalid).",
		}, []string{"provider", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossroads_provider_connections_closed_total",
			Help: "Open connections to providers closed by the hub because their certificate was revoked or expired.",
		}, []string{"cause"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(t.refusals, t.closed, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crossroads_provider_connections",
			Help: "Open, authenticated connections to providers.",
		}, func() float64 { return float64(t.Len()) }))
	}
	return t
}

// RoundTrip sends req to the provider named in its context
// (crossroads.WithProvider) over a connection whose server certificate is
// that provider's. It follows no redirects (it is a RoundTripper; the
// exchange pipeline's client refuses them too).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	provider, ok := crossroads.ProviderFrom(req.Context())
	if !ok {
		closeBody(req)
		return nil, ErrNoProvider
	}
	if req.URL == nil || req.URL.Scheme != "https" {
		closeBody(req)
		return nil, ErrNotHTTPS
	}
	return t.pool(provider).RoundTrip(req)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// pool returns the provider's own http.Transport, creating it on first use.
func (t *Transport) pool(provider string) *http.Transport {
	if p, ok := t.pools.Load(provider); ok {
		return p.(*http.Transport)
	}
	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		RootCAs:            t.cfg.Roots,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		Time:               t.cfg.Now,
		VerifyConnection:   func(cs tls.ConnectionState) error { return t.verify(provider, cs) },
	}
	if get := t.cfg.CurrentCertificate; get != nil {
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get(), nil }
	} else {
		tlsCfg.Certificates = []tls.Certificate{t.cfg.Certificate}
	}
	p := &http.Transport{
		Proxy: nil, // never through a proxy from the environment
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return t.dial(ctx, network, addr, provider, tlsCfg)
		},
		MaxIdleConns:        0, // bounded per host below
		MaxIdleConnsPerHost: t.cfg.MaxIdleConnsPerProvider,
		MaxConnsPerHost:     t.cfg.MaxConnsPerProvider,
		IdleConnTimeout:     t.cfg.IdleConnTimeout,
		DisableCompression:  true, // minimisation needs the body as sent; no gzip on the hot path
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		ReadBufferSize:      16 << 10,
		WriteBufferSize:     8 << 10,
	}
	actual, _ := t.pools.LoadOrStore(provider, p)
	return actual.(*http.Transport)
}

// verify is every handshake's check (full or resumed): the chain has been
// verified against the network CA by crypto/tls; the leaf must be valid
// now, unrevoked and issued to provider.
func (t *Transport) verify(provider string, cs tls.ConnectionState) error {
	id, _, err := pki.CheckPeer(&cs, t.cfg.Revocations, t.cfg.Now())
	if err != nil {
		return err
	}
	if id != provider {
		return fmt.Errorf("%w: %s", ErrWrongParticipant, id)
	}
	return nil
}

// dial connects, performs the handshake (verify runs within it) and tracks
// the connection by certificate serial.
func (t *Transport) dial(ctx context.Context, network, addr, provider string, base *tls.Config) (net.Conn, error) {
	raw, err := t.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := base.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.cfg.TLSHandshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		t.refused(provider, addr, err)
		return nil, fmt.Errorf("upstream: handshake with %s: %w", provider, err)
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	c := &conn{Conn: tc, t: t, serial: pki.SerialHex(leaf)}
	c.expiry.Store(time.AfterFunc(leaf.NotAfter.Sub(t.cfg.Now()), func() {
		if c.kill() {
			t.closed.WithLabelValues("expired").Inc()
			t.cfg.Logger.Info("upstream: closed a provider connection whose certificate expired", "provider", provider, "serial", c.serial)
		}
	}))
	// A revocation between the handshake's check and track would have
	// missed this connection: check again once it is tracked.
	if !t.track(c) || t.cfg.Revocations.IsRevoked(c.serial) {
		c.kill()
		t.refused(provider, addr, pki.ErrRevoked)
		return nil, fmt.Errorf("upstream: handshake with %s: %w", provider, pki.ErrRevoked)
	}
	return c, nil
}

// refused counts and logs a handshake that failed on the server
// certificate; other failures (network, timeouts) are the caller's to
// report as an unreachable provider.
func (t *Transport) refused(provider, addr string, err error) {
	reason := classify(err)
	if reason == "" {
		return
	}
	t.refusals.WithLabelValues(provider, reason).Inc()
	t.cfg.Logger.Warn("upstream: provider certificate refused", "provider", provider, "reason", reason, "addr", addr, "err", err)
}

// classify names the certificate problem in a handshake error ("" if none).
func classify(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verr     *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrWrongParticipant):
		return RefusedWrongParticipant
	case errors.Is(err, pki.ErrRevoked):
		return RefusedRevoked
	case errors.Is(err, pki.ErrExpired):
		return RefusedExpired
	case errors.Is(err, pki.ErrNoParticipant), errors.Is(err, pki.ErrInvalidParticipant):
		return RefusedNoParticipant
	case errors.As(err, &unknown):
		return RefusedUntrusted
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return RefusedExpired
		}
		return RefusedInvalid
	case errors.As(err, &hostname):
		return RefusedHostname
	case errors.As(err, &verr), errors.Is(err, pki.ErrNoClientCertificate):
		return RefusedInvalid
	}
	return ""
}

// CloseSerials closes every open connection to a provider whose server
// certificate has one of serials (hex, any spelling pki accepts), and
// returns how many it closed. Call it when certificates are revoked.
func (t *Transport) CloseSerials(serials ...string) int {
	if len(serials) == 0 {
		return 0
	}
	want := pki.NewRevocations()
	want.Add(serials...) // canonicalises the spellings
	var victims []*conn
	t.mu.Lock()
	for s, set := range t.bySerial {
		if want.IsRevoked(s) {
			for c := range set {
				victims = append(victims, c)
			}
		}
	}
	t.mu.Unlock()
	n := 0
	for _, c := range victims {
		if c.kill() {
			n++
		}
	}
	if n > 0 {
		t.closed.WithLabelValues("revoked").Add(float64(n))
		t.cfg.Logger.Info("upstream: closed provider connections of revoked certificates", "connections", n, "serials", serials)
	}
	return n
}

// CloseIdleConnections closes the idle connections of every provider pool.
func (t *Transport) CloseIdleConnections() {
	t.pools.Range(func(_, p any) bool {
		p.(*http.Transport).CloseIdleConnections()
		return true
	})
}

// Len returns the number of open provider connections.
func (t *Transport) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, set := range t.bySerial {
		n += len(set)
	}
	return n
}

// track records c; false if c has already been closed.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.dead {
		return false
	}
	set := t.bySerial[c.serial]
	if set == nil {
		set = make(map[*conn]struct{})
		t.bySerial[c.serial] = set
	}
	set[c] = struct{}{}
	return true
}

// untrack forgets c for good; it reports whether c was still alive.
func (t *Transport) untrack(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.dead {
		return false
	}
	c.dead = true
	if set := t.bySerial[c.serial]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(t.bySerial, c.serial)
		}
	}
	return true
}

// conn is an authenticated provider connection. Its Close forgets it.
type conn struct {
	*tls.Conn
	t      *Transport
	serial string
	expiry atomic.Pointer[time.Timer]
	dead   bool // guarded by t.mu
}

// Close closes the connection (with close_notify) and forgets it.
func (c *conn) Close() error {
	c.forget()
	return c.Conn.Close()
}

// kill closes the socket at once (no close_notify, which could block on a
// slow peer) and reports whether the connection was still open.
func (c *conn) kill() bool {
	if !c.forget() {
		return false
	}
	if err := c.NetConn().Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		c.t.cfg.Logger.Warn("upstream: closing a provider connection", "err", err)
	}
	return true
}

func (c *conn) forget() bool {
	if tm := c.expiry.Load(); tm != nil {
		tm.Stop()
	}
	return c.t.untrack(c)
}
