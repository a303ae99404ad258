package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxRequestSize bounds an add-checkpoint request body.
const MaxRequestSize = 256 << 10

// SizeContentType is the Content-Type of a 409 Conflict response carrying the
// witness's latest cosigned tree size.
const SizeContentType = "text/x.tlog.size"

// Log is a log the witness cosigns for.
type Log struct {
	// Origin is the checkpoint origin line identifying the log.
	Origin string
	// Verifiers are the log's public keys; a checkpoint needs a valid
	// signature from at least one of them.
	Verifiers []note.Verifier
}

// Config configures a Witness.
type Config struct {
	// Name is the witness's key name, e.g. "witness.example.org/w1".
	Name string
	// Key is the witness's Ed25519 private key, used for cosignature/v1
	// cosignatures when Signer is nil.
	Key ed25519.PrivateKey
	// Signer, if set, signs instead of Key. It must produce cosignature/v1
	// signatures (as Cosigner does) and be named Name.
	Signer note.Signer
	// Store keeps the latest cosigned checkpoint per log. Required.
	Store Store
	// Logs are the logs the witness accepts checkpoints from.
	Logs []Log
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Witness is a C2SP tlog-witness. It is an http.Handler serving
// POST /add-checkpoint.
type Witness struct {
	signer note.Signer
	store  Store
	logs   map[string]note.Verifiers
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns a witness for cfg.
func New(ctx context.Context, cfg Config) (*Witness, error) {
	w := &Witness{store: cfg.Store, log: cfg.Logger, logs: make(map[string]note.Verifiers)}
	if w.log == nil {
		w.log = slog.Default()
	}
	if cfg.Store == nil {
		return nil, errors.New("witness: no store configured")
	}
	switch {
	case cfg.Signer != nil:
		if cfg.Name != "" && cfg.Signer.Name() != cfg.Name {
			return nil, fmt.Errorf("witness: signer is named %q, not %q", cfg.Signer.Name(), cfg.Name)
		}
		w.signer = cfg.Signer
	case cfg.Key != nil:
		s, err := NewCosigner(cfg.Name, cfg.Key)
		if err != nil {
			return nil, err
		}
		w.signer = s
	default:
		return nil, errors.New("witness: no key or signer configured")
	}
	for _, l := range cfg.Logs {
		if l.Origin == "" {
			return nil, errors.New("witness: log with an empty origin")
		}
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q configured twice", l.Origin)
		}
		if len(l.Verifiers) == 0 {
			return nil, fmt.Errorf("witness: log %q has no verifier keys", l.Origin)
		}
		w.logs[l.Origin] = note.VerifierList(l.Verifiers...)
	}
	w.mux = http.NewServeMux()
	w.mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	w.log.InfoContext(ctx, "witness configured", "name", w.signer.Name(), "logs", len(w.logs))
	return w, nil
}

// Name returns the witness's key name.
func (w *Witness) Name() string { return w.signer.Name() }

// ServeHTTP implements http.Handler.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.mux.ServeHTTP(rw, r) }

// statusError is an add-checkpoint failure with its HTTP status.
type statusError struct {
	code int
	err  error
	// size is sent as the body of a 409 response when hasSize.
	size    uint64
	hasSize bool
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func fail(code int, err error) *statusError { return &statusError{code: code, err: err} }

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "reading request body failed", http.StatusBadRequest)
		return
	}
	sigs, err := w.AddCheckpoint(ctx, body)
	if err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			se = fail(http.StatusInternalServerError, err)
		}
		if se.code >= 500 {
			w.log.ErrorContext(ctx, "add-checkpoint failed", "err", err)
			http.Error(rw, "internal error", se.code)
			return
		}
		w.log.DebugContext(ctx, "add-checkpoint refused", "status", se.code, "err", err)
		if se.hasSize {
			rw.Header().Set("Content-Type", SizeContentType)
			rw.Header().Set("X-Content-Type-Options", "nosniff")
			rw.WriteHeader(se.code)
			fmt.Fprintf(rw, "%d\n", se.size)
			return
		}
		http.Error(rw, err.Error(), se.code)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(sigs)))
	rw.WriteHeader(http.StatusOK)
	rw.Write(sigs)
}

