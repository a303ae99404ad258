// Package crash is the crash harness of the hub ('crossroads crash'): it
// runs the hub as a child process on a demo data directory, drives load
// against it with several clients that record every answer they receive,
// changes integrations and authorisations through the API, kills the child
// with SIGKILL at random moments, restarts it, and at the end checks that
//
//   - the hub came back every time, and how long it took (until /readyz);
//   - the audit trail verifies (audit.Trail.Check: records decrypt and open
//     their commitments, the Merkle log re-derives from its tiles to the
//     signed checkpoint, every leaf is one record's and every record one
//     leaf's), and every checkpoint served after a restart is consistent
//     with the one served before;
//   - every answer a client received with a Crossroads-Receipt has exactly
//     one record, integrated in the log, whose leaf is the one the receipt
//     names; every 200 answer carried a receipt;
//   - every acknowledged integration or authorisation change is present,
//     none is half-applied, and an unacknowledged one is either absent or
//     whole.
package crash

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/pki"
)

// Bounds of a run.
const (
	MaxKills   = 10_000
	MaxClients = 1_000
	// readyTimeout bounds how long a (re)start may take before the run fails.
	readyTimeout = 60 * time.Second
)

// Options configure a run.
type Options struct {
	// Binary is the crossroads executable; it must support
	// 'crash --child' (required).
	Binary string
	// Dir holds the data directory and the child's log ("" = a temporary
	// directory, removed after a run that verified).
	Dir   string
	Kills int // SIGKILLs (default 20)
	// MinUp and MaxUp bound the random time the hub runs under load
	// between being ready and being killed (default 300 ms and 2 s).
	MinUp, MaxUp time.Duration
	// EarlyKills is the share of kills that hit the hub while it starts,
	// before it is ready (0: none; 'crossroads crash' uses 0.2).
	EarlyKills float64
	// Settle is how long the load runs after the last restart before the
	// clean stop (default 1 s).
	Settle  time.Duration
	Clients int // exchange clients (default 8)
	People  int // synthetic people (default 2,000)
	Seed    uint64
	// Progress receives a line per kill (nil: discarded).
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Kills == 0 {
		o.Kills = 20
	}
	if o.MinUp == 0 {
		o.MinUp = 300 * time.Millisecond
	}
	if o.MaxUp == 0 {
		o.MaxUp = 2 * time.Second
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.Clients == 0 {
		o.Clients = 8
	}
	if o.People == 0 {
		o.People = 2000
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case o.Binary == "":
		return errors.New("crash: the crossroads binary is required")
	case o.Kills < 0 || o.Kills > MaxKills:
		return fmt.Errorf("crash: kills %d: want [0, %d]", o.Kills, MaxKills)
	case o.MinUp < 0 || o.MaxUp < o.MinUp || o.MaxUp > time.Hour:
		return fmt.Errorf("crash: uptime between kills [%s, %s]: want 0 ≤ min ≤ max ≤ 1h", o.MinUp, o.MaxUp)
	case o.EarlyKills < 0 || o.EarlyKills > 1:
		return fmt.Errorf("crash: early kills %g: want [0, 1]", o.EarlyKills)
	case o.Clients < 1 || o.Clients > MaxClients:
		return fmt.Errorf("crash: clients %d: want [1, %d]", o.Clients, MaxClients)
	case o.People < 10 || o.People > 1_000_000:
		return fmt.Errorf("crash: people %d: want [10, 1000000]", o.People)
	case o.Settle < 0 || o.Settle > time.Hour:
		return fmt.Errorf("crash: settle %s: want [0, 1h]", o.Settle)
	}
	return nil
}

// Report is the outcome of a run.
type Report struct {
	Seed       uint64
	Kills      int // SIGKILLs sent
	EarlyKills int // of which while the hub was starting
	// Restarts are the times from starting the child until /readyz
	// answered 200, for the starts that followed a SIGKILL and got ready.
	Restarts   []time.Duration
	FirstStart time.Duration // the initial start (creates the network)
	CleanStart time.Duration // the start after the final clean stop

	Requests    int64 // exchange requests sent
	Responses   int64 // answers received
	Receipts    int64 // answers with a Crossroads-Receipt
	Allowed     int64 // 200 answers
	NoReceipt   int64 // answers without a receipt (e.g. 503 audit-unavailable)
	Transport   int64 // requests without an answer (the hub was down or died)
	Checkpoints int   // served checkpoints checked for consistency

	IntegrationOps   int // PUT/DELETE sent
	IntegrationAcked int
	AuthOps          int // network applies sent
	AuthAcked        int
	MutationsSent    int // publications sent, retries included (push.go)
	MutationsAcked   int // distinct mutations acknowledged (202)

	Batches BatchReport // batch submissions (batch.go)

	Records    int   // audit records stored
	Integrated int   // of which in the log
	LogSize    int64 // leaves in the final checkpoint

	Problems []string
	Dir      string
}

// OK reports whether the run found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(format string, a ...any) {
	if len(r.Problems) < 200 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
	} else if len(r.Problems) == 200 {
		r.Problems = append(r.Problems, "… more problems not shown")
	}
}

