// Package hub assembles a running Crossroads hub from its parts: the
// network CA, the registers and person directory, the audit trail, the
// exchange pipeline and the HTTP API, served over mutual TLS.
//
// The data directory holds all state:
//
//	ca/ca.crt, ca/ca.key.enc   the network CA (key encrypted at rest)
//	hub/hub.crt                the hub's own certificate (its key: wrapped, in the keyring)
//	keys/                      the local key provider (root key sealed by the passphrase)
//	registers.db               participants, services, authorisations, integrations, certificates
//	audit/                     audit records and wrapped keys (audit.db), the Merkle log
package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/citizen"
	"github.com/crossroads-hub/crossroads/console"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/limit"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/siem"
	"github.com/crossroads-hub/crossroads/storage"
	"github.com/crossroads-hub/crossroads/store/mysqllog"
	"github.com/crossroads-hub/crossroads/upstream"
)

// HubID is the participant id in the hub's own certificate.
const HubID = "hub"

// Config configures a hub.
type Config struct {
	DataDir      string
	Passphrase   []byte   // the CA key's passphrase, which also seals the local key provider
	Hostnames    []string // DNS names and IPs for the hub's server certificate (default localhost, 127.0.0.1)
	PersonScheme string   // person id scheme; default "insz"
	// DatabaseURL selects PostgreSQL (postgres://…) for the registers and
	// the audit records instead of the embedded SQLite files. The CA, the
	// hub's certificate and the Merkle log stay in DataDir; the wrapped
	// keys are in the database, shared by every node.
	DatabaseURL string
	// LogOrigin names the audit log when its key is created (see
	// audit.Config.Origin); an existing log keeps its origin.
	LogOrigin string
	// RenewBefore is how long before its expiry the hub renews its own
	// certificate while running (default a third of its validity);
	// RenewCheck how often it looks (default a minute).
	RenewBefore, RenewCheck time.Duration
	// LogDatabase (MariaDB/MySQL DSN, user@tcp(host:3306)/dbname) keeps the
	// audit trail's Merkle log in that database, shared by every node on
	// DatabaseURL (PostgreSQL, required): one node at a time integrates,
	// every node serves the log (see docs/architecture.md).
	LogDatabase string
	// KeyProvider holds the root keys (e.g. a PKCS#11 HSM, package
	// keys/pkcs11); the hub closes it. Default: the local FileProvider in
	// KeyDir (default DataDir/keys), sealed by Passphrase.
	KeyProvider keys.Provider
	KeyDir      string

	ProviderTimeout time.Duration
	MaxRequestBody  int64
	RevocationPoll  time.Duration // default 250 ms
	MaxMergeDelay   time.Duration // audit log merge delay; default 2 s
	ShutdownTimeout time.Duration // default 10 s
	Logger          *slog.Logger

	// Flow control (zero: no limit). DefaultLimits bound each participant;
	// an authorisation's Limits bound the traffic under it as well.
	DefaultLimits crossroads.Limits
	MaxInFlight   int // exchanges in flight across the hub; beyond, 503 overloaded

	// The integrations API (the person directory): how far before now a
	// participant may date a file (default 0; operators are not bound),
	// and each participant's limits (nil: httpapi.DefaultIntegrationLimits).
	IntegrationBackdate time.Duration
	IntegrationLimits   *crossroads.Limits

	// Audit trail. Witnesses (C2SP tlog-witness) cosign the checkpoints;
	// only checkpoints cosigned by WitnessQuorum of them (0: all) are
	// published. Record payloads are erased after Retention (default one
	// year, daily; below a year only with RetentionForce; negative: never).
	// SIEMURL (https://… or syslog+tls://host:port) receives the records
	// as JSON lines; SIEMRootCAs is a PEM file of the roots to trust
	// (default the system's).
	Witnesses      []audit.WitnessConfig
	WitnessQuorum  int
	Retention      time.Duration
	RetentionForce bool
	SIEMURL        string
	SIEMRootCAs    string
	// SIEMAllowTLS12 lets the SIEM export speak TLS 1.2 to a receiver that
	// cannot do 1.3 (default: TLS 1.3 only).
	SIEMAllowTLS12 bool

	// Citizens ("who looked at my data", GET /v1/me/exchanges): ID tokens
	// of OIDCIssuer for OIDCClientID, the person id in OIDCSubjectClaim
	// (default "sub"). Without an issuer the route answers 404.
	OIDCIssuer       string
	OIDCClientID     string
	OIDCSubjectClaim string
	// OIDCEnterpriseClaim names the ID-token claim carrying the enterprise
	// number of the company the holder represents (GET /v1/enterprise/…);
	// empty: only representatives' certificates open those views.
	OIDCEnterpriseClaim string
	// OIDCRootCAs is a PEM file of the roots to trust for the issuer's
	// discovery document and keys (default the system's).
	OIDCRootCAs string

	Batch   batch.Options    // batch consultation: submission bounds, retention, concurrency (zero: defaults; batch.go)
	EFGS    EFGSConfig       // the federation gateway (efgs.go); zero: on at /efgs with the reference's defaults
	SPE     SPEOptions       // secure processing: rate limits and federation peers (spe.go)
	Push    PushOptions      // mutation push (push.go)
	Console console.Settings // the browser console at /console/ (console.go)
}

