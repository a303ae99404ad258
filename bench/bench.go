// Package bench is 'crossroads bench': it starts the demo network in this
// process, a bare TLS reverse proxy (load.BareProxy) to the same population
// register with the same certificates, and runs the same request mix
// against the hub, the bare proxy and the provider directly, closed-loop at
// a fixed concurrency and open-loop at a fixed rate. It renders the
// comparison tables of docs/performance.md.
//
// Everything — load generator, hub, bare proxy and provider — shares the
// machine's cores: the figures are those of one box doing all the work, a
// lower bound for a hub on a machine of its own.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/load"
	"github.com/crossroads-hub/crossroads/pki"
)

// Bounds of a benchmark run.
const (
	MaxPeople = 1_000_000
	// maxBaselineWindow bounds warm-up + duration of one baseline run: the
	// baseline requests carry hub signatures made before the run, which the
	// demo provider accepts within ±1 minute of their issue time.
	maxBaselineWindow = 100 * time.Second
	// deniedPurpose is a purpose no demo authorisation covers.
	deniedPurpose = "marketing"
)

// Options configure a benchmark run.
type Options struct {
	Duration    time.Duration // measured window of each run (default 10 s)
	Warmup      time.Duration // warm-up of each run (default 2 s)
	Concurrency int           // closed-loop workers (default 64)
	Rate        float64       // open-loop arrival rate, requests/s (default 1000)
	People      int           // synthetic people (default 10,000)
	// Subjects is how many of them the mix asks about, spread evenly over
	// the population (default 2,000, at most People-1). The generator
	// prepares its round-robin in time quadratic in the number of request
	// templates, so tens of thousands make each run start slowly.
	Subjects int
	// Denied is the share of the mix that the hub refuses
	// (purpose-not-covered), in [0, 1) (default 0.1). Denials are audited
	// like allowed exchanges.
	Denied float64
	// CPUProfile, if set, receives a CPU profile of the whole process taken
	// during the closed-loop hub run.
	CPUProfile string
	// OpenCPUProfile and Trace, if set, receive a CPU profile and an
	// execution trace (runtime/trace) of the whole process taken during
	// the open-loop hub run: where the tail at ordinary load comes from.
	OpenCPUProfile, Trace string
	// SkipOpen skips the open-loop runs; SkipClosed the closed-loop ones.
	SkipOpen, SkipClosed bool
	// Separate runs the hub (and the bare proxy) as a process of its own,
	// pinned to core 0, the generator and provider in this process on the
	// other cores (taskset, when available): see separate.go.
	Separate bool
	// HubCommand starts the hub process in separate mode (default: this
	// executable's "bench"); "--hub-child --people N" is appended.
	HubCommand []string
	// Command is the command line shown under the tables.
	Command string
	// Progress receives one line per run (nil: discarded).
	Progress io.Writer
	Logger   *slog.Logger
}

func (o *Options) defaults() error {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	if o.Rate == 0 {
		o.Rate = 1000
	}
	if o.People == 0 {
		o.People = 10_000
	}
	if o.Subjects == 0 {
		o.Subjects = min(2000, o.People-1)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case o.Subjects < 1 || o.Subjects > o.People-1:
		return fmt.Errorf("bench: subjects %d: want [1, people-1 = %d]", o.Subjects, o.People-1)
	case o.Duration < 0 || o.Warmup < 0:
		return errors.New("bench: negative duration or warm-up")
	case o.Duration+o.Warmup > maxBaselineWindow:
		return fmt.Errorf("bench: warm-up + duration %s: at most %s per run (the baseline's pre-made hub signatures are valid ±1 min)", o.Duration+o.Warmup, maxBaselineWindow)
	case o.Concurrency < 1 || o.Concurrency > load.MaxConcurrency:
		return fmt.Errorf("bench: concurrency %d: want [1, %d]", o.Concurrency, load.MaxConcurrency)
	case !(o.Rate > 0) || o.Rate > load.MaxRate:
		return fmt.Errorf("bench: rate %g: want (0, %d]", o.Rate, load.MaxRate)
	case o.People < 3 || o.People > MaxPeople:
		return fmt.Errorf("bench: people %d: want [3, %d]", o.People, MaxPeople)
	case o.Denied < 0 || o.Denied >= 1:
		return fmt.Errorf("bench: denied share %g: want [0, 1)", o.Denied)
	case o.SkipOpen && o.SkipClosed:
		return errors.New("bench: nothing to run")
	}
	return nil
}

