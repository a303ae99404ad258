package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/console"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

// Options configure the demo.
type Options struct {
	Dir          string // where to write ca.crt, certs/ and network.yaml ("" = inside the data dir)
	DataDir      string // the hub's data directory ("" = a new temporary one)
	Listen       string // the hub's address (default 127.0.0.1:8443)
	People       int    // synthetic people (default 200)
	ScenarioOnly bool
	// DatabaseURL runs the hub on PostgreSQL instead of embedded SQLite.
	DatabaseURL string
	// Configure, if set, adjusts the hub's configuration before it opens
	// (witnesses, limits, OIDC, …).
	Configure func(*hub.Config)
	// ProviderTimeout bounds provider calls (default: the hub's).
	ProviderTimeout time.Duration
	Out             io.Writer
	Logger          *slog.Logger
}

// Network is a running demo network.
type Running struct {
	Hub     *hub.Hub
	Base    string
	Clients *Clients
	People  []Person
	Dir     string
	Certs   map[string]tls.Certificate
	closers []func()

	// ConsoleURL is the console's base URL (https://localhost:port).
	ConsoleURL string
	Companies  []Company // the enterprise register's companies
	// IdentityProvider logs the demo's people in (the hub's OIDC issuer).
	IdentityProvider *IdentityProvider
	Sources          map[string]*Source // the authentic sources, by participant id
	URLs             URLs               // the authentic sources' base URLs
}

// Close stops the sources.
func (r *Running) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// clientParticipants get a client certificate in the demo.
var clientParticipants = []string{Operator, OCMW, ONEM, Suspended}

// sourceParticipants are the authentic sources: each serves with its own
// participant's server certificate, which the hub's transport requires.
var sourceParticipants = []string{PopulationRegister, EmploymentRegister, RetiredRegister, EnterpriseRegister}

// Start sets up the whole demo network and starts the hub on ln; the hub
// serves until ctx is done. Callers wait on the returned error channel.
func Start(ctx context.Context, opts Options, ln net.Listener) (*Running, <-chan error, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if opts.People == 0 {
		opts.People = 200
	}
	r := &Running{People: People(opts.People), Companies: Companies(DemoCompanies), Certs: map[string]tls.Certificate{}, Sources: map[string]*Source{}}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	dataDir := opts.DataDir
	if dataDir == "" {
		d, err := os.MkdirTemp("", "crossroads-demo-")
		if err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
		dataDir = d
	}
	r.Dir = opts.Dir
	if r.Dir == "" {
		r.Dir = filepath.Join(dataDir, "demo")
	}
	if err := os.MkdirAll(filepath.Join(r.Dir, "certs"), 0o700); err != nil {
		return nil, nil, fmt.Errorf("output directory: %w", err)
	}

	// The CA passphrase of a demo network is random and kept beside it.
	passFile := filepath.Join(dataDir, "ca-passphrase")
	pass, err := os.ReadFile(passFile)
	if err != nil {
		buf := make([]byte, 24)
		rand.Read(buf)
		pass = []byte(hex.EncodeToString(buf))
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(passFile, pass, 0o600); err != nil {
			return nil, nil, fmt.Errorf("write passphrase: %w", err)
		}
	}
	if !hub.Initialised(dataDir) {
		if _, err := hub.Init(dataDir, pass, "Crossroads Demo Network CA", nil); err != nil {
			return nil, nil, err
		}
	}
	// The citizens' login: the hub trusts the demo identity provider's ID
	// tokens (and its self-signed certificate, idp.crt).
	// The console is reached by name (localhost): on that name the hub asks
	// for no client certificate (hub/console.go), so a citizen's browser
	// shows no certificate picker.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "https://localhost:" + port
	r.ConsoleURL = base
	idp, err := StartIdentityProvider(r.People, opts.Logger, base+"/console/callback")
	if err != nil {
		return nil, nil, err
	}
	r.closers = append(r.closers, idp.Close)
	r.IdentityProvider = idp
	idpCert := filepath.Join(r.Dir, "idp.crt")
	if err := os.WriteFile(idpCert, idp.CertPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("write idp.crt: %w", err)
	}
	cfg := hub.Config{DataDir: dataDir, DatabaseURL: opts.DatabaseURL, Passphrase: pass, Logger: opts.Logger, MaxMergeDelay: time.Second, ProviderTimeout: opts.ProviderTimeout,
		OIDCIssuer: idp.Issuer, OIDCClientID: CitizenClientID, OIDCRootCAs: idpCert,
		Console: console.Settings{URL: base, ClientID: ConsoleClientID, ParticipantClaim: ParticipantClaim}}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	r.Hub = h
	r.closers = append(r.closers, func() { h.Close(context.Background()) })
	if err := os.WriteFile(filepath.Join(r.Dir, "ca.crt"), h.CA.CertPEM(), 0o644); err != nil {
		return nil, nil, fmt.Errorf("write ca.crt: %w", err)
	}

	// Certificates: clients and sources.
	for _, id := range append(clientParticipants, sourceParticipants...) {
		source := slices.Contains(sourceParticipants, id)
		req := pki.IssueRequest{Participant: id, Server: source}
		if source {
			req.DNSNames, req.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		certPEM, keyPEM, rec, err := h.CA.Issue(req)
		if err != nil {
			return nil, nil, err
		}
		if err := h.Registers.RecordCertificate(ctx, rec); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(r.Dir, "certs", id+".key"), keyPEM, 0o600); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(r.Dir, "certs", id+".crt"), certPEM, 0o644); err != nil {
			return nil, nil, err
		}
		c, err := pki.LoadKeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, err
		}
		r.Certs[id] = c
	}

	// The authentic sources, as real HTTPS services that only the hub reaches.
	urls := URLs{}
	for _, src := range []struct {
		id  string
		h   http.Handler
		url *string
	}{
		{PopulationRegister, NewPopulationRegister(h.CA.Pool(), r.People, opts.Logger), &urls.Population},
		{EmploymentRegister, NewEmploymentRegister(h.CA.Pool(), r.People, opts.Logger), &urls.Employment},
		{RetiredRegister, NewPopulationRegister(h.CA.Pool(), r.People, opts.Logger), &urls.Retired},
		{EnterpriseRegister, NewEnterpriseRegister(h.CA.Pool(), r.Companies, opts.Logger), &urls.Enterprise},
	} {
		if s, ok := src.h.(*Source); ok {
			r.Sources[src.id] = s
		}
		srcLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen for %s: %w", src.id, err)
		}
		cfg := pki.ServerTLSConfig(h.CA.Pool(), r.Certs[src.id], nil)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		srv := &http.Server{Handler: src.h, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)} // refused handshakes: debug
		go srv.Serve(tls.NewListener(srcLn, cfg))
		*src.url = "https://" + srcLn.Addr().String()
		r.closers = append(r.closers, func() { srv.Close() })
	}

	r.URLs = urls

	// The network file, applied through the same path as 'crossroads apply'.
	network := Network(urls, r.People, time.Now())
	y, err := yaml.Marshal(network)
	if err != nil {
		return nil, nil, fmt.Errorf("network file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "network.yaml"), y, 0o644); err != nil {
		return nil, nil, err
	}
	desired, err := apply.Parse(bytes.NewReader(y))
	if err != nil {
		return nil, nil, fmt.Errorf("demo network file: %w", err)
	}
	if _, err := apply.Apply(ctx, h.Directory.Store(), desired, h.Scheme, false); err != nil {
		return nil, nil, fmt.Errorf("apply demo network: %w", err)
	}

	r.Base = "https://" + ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- h.Serve(ctx, ln) }()
	r.Clients = NewClients(r.Base, h.CA.Pool(), r.Certs)
	r.Clients.Login = idp.Login
	ok = true
	return r, errc, nil
}