// String renders the report.
func (r *Report) String() string {
	var b strings.Builder
	p50, pmax := percentile(r.Restarts, 0.5), percentile(r.Restarts, 1)
	verdict := "PASS"
	if !r.OK() {
		verdict = fmt.Sprintf("FAIL (%d problems)", len(r.Problems))
	}
	fmt.Fprintf(&b, "crash harness (seed %d, data in %s)\n", r.Seed, r.Dir)
	fmt.Fprintf(&b, "  kills          %d SIGKILL (%d while starting)\n", r.Kills, r.EarlyKills)
	fmt.Fprintf(&b, "  restart        p50 %s  max %s  over %d restarts (until /readyz); first start %s, clean start %s\n",
		p50.Round(time.Millisecond), pmax.Round(time.Millisecond), len(r.Restarts), r.FirstStart.Round(time.Millisecond), r.CleanStart.Round(time.Millisecond))
	fmt.Fprintf(&b, "  exchanges      %d sent, %d answered (%d allowed), %d with receipt, %d answers without receipt, %d without answer\n",
		r.Requests, r.Responses, r.Allowed, r.Receipts, r.NoReceipt, r.Transport)
	fmt.Fprintf(&b, "  changes        integrations %d sent / %d acknowledged; network applies %d sent / %d acknowledged\n",
		r.IntegrationOps, r.IntegrationAcked, r.AuthOps, r.AuthAcked)
	b.WriteString(r.Batches.String())
	fmt.Fprintf(&b, "  mutations      %d sent (retries with the same key included) / %d acknowledged, all stored whole, none routed twice\n", r.MutationsSent, r.MutationsAcked)
	fmt.Fprintf(&b, "  audit          %d records, %d in the log, log size %d; %d served checkpoints consistent\n",
		r.Records, r.Integrated, r.LogSize, r.Checkpoints)
	fmt.Fprintf(&b, "  verdict        %s\n", verdict)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	return b.String()
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}

// harness is one run's state.
type harness struct {
	opts    Options
	rep     *Report
	dataDir string
	logFile *os.File
	addr    string
	base    string
	rng     *rand.Rand

	child  *exec.Cmd
	exited chan error

	clients map[string]*http.Client
	probe   *http.Client
	vkey    string

	cpMu sync.Mutex
	cp   *servedCheckpoint
}

// Run runs the harness and verifies. The error is for a run that could not
// be carried out; what the run found is in Report.Problems.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	h := &harness{opts: opts, rep: &Report{Seed: opts.Seed}, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	dir := opts.Dir
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "crossroads-crash-")
		if err != nil {
			return nil, fmt.Errorf("crash: temp dir: %w", err)
		}
		dir = d
	}
	h.rep.Dir = dir
	h.dataDir = filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crash: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "child.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("crash: child log: %w", err)
	}
	h.logFile = lf
	defer lf.Close()
	if h.addr, err = freeAddr(); err != nil {
		return nil, err
	}
	h.base = "https://" + h.addr
	defer h.killChild() // whatever happens, no child is left behind

	if err := h.run(ctx); err != nil {
		return h.rep, err
	}
	if temp && h.rep.OK() {
		os.RemoveAll(dir)
		h.rep.Dir += " (removed)"
	}
	return h.rep, nil
}