// Result is what a benchmark measured.
type Result struct {
	Closed *load.Comparison // nil if skipped
	Open   *load.Comparison // nil if skipped
	// LoadBefore and LoadAfter are /proc/loadavg at start and end.
	LoadBefore, LoadAfter string
	// CPUPerRequest is the CPU time (user + system) of the whole process in
	// each run's measured window divided by its responses: generator and
	// provider for "direct", plus the proxy or the hub for the others. It
	// is less sensitive to other load on the machine than throughput.
	CPUPerRequest map[load.Mode]map[string]time.Duration
	// HubCPUPerRequest is, in separate mode, the CPU time of the hub
	// process alone (the hub, or the bare proxy in its runs) per response.
	HubCPUPerRequest map[load.Mode]map[string]time.Duration
	// Pinned is the cores given to the hub process and to this one in
	// separate mode (empty when not pinned).
	Pinned  Pinning
	Options Options
}

// setup is the running network and its targets.
type setup struct {
	run       *demo.Running
	hubURL    string
	bareURL   string
	directURL string
	clientTLS *tls.Config
	signer    *pki.Signer
	people    []demo.Person
	cleanups  []func()  // run in reverse by stop
	child     *hubChild // separate mode: the hub process
	pinned    Pinning
}

func (s *setup) onStop(f func()) { s.cleanups = append(s.cleanups, f) }

// stop runs the cleanups, last first.
func (s *setup) stop() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// auditStats returns the hub's group-commit counters and, in separate
// mode, the hub process's CPU time.
func (s *setup) auditStats() (st hubStats, cpu time.Duration, err error) {
	if s.child != nil {
		a, err := s.child.call(childCommand{Op: "stats"})
		st = hubStats{Stats: audit.Stats{Records: a.Records, Batches: a.Batches}, seals: a.Seals, sealSigs: a.SealSigs}
		if a.Commit != nil {
			st.Commit = *a.Commit
		}
		return st, a.CPU, err
	}
	st.Stats = s.run.Hub.Trail.Stats()
	st.seals, st.sealSigs = s.run.Hub.Sealer.Counts()
	return st, 0, nil
}

// hubStats are the hub's counters read around a measured window.
type hubStats struct {
	audit.Stats
	seals, sealSigs uint64 // seals made, and the signatures made for them
}

// baseline is baselineMix, done by the hub process in separate mode (it
// holds the hub's signing key).
func (s *setup) baseline(reqs []load.Request, direct bool, window time.Duration) ([]load.Request, error) {
	if s.child != nil {
		a, err := s.child.call(childCommand{Op: "baseline", Request: reqs, Direct: direct, Window: window})
		return a.Requests, err
	}
	return s.baselineMix(reqs, direct, window)
}

// Run starts the network, runs the benchmark and stops everything.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	res := &Result{LoadBefore: loadAvg(), Options: opts, CPUPerRequest: map[load.Mode]map[string]time.Duration{},
		HubCPUPerRequest: map[load.Mode]map[string]time.Duration{}}
	start := start
	if opts.Separate {
		start = startSeparate
	}
	s, err := start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	res.Pinned = s.pinned

	mix, denied := s.hubMix(opts.Subjects, opts.Denied)
	fmt.Fprintf(opts.Progress, "bench: %d people, %d subjects, mix of %d allowed and %d denied request templates, load average %s\n",
		len(s.people), opts.Subjects, len(mix)-denied, denied, res.LoadBefore)

	if !opts.SkipClosed {
		c, err := s.compare(ctx, opts, load.ModeClosed, mix, res)
		if err != nil {
			return nil, err
		}
		res.Closed = c
	}
	if !opts.SkipOpen {
		c, err := s.compare(ctx, opts, load.ModeOpen, mix, res)
		if err != nil {
			return nil, err
		}
		res.Open = c
	}
	res.LoadAfter = loadAvg()
	return res, nil
}