// Revoke revokes every certificate of participant through the admin API,
// as the operator.
func (r *Running) Revoke(ctx context.Context, participant string) error {
	ops := r.Clients.Client(Operator)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.Base+"/v1/admin/certificates", nil)
	resp, err := ops.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct{ Certificates []crossroads.Certificate }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return fmt.Errorf("list certificates: %w", err)
	}
	n := 0
	for _, c := range list.Certificates {
		if c.Participant != participant || !c.RevokedAt.IsZero() {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.Base+"/v1/admin/certificates/"+c.Serial+"/revoke", bytes.NewReader([]byte(`{"reason":"demo: key compromise"}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := ops.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("revoke %s: status %d", c.Serial, resp.StatusCode)
		}
		n++
	}
	if n == 0 {
		return errors.New("no certificate to revoke")
	}
	return nil
}

// Run is 'crossroads demo': start, run the scenario, print it, and (unless
// ScenarioOnly) stay up until ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8443"
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another with --listen)", opts.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, errc, err := Start(ctx, opts, ln)
	if err != nil {
		ln.Close()
		return err
	}
	defer r.Close()
	fmt.Fprintf(opts.Out, "Crossroads demo network: hub on %s, data in %s\n\n", r.Base, r.Dir)
	results := r.Clients.Run(ctx, append(r.PushScenario(), Scenario(r.People, r.Revoke, r.Hub.CA.Pool())...)) // scenario_push.go
	allOK := Print(opts.Out, results)
	fmt.Fprintln(opts.Out)
	if !allOK {
		cancel()
		<-errc
		return errors.New("the scenario did not behave as expected")
	}
	fmt.Fprintln(opts.Out, "All steps behaved as expected: every exchange was checked before it happened, minimised, sealed and audited.")
	if opts.ScenarioOnly {
		cancel()
		return <-errc
	}
	p := r.People[0]
	fmt.Fprintf(opts.Out, `
The hub stays up until Ctrl-C. Try it (as the OCMW Gent):

  curl --cacert %[1]s/ca.crt --cert %[1]s/certs/ocmw-gent.crt --key %[1]s/certs/ocmw-gent.key \
       -H 'Crossroads-Purpose: social-aid' -H 'Crossroads-User: alice@ocmw-gent' \
       -H 'Crossroads-Subject: %[2]s' -i %[3]s/v1/exchange/person-identity/persons/%[2]s

  curl --cacert %[1]s/ca.crt %[3]s/v1/authorizations      # the public register
  curl --cacert %[1]s/ca.crt %[3]s/openapi.json           # the API
  curl --cacert %[1]s/ca.crt %[3]s/v1/log/checkpoint      # the audit log's signed checkpoint

The network file is %[1]s/network.yaml. Citizens log in at the demo identity provider
%[4]s (OpenID Connect, certificate %[1]s/idp.crt) and read /v1/me/exchanges and
/v1/me/files with the ID token.

The console (your browser will warn about the demo's own certificates):

  citizen:   %[5]s/console/login?login_hint=%[2]s
  operator:  %[5]s/console/login?login_hint=alice.operator
  auditor:   %[5]s/console/login?login_hint=bob.auditor
  operator with the certificate %[1]s/certs/ops.crt in the browser: %[3]s/console/login/certificate
`, r.Dir, p.INSZ, r.Base, r.IdentityProvider.Issuer, r.ConsoleURL)
	return <-errc
}
