package audit

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/witness"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// WitnessConfig names a C2SP tlog-witness the log's checkpoints are
// submitted to.
type WitnessConfig struct {
	// URL is the witness's submission prefix: requests go to
	// URL + "/add-checkpoint".
	URL string
	// VerifierKey is the witness's cosignature/v1 verifier key
	// (name+keyid+base64).
	VerifierKey string
}

// ErrNotWitnessed is returned by Checkpoint while no checkpoint has gathered
// the cosignatures the witness policy requires.
var ErrNotWitnessed = errors.New("audit: no checkpoint cosigned by the witnesses yet")

// CosignedCheckpointFile is the file, in the data directory, holding the
// latest published checkpoint with its witness cosignatures.
const CosignedCheckpointFile = "checkpoint.cosigned"

// witnessTimeout bounds one add-checkpoint request.
const witnessTimeout = 10 * time.Second

// witnessing submits every new checkpoint of the log to the configured
// witnesses and publishes it, with their cosignatures, once the policy is
// met. Until a newer one is, the last published checkpoint stays served.
type witnessing struct {
	t      *Trail
	policy witness.Policy
	ws     []*witnessPeer
	file   string

	mu        sync.RWMutex
	published []byte    // nil until a checkpoint met the policy
	pubTree   tlog.Tree // its tree

	roundMu sync.Mutex // one round at a time
	stop    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	ctx     context.Context
}

type witnessPeer struct {
	url    string
	name   string
	client *witness.Client
	size   uint64 // the witness's latest cosigned size, as far as we know
}

