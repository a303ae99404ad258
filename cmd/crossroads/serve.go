package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/hub"
)

func init() {
	register("serve", "run the hub", runServe)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	slog.SetDefault(log)
	// Tessera logs through klog; send it to the same structured log.
	klog.SetSlogLogger(log)
	return log
}

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	efgsConfig := efgsServeFlags(fs) // the federation gateway's flags (efgs.go)
	pf := addPassFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	var hosts listFlag
	fs.Var(&hosts, "hostname", "DNS name or IP of the hub, for its certificate (repeatable; default localhost, 127.0.0.1)")
	origin := fs.String("log-origin", "", "origin (name) of the audit log, fixed when the log is created (default: <first --hostname>/audit)")
	renewBefore := fs.Duration("renew-before", 0, "renew the hub's own certificate this long before it expires (default: a third of its validity)")
	logDB := fs.String("log-database", "", "MariaDB/MySQL DSN (user@tcp(host:3306)/dbname) of the audit Merkle log shared by several nodes on one --database-url")
	scheme := fs.String("person-scheme", "insz", "person identifier scheme: insz or opaque")
	timeout := fs.Duration("provider-timeout", 10*time.Second, "time allowed to a provider to answer")
	maxBody := fs.Int64("max-request-body", 1<<20, "largest request body accepted, in bytes")
	merge := fs.Duration("max-merge-delay", 2*time.Second, "promised delay before an audit record is in a published checkpoint")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	rateLimit := fs.Float64("rate-limit", 0, "exchanges per second allowed to each participant (0: no limit); authorisations may set their own limits")
	burst := fs.Int("burst", 0, "burst allowed above --rate-limit (0: one second's worth)")
	maxConcurrent := fs.Int("max-concurrent", 0, "exchanges in flight allowed to each participant (0: no limit)")
	maxInFlight := fs.Int("max-in-flight", 0, "exchanges in flight across the hub; beyond, 503 overloaded (0: no limit)")
	var witnesses listFlag
	fs.Var(&witnesses, "witness", "C2SP tlog-witness cosigning the audit log, as 'URL VERIFIER-KEY' (repeatable or comma-separated)")
	quorum := fs.Int("witness-quorum", 0, "witnesses whose cosignatures a published checkpoint needs (0: all)")
	retention := fs.Duration("retention", hub.DefaultRetention, "how long audit record payloads are kept before erasure (at least a year; negative: forever)")
	batchOptions := addBatchServeFlags(fs) // batch.go
	retentionForce := fs.Bool("retention-force", false, "allow a --retention below one year")
	siemURL := fs.String("siem-url", "", "SIEM receiving the audit records as JSON lines: https://… or syslog+tls://host:port")
	siemCA := fs.String("siem-ca", "", "PEM file of the CA certificates to trust for the SIEM (default: the system's)")
	oidcIssuer := fs.String("oidc-issuer", "", "OpenID Connect issuer of the citizens' ID tokens (enables GET /v1/me/exchanges)")
	oidcClient := fs.String("oidc-client-id", "", "client id (audience) of the citizens' ID tokens")
	oidcClaim := fs.String("oidc-subject-claim", "sub", "ID token claim holding the citizen's person identifier")
	oidcCA := fs.String("oidc-ca", "", "PEM file of the CA certificates to trust for the OpenID Connect issuer (default: the system's)")
	oidcEnterprise := fs.String("oidc-enterprise-claim", "", "ID token claim holding the enterprise number a company's representative acts for (GET /v1/enterprise/…; default: certificates only)")
	siemTLS12 := fs.Bool("siem-allow-tls12", false, "let the SIEM export speak TLS 1.2 to a receiver that cannot do 1.3 (default: TLS 1.3 only)")
	keyProvider := keyProviderFlags(fs) // keys.go
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads serve [flags]\n\nRuns the hub over mutual TLS. Every flag can also be set as CROSSROADS_<FLAG> or in --config FILE.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	pass, err := pf.get()
	if err != nil {
		return err
	}
	log := newLogger(*level)
	var wcs []audit.WitnessConfig
	for _, w := range witnesses {
		f := strings.Fields(w)
		if len(f) != 2 {
			return fmt.Errorf("--witness %q: want 'URL VERIFIER-KEY'", w)
		}
		wcs = append(wcs, audit.WitnessConfig{URL: f[0], VerifierKey: f[1]})
	}
	if *oidcIssuer != "" && *oidcClient == "" {
		return fmt.Errorf("--oidc-issuer needs --oidc-client-id")
	}
	cfg := hub.Config{
		DataDir: *sf.dir, DatabaseURL: *sf.databaseURL, Passphrase: pass, Hostnames: hosts, LogDatabase: *logDB, PersonScheme: *scheme,
		LogOrigin: deriveLogOrigin(*origin, hosts), RenewBefore: *renewBefore,
		ProviderTimeout: *timeout, MaxRequestBody: *maxBody, MaxMergeDelay: *merge, Logger: log,
		DefaultLimits: crossroads.Limits{RatePerSecond: *rateLimit, Burst: *burst, MaxConcurrent: *maxConcurrent}, MaxInFlight: *maxInFlight,
		Witnesses: wcs, WitnessQuorum: *quorum, Retention: *retention, RetentionForce: *retentionForce,
		SIEMURL: *siemURL, SIEMRootCAs: *siemCA, OIDCIssuer: *oidcIssuer, OIDCClientID: *oidcClient, OIDCSubjectClaim: *oidcClaim, OIDCRootCAs: *oidcCA,
		OIDCEnterpriseClaim: *oidcEnterprise, SIEMAllowTLS12: *siemTLS12,
	}
	cfg.Batch = batchOptions()
	efgsConfig(&cfg)
	if err := keyProvider(&cfg); err != nil {
		return err
	}
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer h.Close(context.Background())
	if got := h.Trail.Origin(); isSet(fs, "log-origin") && got != *origin {
		return fmt.Errorf("the audit log's origin is %q (fixed when it was created), not --log-origin %q", got, *origin)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return h.Serve(ctx, ln)
}