func (h *harness) run(ctx context.Context) error {
	// First start: creates the CA, the hub, the demo network.
	d, err := h.start(ctx)
	if err != nil {
		return err
	}
	h.rep.FirstStart = d
	if err := h.loadClients(); err != nil {
		return err
	}
	if err := h.checkCheckpoint(ctx); err != nil {
		return err
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	w := newWorkers(h)
	var wg sync.WaitGroup
	w.start(loadCtx, &wg)

	err = h.killLoop(ctx)
	if err == nil {
		select {
		case <-time.After(h.opts.Settle):
		case <-ctx.Done():
			err = fmt.Errorf("crash: %w", ctx.Err())
		}
	}
	stopLoad()
	wg.Wait()
	w.tally(h.rep)
	if err != nil {
		return err
	}

	// A clean stop (SIGTERM), then one more start to check the served log,
	// then a clean stop before the offline verification.
	if err := h.stop(); err != nil {
		return err
	}
	if h.rep.CleanStart, err = h.start(ctx); err != nil {
		return err
	}
	if err := h.checkCheckpoint(ctx); err != nil {
		return err
	}
	if err := h.awaitBatches(ctx, w); err != nil { // batch.go
		return err
	}
	if err := h.stop(); err != nil {
		return err
	}
	if beforeVerify != nil {
		if err := beforeVerify(h.dataDir); err != nil {
			return err
		}
	}
	return h.verify(ctx, w)
}

// beforeVerify, if set (tests), runs on the data directory before the
// verification: tests tamper with it to see the verification fail.
var beforeVerify func(dataDir string) error

// killLoop kills and restarts the child opts.Kills times.
func (h *harness) killLoop(ctx context.Context) error {
	lastStart := time.Second
	for k := range h.opts.Kills {
		early := h.rng.Float64() < h.opts.EarlyKills
		if !early {
			up := h.opts.MinUp + time.Duration(h.rng.Int64N(int64(h.opts.MaxUp-h.opts.MinUp)+1))
			select {
			case <-time.After(up):
			case <-ctx.Done():
				return fmt.Errorf("crash: %w", ctx.Err())
			}
		}
		if err := h.kill(); err != nil {
			return err
		}
		h.rep.Kills++
		if early {
			// Start, and kill at a random moment before it is ready.
			h.rep.EarlyKills++
			if err := h.spawn(); err != nil {
				return err
			}
			time.Sleep(time.Duration(h.rng.Int64N(int64(lastStart) + 1)))
			if err := h.kill(); err != nil {
				return err
			}
			fmt.Fprintf(h.opts.Progress, "crash: kill %d/%d (while starting)\n", k+1, h.opts.Kills)
		}
		d, err := h.start(ctx)
		if err != nil {
			return err
		}
		lastStart = d
		h.rep.Restarts = append(h.rep.Restarts, d)
		if err := h.checkCheckpoint(ctx); err != nil {
			return err
		}
		if !early {
			fmt.Fprintf(h.opts.Progress, "crash: kill %d/%d, restarted in %s\n", k+1, h.opts.Kills, d.Round(time.Millisecond))
		} else {
			fmt.Fprintf(h.opts.Progress, "crash: restarted in %s\n", d.Round(time.Millisecond))
		}
	}
	return nil
}

// spawn starts the child without waiting for it to be ready.
func (h *harness) spawn() error {
	cmd := exec.Command(h.opts.Binary, "crash", "--child", "--data", h.dataDir, "--listen", h.addr,
		"--people", strconv.Itoa(h.opts.People))
	cmd.Stdout, cmd.Stderr = h.logFile, h.logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("crash: start hub: %w", err)
	}
	h.child = cmd
	h.exited = make(chan error, 1)
	go func() { h.exited <- cmd.Wait() }()
	return nil
}

// start spawns the child and waits until /readyz answers 200.
func (h *harness) start(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	if err := h.spawn(); err != nil {
		return 0, err
	}
	deadline := t0.Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-h.exited:
			h.child = nil
			return 0, fmt.Errorf("crash: the hub exited while starting (%v); see %s", err, h.logFile.Name())
		case <-ctx.Done():
			return 0, fmt.Errorf("crash: %w", ctx.Err())
		default:
		}
		if h.ready(ctx) {
			return time.Since(t0), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("crash: the hub was not ready within %s; see %s", readyTimeout, h.logFile.Name())
}

func (h *harness) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := h.probeClient().Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// probeClient trusts any server certificate until the CA is known (the
// first start creates it); only /readyz is read with it.
func (h *harness) probeClient() *http.Client {
	if h.probe == nil {
		h.probe = &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec // readiness probe only
			DisableKeepAlives: true,
		}}
	}
	return h.probe
}

// kill sends SIGKILL to the child and waits for it to die.
func (h *harness) kill() error {
	if h.child == nil {
		return errors.New("crash: no hub to kill")
	}
	if err := h.child.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("crash: kill: %w", err)
	}
	<-h.exited
	h.child = nil
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (h *harness) stop() error {
	if h.child == nil {
		return errors.New("crash: no hub to stop")
	}
	if err := h.child.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("crash: stop: %w", err)
	}
	select {
	case err := <-h.exited:
		h.child = nil
		if err != nil {
			return fmt.Errorf("crash: the hub did not stop cleanly: %w; see %s", err, h.logFile.Name())
		}
		return nil
	case <-time.After(30 * time.Second):
		return h.kill()
	}
}

func (h *harness) killChild() {
	if h.child != nil {
		h.child.Process.Kill()
		<-h.exited
		h.child = nil
	}
}

// loadClients reads the CA and the participants' certificates written by
// the first start.
func (h *harness) loadClients() error {
	demoDir := filepath.Join(h.dataDir, "demo")
	caPEM, err := os.ReadFile(filepath.Join(demoDir, "ca.crt"))
	if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("crash: ca.crt holds no certificate")
	}
	h.clients = map[string]*http.Client{}
	for _, id := range []string{demo.OCMW, demo.ONEM, demo.Operator} {
		cert, err := tls.LoadX509KeyPair(filepath.Join(demoDir, "certs", id+".crt"), filepath.Join(demoDir, "certs", id+".key"))
		if err != nil {
			return fmt.Errorf("crash: certificate of %s: %w", id, err)
		}
		h.clients[id] = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:     pki.ClientTLSConfig(pool, cert),
				MaxIdleConnsPerHost: 64,
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			},
		}
	}
	return nil
}

// freeAddr picks a free port on 127.0.0.1 for the child to listen on at
// every start.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("crash: pick a port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