func newWitnessing(t *Trail) (*witnessing, error) {
	w := &witnessing{t: t, file: filepath.Join(t.cfg.Dir, CosignedCheckpointFile), policy: witness.Policy{Quorum: t.cfg.Quorum}}
	hc := t.cfg.WitnessHTTP
	if hc == nil {
		hc = &http.Client{
			Timeout:       witnessTimeout,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13}, Proxy: http.ProxyFromEnvironment},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	for _, wc := range t.cfg.Witnesses {
		v, err := witness.NewCosignatureVerifier(strings.TrimSpace(wc.VerifierKey))
		if err != nil {
			return nil, fmt.Errorf("audit: witness %s: %w", wc.URL, err)
		}
		if wc.URL == "" {
			return nil, fmt.Errorf("audit: witness %s has no URL", v.Name())
		}
		w.policy.Witnesses = append(w.policy.Witnesses, v)
		w.ws = append(w.ws, &witnessPeer{url: wc.URL, name: v.Name(), client: &witness.Client{URL: wc.URL, HTTP: hc, Verifier: v}})
	}
	if t.cfg.Quorum > len(w.ws) {
		return nil, fmt.Errorf("audit: witness quorum %d exceeds the %d witnesses configured", t.cfg.Quorum, len(w.ws))
	}
	b, err := os.ReadFile(w.file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("audit: cosigned checkpoint: %w", err)
	default:
		c, err := verify.OpenCheckpoint(b, t.verifier)
		if err != nil {
			return nil, fmt.Errorf("audit: cosigned checkpoint: %w", err)
		}
		if w.policy.Satisfied(b) {
			w.published, w.pubTree = b, c.Tree
		} else {
			t.log.Warn("audit cosigned checkpoint does not meet the witness policy; not serving it", "size", c.N)
		}
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	return w, nil
}

// checkpoint returns the published cosigned checkpoint.
func (w *witnessing) checkpoint() ([]byte, tlog.Tree, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.published, w.pubTree, w.published != nil
}

// run checks the log's checkpoint at every tick and witnesses each new
// one; a failed round is retried with backoff (up to a minute).
func (w *witnessing) run(interval time.Duration) {
	defer close(w.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var tried tlog.Tree
	var failures int
	var retryAt time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		cp, c, err := w.logCheckpoint(w.ctx)
		if err != nil {
			w.t.log.Error("audit witnessing: read checkpoint", "err", err)
			continue
		}
		if _, pub, ok := w.checkpoint(); ok && pub == c.Tree {
			continue
		}
		if c.Tree == tried && time.Now().Before(retryAt) {
			continue
		}
		tried = c.Tree
		if w.round(w.ctx, cp, c) {
			failures = 0
			continue
		}
		failures++
		retryAt = time.Now().Add(min(interval<<min(failures, 10), time.Minute))
	}
}

// logCheckpoint reads and verifies the log's latest signed checkpoint.
func (w *witnessing) logCheckpoint(ctx context.Context) ([]byte, verify.Checkpoint, error) {
	cp, err := w.t.lg.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, verify.Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	c, err := verify.OpenCheckpoint(cp, w.t.verifier)
	if err != nil {
		return nil, verify.Checkpoint{}, fmt.Errorf("own checkpoint: %w", err)
	}
	return cp, c, nil
}

// round submits cp to every witness, merges the cosignatures and publishes
// the result if it satisfies the policy. It reports whether it published.
func (w *witnessing) round(ctx context.Context, cp []byte, c verify.Checkpoint) bool {
	w.roundMu.Lock()
	defer w.roundMu.Unlock()
	if _, pub, ok := w.checkpoint(); ok {
		if pub == c.Tree {
			return true
		}
		if c.N < pub.N {
			w.t.log.Error("audit witnessing: the log's checkpoint is smaller than the published one", "size", c.N, "published", pub.N)
			return false
		}
	}
	sigs := make([][]note.Signature, len(w.ws))
	errs := make([]error, len(w.ws))
	var wg sync.WaitGroup
	for i, p := range w.ws {
		wg.Go(func() { sigs[i], errs[i] = w.submit(ctx, p, cp, c) })
	}
	wg.Wait()
	merged := cp
	got := 0
	for i, p := range w.ws {
		if err := errs[i]; err != nil {
			if errors.Is(err, witness.ErrInconsistent) || errors.Is(err, witness.ErrFork) || errors.Is(err, errWitnessAhead) {
				w.t.log.Error("audit witness refused the checkpoint as inconsistent with what it cosigned",
					"witness", p.name, "size", c.N, "witness_size", p.size, "err", err)
			} else {
				w.t.log.Warn("audit witness did not cosign", "witness", p.name, "size", c.N, "err", err)
			}
			continue
		}
		m, err := witness.MergeSignatures(merged, sigs[i]...)
		if err != nil {
			w.t.log.Warn("audit witness cosignature", "witness", p.name, "err", err)
			continue
		}
		merged = m
		got++
	}
	if !w.policy.Satisfied(merged) {
		w.t.log.Warn("audit witness quorum not met; keeping the previous checkpoint", "size", c.N, "cosignatures", got, "witnesses", len(w.ws))
		return false
	}
	if err := atomicfile.Write(w.file, merged, 0o644); err != nil {
		w.t.log.Error("audit witnessing: save cosigned checkpoint", "err", err)
		return false
	}
	w.mu.Lock()
	w.published, w.pubTree = merged, c.Tree
	w.mu.Unlock()
	w.t.log.Debug("audit cosigned checkpoint published", "size", c.N, "cosignatures", got)
	return true
}

var errWitnessAhead = errors.New("witness has cosigned a larger tree than the log's")

// submit sends cp to one witness with a consistency proof from the size it
// last cosigned, following a 409 to the size the witness reports.
func (w *witnessing) submit(ctx context.Context, p *witnessPeer, cp []byte, c verify.Checkpoint) ([]note.Signature, error) {
	n := uint64(c.N)
	pb, err := client.NewProofBuilder(ctx, n, w.t.lg.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("proof builder: %w", err)
	}
	old := p.size
	for attempt := 0; ; attempt++ {
		if old > n {
			return nil, fmt.Errorf("%w: witness at %d, log at %d", errWitnessAhead, old, n)
		}
		var proof []tlog.Hash
		if old != 0 && old != n {
			hs, err := pb.ConsistencyProof(ctx, old, n)
			if err != nil {
				return nil, fmt.Errorf("consistency proof %d→%d: %w", old, n, err)
			}
			for _, h := range hs {
				if len(h) != tlog.HashSize {
					return nil, errors.New("consistency proof: bad hash size")
				}
				proof = append(proof, tlog.Hash(h))
			}
			if f := w.t.cfg.tamperProof; f != nil {
				f(proof)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, witnessTimeout)
		sigs, err := p.client.AddCheckpoint(rctx, old, proof, cp)
		cancel()
		var ce *witness.ConflictError
		if errors.As(err, &ce) && !ce.Fork && attempt < 3 {
			old = ce.Size
			p.size = ce.Size
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("add-checkpoint from %d: %w", old, err)
		}
		p.size = n
		return sigs, nil
	}
}

// close stops the loop, then makes a last bounded attempt to publish the
// log's final checkpoint.
func (w *witnessing) close(ctx context.Context) {
	close(w.stop)
	<-w.done
	defer w.cancel()
	cp, c, err := w.logCheckpoint(ctx)
	if err != nil {
		return
	}
	if _, pub, ok := w.checkpoint(); ok && pub == c.Tree {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, witnessTimeout)
	defer cancel()
	w.round(rctx, cp, c)
}

// Checkpoint returns the latest published checkpoint: with witnesses
// configured, the latest one cosigned as the witness policy requires
// (ErrNotWitnessed before the first); otherwise the log's signed
// checkpoint.
func (t *Trail) Checkpoint(ctx context.Context) ([]byte, error) {
	if t.wit != nil {
		cp, _, ok := t.wit.checkpoint()
		if !ok {
			return nil, ErrNotWitnessed
		}
		return bytes.Clone(cp), nil
	}
	cp, err := t.lg.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	return cp, nil
}

// Witnesses returns the witness policy's verifiers (nil without witnesses).
func (t *Trail) Witnesses() witness.Policy {
	if t.wit == nil {
		return witness.Policy{}
	}
	return t.wit.policy
}