// start brings up the demo network (hub and providers) in this process and
// the bare proxy in front of the population register.
func start(ctx context.Context, opts Options) (_ *setup, err error) {
	s, err := startNetwork(ctx, opts)
	if err != nil {
		return nil, err
	}
	// The benchmark's population register, and the hub's person-identity
	// service pointed at it (through apply, as an operator would).
	pool := s.run.Hub.CA.Pool()
	purl, stopProvider, err := serveProvider(newProvider(pool, s.people), pool, s.run.Certs[demo.PopulationRegister])
	if err != nil {
		s.stop()
		return nil, err
	}
	s.onStop(stopProvider)
	if err := s.useProvider(ctx, purl); err != nil {
		s.stop()
		return nil, err
	}
	cert, ok := s.run.Certs[demo.OCMW]
	if !ok {
		s.stop()
		return nil, errors.New("bench: no ocmw-gent certificate in the demo network")
	}
	s.clientTLS = pki.ClientTLSConfig(pool, cert)
	return s, nil
}

// startNetwork starts the demo network (hub and the demo's providers).
func startNetwork(ctx context.Context, opts Options) (_ *setup, err error) {
	dir, err := os.MkdirTemp("", "crossroads-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: temp dir: %w", err)
	}
	s := &setup{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	s.onStop(func() { os.RemoveAll(dir) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	hubCtx, cancel := context.WithCancel(ctx)
	r, errc, err := demo.Start(hubCtx, demo.Options{DataDir: dir, People: opts.People, Logger: opts.Logger}, ln)
	if err != nil {
		cancel()
		ln.Close()
		return nil, fmt.Errorf("bench: start demo network: %w", err)
	}
	s.onStop(func() {
		cancel()
		<-errc
		r.Close()
	})
	s.run, s.hubURL, s.people, s.signer = r, r.Base, r.People, r.Hub.Signer
	return s, nil
}

// useProvider points the hub's person-identity service at the benchmark's
// population register at purl (through apply, as an operator would) and
// starts the bare proxy in front of it.
func (s *setup) useProvider(ctx context.Context, purl string) error {
	r := s.run
	pool := r.Hub.CA.Pool()
	svc, ok := r.Hub.Directory.Service(demo.ServicePerson)
	if !ok {
		return errors.New("bench: the demo network has no person-identity service")
	}
	moved := *svc
	moved.BaseURL = purl
	if _, err := apply.Apply(ctx, r.Hub.Directory.Store(), &crossroads.Network{Services: []crossroads.Service{moved}}, r.Hub.Scheme, false); err != nil {
		return fmt.Errorf("bench: point the hub at the benchmark provider: %w", err)
	}
	s.directURL = purl
	upstream, err := url.Parse(s.directURL)
	if err != nil {
		return fmt.Errorf("bench: provider URL: %w", err)
	}
	// The bare proxy presents the hub's certificate, verifies clients
	// against the network CA and calls the provider with the hub's
	// certificate: the same TLS work as the hub, nothing else.
	serverTLS := &tls.Config{Certificates: []tls.Certificate{r.Hub.Cert}, ClientCAs: pool}
	srv, pln, err := load.BareProxy("127.0.0.1:0", upstream, serverTLS, pki.ClientTLSConfig(pool, r.Hub.Cert))
	if err != nil {
		return fmt.Errorf("bench: bare proxy: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(pln) // ends with ErrServerClosed
	}()
	s.onStop(func() { srv.Close(); <-done })
	s.bareURL = "https://" + pln.Addr().String()
	return nil
}

// hubMix is the hub's request mix: ocmw-gent reading person-identity for
// every subject it has a file on (allowed), and a denied share asking for
// an uncovered purpose. It returns the mix and how many templates are
// denied ones.
func (s *setup) hubMix(n int, deniedShare float64) ([]load.Request, int) {
	known := s.people[:len(s.people)-1] // the last one is known only as applicant
	subjects := make([]demo.Person, n)
	for i := range subjects {
		subjects[i] = known[i*len(known)/n]
	}
	var reqs []load.Request
	for i, p := range subjects {
		reqs = append(reqs, exchangeRequest(fmt.Sprintf("allowed-%d", i), p.INSZ, "social-aid", http.StatusOK))
	}
	nDenied := int(float64(len(subjects))*deniedShare/(1-deniedShare) + 0.5)
	for i := range nDenied {
		p := subjects[(i*7919)%len(subjects)]
		reqs = append(reqs, exchangeRequest(fmt.Sprintf("denied-%d", i), p.INSZ, deniedPurpose, http.StatusForbidden))
	}
	// Interleave the denied ones evenly with the allowed ones (the
	// generator cycles through the templates in order).
	a, d := reqs[:len(subjects)], reqs[len(subjects):]
	out := make([]load.Request, 0, len(reqs))
	for i := range len(reqs) {
		if (i+1)*nDenied/len(reqs) > i*nDenied/len(reqs) {
			out, d = append(out, d[0]), d[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return out, nDenied
}

func exchangeRequest(name, insz, purpose string, expect int) load.Request {
	h := http.Header{}
	h.Set(exchange.HeaderPurpose, purpose)
	h.Set(exchange.HeaderUser, "bench@"+demo.OCMW)
	h.Set(exchange.HeaderSubject, insz)
	return load.Request{
		Name:   name,
		Method: http.MethodGet,
		Path:   exchange.Prefix + demo.ServicePerson + "/persons/" + insz,
		Header: h,
		Expect: expect,
	}
}

// baselineMix adapts the hub mix for the bare proxy or the provider: each
// request carries an exchange id and a hub signature made now, so that the
// provider does the same work as behind the hub (verify the signature, look
// up, answer 200). The signatures are dated at the middle of the run so
// that they stay within the provider's ±1 min window.
func (s *setup) baselineMix(reqs []load.Request, direct bool, window time.Duration) ([]load.Request, error) {
	out := load.Baseline(reqs, direct)
	issued := time.Now().Add(window / 2)
	for i := range out {
		r := &out[i]
		r.Expect = http.StatusOK // the provider answers every request
		r.Header.Set(exchange.HeaderExchangeID, uuid.NewString())
		r.Header.Set(exchange.HeaderRequester, demo.OCMW)
		r.Header.Set(exchange.HeaderAuthorisation, "ocmw-social-aid")
		providerPath := r.Path
		if !direct {
			providerPath = strings.TrimPrefix(r.Path, exchange.Prefix+demo.ServicePerson)
		}
		req := &http.Request{Method: r.Method, URL: &url.URL{Path: providerPath}, Header: r.Header}
		if err := pki.SignRequest(s.signer, req, r.Body, pki.RequestClaims{
			Service: demo.ServicePerson, IssuedAt: issued,
		}); err != nil {
			return nil, fmt.Errorf("bench: sign baseline request: %w", err)
		}
	}
	return out, nil
}

// compare runs the three targets in one mode and returns the comparison.
func (s *setup) compare(ctx context.Context, opts Options, mode load.Mode, mix []load.Request, res *Result) (*load.Comparison, error) {
	cmp := &load.Comparison{Results: map[string]*load.Report{}, Command: opts.Command}
	cpuPer := res.CPUPerRequest
	cpuPer[mode] = map[string]time.Duration{}
	res.HubCPUPerRequest[mode] = map[string]time.Duration{}
	for _, target := range []string{load.TargetHub, load.TargetBare, load.TargetDirect} {
		cfg := load.Config{
			TLS:         s.clientTLS,
			Mode:        mode,
			Concurrency: opts.Concurrency,
			Rate:        opts.Rate,
			Warmup:      opts.Warmup,
			Duration:    opts.Duration,
			Timeout:     10 * time.Second,
		}
		var err error
		switch target {
		case load.TargetHub:
			cfg.Target, cfg.Requests = s.hubURL, mix
		case load.TargetBare, load.TargetDirect:
			cfg.Target = s.bareURL
			if target == load.TargetDirect {
				cfg.Target = s.directURL
			}
			cfg.Requests, err = s.baseline(mix, target == load.TargetDirect, opts.Warmup+opts.Duration)
		}
		if err != nil {
			return nil, err
		}
		var stopProfile func() error
		if target == load.TargetHub {
			if stopProfile, err = startProfiles(opts, mode); err != nil {
				return nil, err
			}
		}
		la := loadAvg()
		cpu := measureCPU(opts.Warmup)
		// The hub process's counters are read at the start of the measured
		// window (after the warm-up) and at its end.
		var stats0 hubStats
		var hubCPU0 time.Duration
		var statsErr error
		var statsMu sync.Mutex
		statsTimer := time.AfterFunc(opts.Warmup, func() {
			st, c, err := s.auditStats()
			statsMu.Lock()
			stats0, hubCPU0, statsErr = st, c, err
			statsMu.Unlock()
		})
		rep, err := load.Run(ctx, cfg)
		cpuUsed := cpu()
		statsTimer.Stop()
		stats1, hubCPU1, err1 := s.auditStats()
		statsMu.Lock()
		if err == nil {
			err = errors.Join(statsErr, err1)
		}
		statsMu.Unlock()
		if stopProfile != nil {
			if perr := stopProfile(); perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bench: %s %s run: %w", mode, target, err)
		}
		if rep.Responses > 0 {
			cpuPer[mode][target] = cpuUsed / time.Duration(rep.Responses)
			if s.child != nil && hubCPU0 > 0 {
				res.HubCPUPerRequest[mode][target] = (hubCPU1 - hubCPU0) / time.Duration(rep.Responses)
			}
		}
		fmt.Fprintf(opts.Progress, "bench: %-6s %-10s %8.0f req/s (%.0f allowed/s)  p50 %s  p99 %s  unexpected %d  failures %d  CPU %s/req  load average before %s\n",
			mode, target, rep.Throughput, Allowed(rep), rep.Latency.P50.Round(time.Microsecond), rep.Latency.P99.Round(time.Microsecond),
			rep.Unexpected, rep.Failures(), cpuPer[mode][target].Round(time.Microsecond), la)
		if d := res.HubCPUPerRequest[mode][target]; d > 0 {
			fmt.Fprintf(opts.Progress, "bench: %-6s %-10s CPU of the hub process: %s/req\n", mode, target, d.Round(time.Microsecond))
		}
		if commits := stats1.Batches - stats0.Batches; target == load.TargetHub && commits > 0 {
			lat := stats1.Commit.Sub(stats0.Commit)
			fmt.Fprintf(opts.Progress, "bench: %-6s %-10s audit: %d records in %d group commits (%.1f per commit); commit durations (transaction and fsync) p50 %s p99 %s p99.9 %s max %s; %d seals, %d signatures\n",
				mode, target, stats1.Records-stats0.Records, commits, float64(stats1.Records-stats0.Records)/float64(commits),
				lat.Quantile(0.5).Round(time.Microsecond), lat.Quantile(0.99).Round(time.Microsecond), lat.Quantile(0.999).Round(time.Microsecond), lat.Quantile(1).Round(time.Microsecond),
				stats1.seals-stats0.seals, stats1.sealSigs-stats0.sealSigs)
		}
		if rep.Unexpected > 0 {
			fmt.Fprintf(opts.Progress, "bench: %s %s: unexpected answers; status %v, reasons %v\n", mode, target, rep.Status, rep.Reasons)
		}
		cmp.Results[target] = rep
	}
	return cmp, nil
}

// Allowed is the rate of 200 answers of a run (allowed exchanges per
// second for the hub).
func Allowed(r *load.Report) float64 {
	if r == nil || r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Status[http.StatusOK]) / r.Elapsed.Seconds()
}

// startProfiles starts the profiles asked for a mode's hub run; the
// function returned stops them.
func startProfiles(o Options, mode load.Mode) (func() error, error) {
	cpu, tr := o.CPUProfile, ""
	if mode == load.ModeOpen {
		cpu, tr = o.OpenCPUProfile, o.Trace
	}
	var stops []func() error
	stop := func() error {
		var errs []error
		for _, f := range stops {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
	if cpu != "" {
		f, err := startToFile("cpu profile", cpu, pprof.StartCPUProfile, pprof.StopCPUProfile)
		if err != nil {
			return nil, err
		}
		stops = append(stops, f)
	}
	if tr != "" {
		f, err := startToFile("trace", tr, trace.Start, trace.Stop)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, f)
	}
	return stop, nil
}

// startToFile starts a profile (what) writing to a new file at path; the
// function returned stops it and closes the file.
func startToFile(what, path string, start func(io.Writer) error, stop func()) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", what, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: %s: %w", what, err)
	}
	return func() error {
		stop()
		if err := f.Close(); err != nil {
			return fmt.Errorf("bench: %s: %w", what, err)
		}
		return nil
	}, nil
}

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Markdown renders the result for docs/performance.md: the closed-loop and
// open-loop comparisons, the allowed-exchange rate, the hub's added p99 at
// the open-loop rate, the load average, and how it was measured.
func (r *Result) Markdown() string {
	var b strings.Builder
	o := r.Options
	if r.Closed != nil {
		fmt.Fprintf(&b, "### Closed loop, %d workers\n\n", o.Concurrency)
		b.WriteString(r.Closed.Markdown())
		if h := r.Closed.Results[load.TargetHub]; h != nil {
			fmt.Fprintf(&b, "\nHub: %.0f allowed exchanges/s (200 answers; the rest of the mix is denied, %.0f %% of templates).", Allowed(h), 100*o.Denied)
			if p, ok := r.Closed.PercentOf(load.TargetHub); ok {
				fmt.Fprintf(&b, " Hub throughput is %.0f %% of the bare proxy's.", p)
			}
			b.WriteString("\n")
		}
	}
	if r.Open != nil {
		fmt.Fprintf(&b, "\n### Open loop, %.0f requests/s offered\n\n", o.Rate)
		b.WriteString(r.Open.Markdown())
		if d, ok := r.Open.AddedP99(load.TargetHub); ok {
			fmt.Fprintf(&b, "\nHub-added latency at %.0f/s: p99 %s (hub p99 − direct provider p99).\n", o.Rate, d.Round(10*time.Microsecond))
		}
	}
	if c := r.CPUPerRequest[load.ModeClosed]; len(c) > 0 && o.Separate {
		b.WriteString("\n### CPU per request of the generator and provider process (closed loop)\n\n| target | CPU per request |\n|---|---:|\n")
		for _, t := range []string{load.TargetHub, load.TargetBare, load.TargetDirect} {
			if d := c[t]; d > 0 {
				fmt.Fprintf(&b, "| %s | %s |\n", t, d.Round(time.Microsecond))
			}
		}
	} else if len(c) > 0 {
		b.WriteString("\n### CPU per request (closed loop, whole process)\n\n| target | CPU per request | ceiling on all cores |\n|---|---:|---:|\n")
		cores := runtime.NumCPU()
		for _, t := range []string{load.TargetHub, load.TargetBare, load.TargetDirect} {
			if d := c[t]; d > 0 {
				fmt.Fprintf(&b, "| %s | %s | %.0f req/s |\n", t, d.Round(time.Microsecond), float64(cores)*float64(time.Second)/float64(d))
			}
		}
		if h, d := c[load.TargetHub], c[load.TargetDirect]; h > d && d > 0 {
			own := h - d
			fmt.Fprintf(&b, "\nThe hub's own CPU per exchange (hub run − direct run, which both include generator and provider): %s; "+
				"alone on these %d cores the hub would top out near %.0f exchanges/s.\n", own.Round(time.Microsecond), cores, float64(cores)*float64(time.Second)/float64(own))
		}
	}
	if c := r.HubCPUPerRequest[load.ModeClosed]; len(c) > 0 {
		b.WriteString("\n### CPU of the hub process alone per request (closed loop)\n\n| target | CPU per request | ceiling on one core |\n|---|---:|---:|\n")
		for _, t := range []string{load.TargetHub, load.TargetBare} {
			if d := c[t]; d > 0 {
				fmt.Fprintf(&b, "| %s | %s | %.0f req/s |\n", t, d.Round(time.Microsecond), float64(time.Second)/float64(d))
			}
		}
	}
	fmt.Fprintf(&b, "\nLoad average (1, 5, 15 min): %s before, %s after.\n", r.LoadBefore, r.LoadAfter)
	if o.Separate {
		pin := "not pinned (no taskset, or one core)"
		if r.Pinned.Hub != "" {
			pin = fmt.Sprintf("pinned with taskset: hub process on core %s, generator and provider on core(s) %s", r.Pinned.Hub, r.Pinned.Rest)
		}
		fmt.Fprintf(&b, "\nSetup (--separate): the hub — the demo network, and the bare proxy for its runs — is a process of its own, %s. "+
			"This process runs the load generator and the population register (the same work as behind the hub: mutual TLS, verify the hub's signature, look up, answer). "+
			"%d synthetic people; ocmw-gent reads person-identity about %d of them, %.0f %% of the mix asks for an uncovered purpose (denied, audited). "+
			"The hub process's CPU is read from the process itself at the start and end of each measured window.\n", pin, o.People, o.Subjects, 100*o.Denied)
		return b.String()
	}
	fmt.Fprintf(&b, "\nSetup: one process runs the load generator, the hub (durable audit: SQLite group commit, Tessera log), "+
		"the bare proxy and the demo provider, all sharing the machine's cores; the hub's figures are therefore a lower bound. "+
		"%d synthetic people; ocmw-gent reads person-identity about %d of them (subjects it has a file on), %.0f %% of the mix asks for an uncovered purpose (denied, audited). "+
		"All three reach one population register run by the benchmark: the demo register's work (mutual TLS, verify the hub's signature, look up, "+
		"answer the same JSON) without its replay cache, so that bare-proxy and direct requests can carry a hub signature made once per request "+
		"template before the run; the provider thus does the same work behind the hub and behind the baselines. The hub's extra work is its own.", o.People, o.Subjects, 100*o.Denied)
	if o.CPUProfile != "" {
		b.WriteString(" The CPU profile covers the whole process (generator, hub and provider) during the closed-loop hub run.")
	}
	b.WriteString("\n")
	return b.String()
}

// measureCPU returns a function giving the process's CPU time (user +
// system) from warmup from now until it is called.
func measureCPU(warmup time.Duration) func() time.Duration {
	var mu sync.Mutex
	start := processCPU()
	t := time.AfterFunc(warmup, func() {
		c := processCPU()
		mu.Lock()
		start = c
		mu.Unlock()
	})
	return func() time.Duration {
		t.Stop()
		end := processCPU()
		mu.Lock()
		defer mu.Unlock()
		return end - start
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