// Hub is an assembled hub.
type Hub struct {
	cfg       Config
	log       *slog.Logger
	CA        *pki.CA
	Registers Registers
	Directory *directory.Directory
	Trail     *audit.Trail
	Keys      *keys.Keyring
	audits    AuditStore
	Revs      *pki.Revocations
	Tracker   *pki.ConnTracker
	Signer    *pki.Signer
	Sealer    *pki.SealSigner // seals of exchanges and push deliveries: one signature per group of concurrent seals
	Cert      tls.Certificate
	Registry  *prometheus.Registry
	API       *httpapi.API
	Scheme    personid.Scheme
	Server    *http.Server
	Limiter   *limit.Limiter // flow control; Configure changes it at run time
	SIEM      *siem.Exporter // nil without a SIEM
	Exchange  *exchange.Pipeline
	citizen   *citizen.Handler // GET /v1/me/… and /v1/enterprise/…
	sharedLog *mysqllog.Log    // nil: the log is this node's own (POSIX)
	renew     *certRenewal     // the current hub certificate (renew.go)
	opened    []feature        // the features opened (features.go)
	batch     *batch.Service   // batch consultation (batch.go)
	EFGS      *efgsFeature     // the federation gateway (efgs.go); nil when disabled
	spe       *speFeature      // secure processing (spe.go)
	Push      *Mutations       // mutation push (push.go)
	console   *console.Console // the browser console (console.go)

	// Upstream is the authenticated transport to providers.
	Upstream *upstream.Transport
}

// Registers is the register and certificate store the hub runs on.
type Registers = storage.Registers

// AuditStore is the audit record store the hub runs on.
type AuditStore = storage.AuditStore

// openStores opens the stores with storage.Open, as every command does.
func openStores(ctx context.Context, cfg Config) (Registers, AuditStore, error) {
	st, err := storage.Open(ctx, storage.Options{Dir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, Audit: true, Create: true})
	if err != nil {
		return nil, nil, err
	}
	return st.Registers, st.Audit, nil
}

// Files in the data directory.
func caDir(dir string) string  { return filepath.Join(dir, "ca") }
func hubDir(dir string) string { return filepath.Join(dir, "hub") }

// Initialised reports whether dir holds a network CA.
func Initialised(dir string) bool {
	_, err := os.Stat(filepath.Join(caDir(dir), "ca.crt"))
	return err == nil
}