// AddCheckpoint processes an add-checkpoint request body and returns the
// cosignature lines. Errors carry the HTTP status the protocol prescribes;
// use StatusCode to get it.
func (w *Witness) AddCheckpoint(ctx context.Context, body []byte) ([]byte, error) {
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		return nil, fail(http.StatusBadRequest, err)
	}
	origin := req.Parsed.Origin
	known, ok := w.logs[origin]
	if !ok {
		return nil, fail(http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownLog, origin))
	}
	n, err := note.Open(req.Checkpoint, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, fail(http.StatusForbidden, fmt.Errorf("%w for %q: %w", ErrBadSignature, origin, err))
		}
		return nil, fail(http.StatusBadRequest, fmt.Errorf("%w checkpoint note: %w", ErrMalformed, err))
	}
	cp := req.Parsed
	if req.OldSize > cp.Size {
		return nil, fail(http.StatusBadRequest, fmt.Errorf("%w request: old size %d is larger than checkpoint size %d", ErrMalformed, req.OldSize, cp.Size))
	}

	for attempt := 0; ; attempt++ {
		cur, exists, err := w.store.Latest(ctx, origin)
		if err != nil {
			return nil, fail(http.StatusInternalServerError, err)
		}
		if req.OldSize != cur.Size {
			return nil, &statusError{code: http.StatusConflict, size: cur.Size, hasSize: true,
				err: fmt.Errorf("%w: old size %d, latest cosigned size of %q is %d", ErrConflict, req.OldSize, origin, cur.Size)}
		}
		update := true
		switch {
		case exists && cp.Size == cur.Size:
			if cp.Root != cur.Root {
				w.log.WarnContext(ctx, "fork: checkpoint with the cosigned size but another root hash",
					"origin", origin, "size", cp.Size, "checkpoint", string(req.Checkpoint))
				return nil, &statusError{code: http.StatusConflict, size: cur.Size, hasSize: true,
					err: fmt.Errorf("%w: %q at size %d has another root hash than the one cosigned", ErrFork, origin, cp.Size)}
			}
			if len(req.Proof) != 0 {
				return nil, fail(http.StatusUnprocessableEntity, fmt.Errorf("%w: non-empty proof between equal sizes", ErrInconsistent))
			}
			update = false
		case req.OldSize == 0:
			if len(req.Proof) != 0 {
				return nil, fail(http.StatusUnprocessableEntity, fmt.Errorf("%w: non-empty proof from size 0", ErrInconsistent))
			}
		default:
			if err := tlog.CheckTree(req.Proof, int64(cp.Size), cp.Root, int64(cur.Size), cur.Root); err != nil {
				w.log.WarnContext(ctx, "checkpoint signed by the log is not consistent with the cosigned one",
					"origin", origin, "old_size", cur.Size, "size", cp.Size, "checkpoint", string(req.Checkpoint),
					"proof", req.Proof)
				return nil, fail(http.StatusUnprocessableEntity, fmt.Errorf("%w from %d to %d: %w", ErrInconsistent, cur.Size, cp.Size, err))
			}
		}
		if update {
			var old *State
			if exists {
				old = &cur
			}
			next := State{Size: cp.Size, Root: cp.Root, Checkpoint: bytes.Clone(req.Checkpoint)}
			if err := w.store.CompareAndSwap(ctx, origin, old, next); err != nil {
				if errors.Is(err, ErrStateChanged) && attempt < 3 {
					continue // re-check against the new state
				}
				return nil, fail(http.StatusInternalServerError, err)
			}
		}
		signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
		if err != nil {
			return nil, fail(http.StatusInternalServerError, fmt.Errorf("witness: cosigning: %w", err))
		}
		w.log.InfoContext(ctx, "cosigned checkpoint", "origin", origin, "size", cp.Size, "old_size", req.OldSize)
		return signed[len(n.Text)+1:], nil
	}
}

// StatusCode returns the HTTP status code Witness.AddCheckpoint associates
// with err (200 for nil, 500 for errors without one).
func StatusCode(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return http.StatusInternalServerError
}