// Init creates the network CA and the hub's certificate in dir.
func Init(dir string, passphrase []byte, name string, hostnames []string) (*pki.CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	ca, err := pki.InitCA(caDir(dir), passphrase, name)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// Open opens every store and builds the handlers; it does not listen yet.
func Open(ctx context.Context, cfg Config) (_ *Hub, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RevocationPoll == 0 {
		cfg.RevocationPoll = 250 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if len(cfg.Hostnames) == 0 {
		cfg.Hostnames = []string{"localhost", "127.0.0.1", "::1"}
	}
	if cfg.LogOrigin == "" {
		cfg.LogOrigin = DefaultLogOrigin(cfg.Hostnames)
	}
	if !Initialised(cfg.DataDir) {
		return nil, fmt.Errorf("no network CA in %s: run 'crossroads init --dir %s' first", cfg.DataDir, cfg.DataDir)
	}
	h := &Hub{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			h.Close(context.Background())
		}
	}()
	if h.Scheme, err = personid.Lookup(cfg.PersonScheme); err != nil {
		return nil, err
	}
	// The key provider opens (a key derivation, or an HSM login) while the
	// CA key is decrypted (another).
	provider := openProviderAsync(cfg)
	defer provider.discard()
	if h.CA, err = pki.LoadCA(caDir(cfg.DataDir), cfg.Passphrase); err != nil {
		return nil, err
	}
	auditDir := filepath.Join(cfg.DataDir, "audit")
	if err := os.MkdirAll(auditDir, 0o700); err != nil {
		return nil, fmt.Errorf("create audit directory: %w", err)
	}
	if h.Registers, h.audits, err = openStores(ctx, cfg); err != nil {
		return nil, err
	}
	if h.Keys, err = provider.keyring(ctx, cfg, h.audits); err != nil {
		return nil, err
	}
	noteKey, err := h.Keys.Secret(ctx, keys.KindNote)
	if err != nil {
		return nil, err
	}
	if h.Cert, err = h.hubCertificate(ctx); err != nil {
		return nil, err
	}
	if h.Signer, err = pki.NewSigner(h.Cert); err != nil {
		return nil, err
	}
	h.Sealer = pki.NewSealSigner(h.Signer)
	if h.Directory, err = openDirectory(ctx, h); err != nil { // directorysnapshot.go
		return nil, err
	}
	acfg := audit.Config{Dir: auditDir, Store: h.audits, Origin: cfg.LogOrigin, MaxMergeDelay: cfg.MaxMergeDelay, Logger: cfg.Logger,
		KeyProvider: h.Keys, NoteSigner: string(noteKey.Key), Sealer: h.Sealer,
		Witnesses: cfg.Witnesses, Quorum: cfg.WitnessQuorum, WitnessHTTP: h.witnessClient()}
	if err := h.openSharedLog(ctx, &acfg); err != nil {
		return nil, err
	}
	if h.Trail, err = audit.Open(ctx, acfg); err != nil {
		return nil, err
	}
	if err := migrateAuditKeys(ctx, cfg.Logger, h.Trail, auditDir); err != nil {
		return nil, err
	}
	if err := h.openAuditServices(auditDir); err != nil {
		return nil, err
	}

	h.Revs = pki.NewRevocations()
	revoked, _, err := h.Registers.RevokedSince(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	h.Revs.Add(revoked...)
	h.Tracker = pki.NewConnTracker()

	h.Registry = prometheus.NewRegistry()
	h.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "crossroads_audit_commits_total", Help: "Group-commit transactions of the audit store.",
		}, func() float64 { return float64(h.Trail.Stats().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "crossroads_audit_records_total", Help: "Audit records made durable (records / commits = mean batch size).",
		}, func() float64 { return float64(h.Trail.Stats().Records) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "crossroads_seal_signatures_total", Help: "ES256 signatures made for response seals.",
		}, func() float64 { _, n := h.Sealer.Counts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "crossroads_seals_total", Help: "Response seals made (seals / signatures = mean seal batch size).",
		}, func() float64 { n, _ := h.Sealer.Counts(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crossroads_audit_log_integrating", Help: "1 while this node integrates records into the Merkle log (on a shared log: holds the integrator lease).",
		}, func() float64 {
			if h.Trail.Integrating() {
				return 1
			}
			return 0
		}))
	metrics := exchange.NewMetrics(h.Registry)

	// Providers are authenticated: their server certificate must be the
	// network CA's, issued to the service's provider, unrevoked, unexpired.
	h.Upstream = upstream.New(upstream.Config{
		Roots: h.CA.Pool(), Certificate: h.Cert, CurrentCertificate: h.currentCert, Revocations: h.Revs, Registerer: h.Registry, Logger: cfg.Logger,
	})
	transport := h.Upstream
	h.Limiter = limit.New(limit.Config{Default: cfg.DefaultLimits, MaxInFlight: cfg.MaxInFlight})
	ex := exchange.New(exchange.Config{
		Directory: h.Directory, Kinds: personid.DefaultKinds(h.Scheme), Audit: h.Trail, Signer: h.Signer, Sealer: h.Sealer, Transport: transport,
		Revocations: h.Revs, Metrics: metrics, Logger: cfg.Logger, Limiter: h.Limiter,
		ProviderTimeout: cfg.ProviderTimeout, MaxRequestBody: cfg.MaxRequestBody,
	})
	h.Exchange = ex.Pipeline()
	extra, err := h.openFeatures(ctx)
	if err != nil {
		return nil, err
	}
	h.API = httpapi.New(httpapi.Config{
		Directory: h.Directory, Scheme: h.Scheme, Exchange: ex, CA: h.CA, Certificates: h.Registers,
		OnRevoke: h.revoked, Revocations: h.Revs, Gatherer: h.Registry, Logger: cfg.Logger,
		Ready: h.ready, Extra: append(h.auditRoutes(), extra...),
		Audit:               h.Trail, // integration changes are events of the trail
		IntegrationBackdate: cfg.IntegrationBackdate, IntegrationLimits: cfg.IntegrationLimits,
	})
	h.Server = &http.Server{
		Handler:           h.API,
		TLSConfig:         pki.ServerTLSConfig(h.CA.Pool(), h.Cert, h.Revs),
		ConnState:         h.Tracker.ConnState,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          connErrorLog(cfg.Logger, h.Registry),
	}
	h.renewable(transport)
	h.consoleTLS() // console.go
	return h, nil
}

// hubCertificate loads the hub's certificate and key from the keyring
// (shared by every node), importing the plaintext hub/hub.key of earlier
// versions, and issues a new one on first start, when it is revoked or
// when it is within the renewal window of its expiry (renew.go).
// hub/hub.crt holds the certificate for tools; the key is never on disk in
// clear.
func (h *Hub) hubCertificate(ctx context.Context) (tls.Certificate, error) {
	dir := hubDir(h.cfg.DataDir)
	certFile, keyFile := filepath.Join(dir, "hub.crt"), filepath.Join(dir, legacyHubKey)
	s, err := h.Keys.Secret(ctx, keys.KindHubTLS)
	if errors.Is(err, keys.ErrNotFound) {
		if c, lerr := tls.LoadX509KeyPair(certFile, keyFile); lerr == nil && c.Leaf != nil && h.keepHubCert(ctx, c.Leaf) {
			certPEM, _ := os.ReadFile(certFile)
			keyPEM, _ := os.ReadFile(keyFile)
			s, err = h.Keys.Ensure(ctx, keys.KindHubTLS, func() ([]byte, string, error) { return keyPEM, string(certPEM), nil })
		}
	}
	if err != nil && !errors.Is(err, keys.ErrNotFound) {
		return tls.Certificate{}, fmt.Errorf("hub certificate: %w", err)
	}
	if err := removePlaintext(keyFile); err != nil {
		return tls.Certificate{}, err
	}
	if err == nil {
		if c, err := pki.LoadKeyPair([]byte(s.Public), s.Key); err == nil && c.Leaf != nil && h.keepHubCert(ctx, c.Leaf) {
			return c, writeHubCert(dir, certFile, []byte(s.Public))
		}
	}
	var dns []string
	var ips []net.IP
	for _, n := range h.cfg.Hostnames {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	certPEM, keyPEM, rec, err := h.CA.Issue(pki.IssueRequest{Participant: HubID, DNSNames: dns, IPAddresses: ips, Server: true})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue hub certificate: %w", err)
	}
	if err := h.Registers.RecordCertificate(ctx, rec); err != nil {
		return tls.Certificate{}, err
	}
	if _, err := h.Keys.Rotate(ctx, keys.KindHubTLS, keyPEM, string(certPEM)); err != nil {
		return tls.Certificate{}, fmt.Errorf("hub certificate: %w", err)
	}
	if err := writeHubCert(dir, certFile, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	return pki.LoadKeyPair(certPEM, keyPEM)
}

func writeHubCert(dir, certFile string, certPEM []byte) error {
	if b, err := os.ReadFile(certFile); err == nil && bytes.Equal(b, certPEM) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("hub certificate: %w", err)
	}
	return atomicfile.Write(certFile, certPEM, 0o644)
}

// connErrorLog receives net/http's connection-level errors (refused TLS
// handshakes: no, expired, revoked or foreign certificates; clients that
// time out before sending a request) and counts them, so that attempts
// that never reach a handler are counted too; the lines go to the debug log.
func connErrorLog(logger *slog.Logger, reg prometheus.Registerer) *log.Logger {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crossroads_connection_errors_total",
		Help: "Connections closed before a request reached a handler, by kind (tls-handshake, other).",
	}, []string{"kind"})
	reg.MustRegister(c)
	debug := slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
	return log.New(connErrorWriter{c: c, next: debug.Writer()}, "", 0)
}

type connErrorWriter struct {
	c    *prometheus.CounterVec
	next io.Writer
}

func (w connErrorWriter) Write(p []byte) (int, error) {
	kind := "other"
	if bytes.Contains(p, []byte("TLS handshake error")) {
		kind = "tls-handshake"
	}
	w.c.WithLabelValues(kind).Inc()
	return w.next.Write(p)
}

// witnessClient reaches witnesses over TLS 1.3, trusting the system's roots
// and the network CA (peer hubs and supervisors may run witnesses with
// network certificates) and presenting the hub's certificate.
func (h *Hub) witnessClient() *http.Client {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	roots.AddCert(h.CA.Certificate())
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return h.currentCert(), nil }},
		},
		// A witness is called at its configured URL only.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// registerRefresh is how often the hub rereads the registers, and the
// person directory's change feed, written by other nodes or an offline
// apply. The feed keeps changes for changeRetention; a node whose refresh
// has failed for half that long reloads the directory whole instead.
const (
	registerRefresh = time.Second
	changeRetention = time.Hour
	pruneEvery      = 10 * time.Minute
)

// refreshRegisters keeps the in-memory registers in step with the store.
func (h *Hub) refreshRegisters(ctx context.Context) {
	t := time.NewTicker(registerRefresh)
	defer t.Stop()
	lastOK, lastPrune := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := h.Directory.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Warn("registers refresh", "err", err)
		case changed:
			h.log.Info("registers changed in the store; reloaded")
		}
		if time.Since(lastOK) > changeRetention/2 {
			err = h.Directory.ReloadIntegrations(ctx)
			if err == nil {
				h.log.Info("person directory reloaded whole after a long gap")
			}
		} else {
			_, err = h.Directory.RefreshIntegrations(ctx)
		}
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("person directory refresh", "err", err)
			}
			continue
		}
		lastOK = time.Now()
		if time.Since(lastPrune) > pruneEvery {
			lastPrune = time.Now()
			if n, err := h.Registers.PruneIntegrationChanges(ctx, lastPrune.Add(-changeRetention)); err != nil {
				h.log.Warn("prune the person directory's change feed", "err", err)
			} else if n > 0 {
				h.log.Info("person directory change feed pruned", "changes", n)
			}
		}
	}
}

// revoked closes the connections of newly revoked certificates.
func (h *Hub) revoked(serials []string) {
	h.renewIfRevoked(serials)
	if n := h.Tracker.CloseSerial(serials...); n > 0 {
		h.log.Info("closed connections of revoked certificates", "connections", n, "certificates", len(serials))
	}
	h.Upstream.CloseSerials(serials...) // providers' connections too
}

func (h *Hub) ready(ctx context.Context) error {
	if _, _, err := h.Registers.RevokedSince(ctx, 1<<62); err != nil {
		return fmt.Errorf("registers: %w", err)
	}
	if _, err := h.audits.MaxIndex(ctx); err != nil {
		return fmt.Errorf("audit store: %w", err)
	}
	return nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully,
// finishing in-flight exchanges.
func (h *Hub) Serve(ctx context.Context, ln net.Listener) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go h.Revs.Watch(watchCtx, h.Registers, h.cfg.RevocationPoll, h.revoked)
	go h.refreshRegisters(watchCtx)
	go h.renewLoop(watchCtx)
	var jobs sync.WaitGroup
	defer func() { stopWatch(); jobs.Wait() }()
	h.startAuditJobs(watchCtx, &jobs)
	h.runFeatures(watchCtx, &jobs)
	jobs.Add(1)
	go func() { defer jobs.Done(); h.Exchange.Run(watchCtx) }() // abuse summaries

	errc := make(chan error, 1)
	go func() { errc <- h.Server.Serve(tls.NewListener(ln, h.Server.TLSConfig)) }()
	h.log.Info("hub listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), h.cfg.ShutdownTimeout)
	defer cancel()
	err := h.Server.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		h.log.Warn("shutdown timed out; closing remaining connections")
		h.Server.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return nil
}

// Close releases the stores; call after Serve returns.
func (h *Hub) Close(ctx context.Context) error {
	errs := []error{h.closeFeatures()}
	if h.Upstream != nil {
		h.Upstream.CloseIdleConnections()
	}
	if h.Trail != nil {
		errs = append(errs, h.Trail.Close(ctx))
	}
	if h.sharedLog != nil {
		errs = append(errs, h.sharedLog.Close())
	}
	if h.audits != nil {
		errs = append(errs, h.audits.Close())
	}
	if h.Keys != nil {
		errs = append(errs, h.Keys.Close())
	}
	if h.Registers != nil {
		errs = append(errs, h.Registers.Close())
	}
	return errors.Join(errs...)
}

// Participant returns a registered participant (for tools and the demo).
func (h *Hub) Participant(id string) (*crossroads.Participant, bool) {
	return h.Directory.Participant(id)
}
