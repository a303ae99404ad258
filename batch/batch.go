// Package batch is batch consultation (seed 001; issue 10 item 4): a
// participant submits up to MaxItems exchanges at once as NDJSON
// (POST /v1/batches), the hub stores them durably and answers 202; workers
// run every item through the exchange pipeline (exchange.Pipeline.Do) as
// the submitter — decided, minimised, sealed and audited on its own — under
// bounded concurrency per node, per participant and per provider, so that a
// batch never starves interactive traffic. GET /v1/batches/{id} reports
// progress, GET /v1/batches/{id}/results streams the results as NDJSON
// (each line with its status, reason, exchange id, seal and receipt), and
// results are erased after a retention period (then 410).
//
// Durability: items are claimed with a lease (PostgreSQL: FOR UPDATE SKIP
// LOCKED), and an item's result is written in the same transaction that
// ends its claim, only if the claim still holds. An item whose node died
// while running it is claimed again once its lease expires and run again:
// the first run's exchange record (if it got that far) stays in the audit
// log, marked by the item's correlation id, but its result was never
// stored, so nothing of it was released; exactly one result per item is.
// See docs/batch.md.
package batch

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/internal/httpjson"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// Defaults of Config.
const (
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultWorkers        = 8 // items in flight on a node
	DefaultPerParticipant = 4 // items in flight per submitting participant, on a node
	DefaultPerProvider    = 4 // items in flight per provider, on a node
	DefaultLease          = time.Minute
	DefaultPoll           = time.Second
	DefaultExpireEvery    = time.Hour
	heldTimeout           = time.Hour // held batches older than this are purged
)

// ContentType is the media type of submissions and results.
const ContentType = "application/x-ndjson"

// Pipeline runs one exchange (exchange.Pipeline).
type Pipeline interface {
	Do(ctx context.Context, req exchange.Request) (exchange.Result, error)
}

// Directory is what the workers need of the registers.
type Directory interface {
	Service(id string) (*crossroads.Service, bool)
}

// Options are the batch service's bounds; zero values take the defaults.
type Options struct {
	// MaxItems and MaxBytes bound a submission (defaults DefaultMaxItems,
	// DefaultMaxBytes).
	MaxItems int
	MaxBytes int64
	// Retention is how long results are kept after a batch is done
	// (default 7 days); ExpireEvery how often the erasure job runs
	// (default hourly).
	Retention   time.Duration
	ExpireEvery time.Duration
	// Workers, PerParticipant and PerProvider bound the items in flight on
	// this node: in all, of one submitter, towards one provider (defaults
	// 8, 4, 4).
	Workers, PerParticipant, PerProvider int
	// Lease is how long a claimed item is this node's (default 1 min; half
	// of it must exceed the provider and audit timeouts: an item's exchange
	// starts only while half its lease remains); Poll how often the workers
	// look for items submitted elsewhere (default 1 s).
	Lease, Poll time.Duration
}

// Config wires the service.
type Config struct {
	Store     Store
	Pipeline  Pipeline
	Directory Directory
	Audit     crossroads.AuditLog
	Logger    *slog.Logger
	Now       func() time.Time
	Options
}

// Service is the batch API and its workers.
type Service struct {
	cfg   Config
	wake  chan struct{}
	freed chan struct{}

	mu        sync.Mutex
	all       int            // items in flight on this node
	byPart    map[string]int // per submitting participant
	providers map[string]chan struct{}
	certs     sync.Map // batch id → *x509.Certificate
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = DefaultMaxItems
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = DefaultExpireEvery
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PerParticipant <= 0 {
		cfg.PerParticipant = DefaultPerParticipant
	}
	if cfg.PerProvider <= 0 {
		cfg.PerProvider = DefaultPerProvider
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		byPart: map[string]int{}, providers: map[string]chan struct{}{}}
}

// Close closes the store.
func (s *Service) Close() error { return s.cfg.Store.Close() }

// Routes are the batch API's routes.
func (s *Service) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "POST", Pattern: "/v1/batches", Access: httpapi.Participant, Handler: http.HandlerFunc(s.submit)},
		{Method: "GET", Pattern: "/v1/batches/{id}", Access: httpapi.Participant, Handler: http.HandlerFunc(s.status)},
		{Method: "GET", Pattern: "/v1/batches/{id}/results", Access: httpapi.Participant, Handler: http.HandlerFunc(s.results)},
	}
}

// Progress is the answer of POST /v1/batches and GET /v1/batches/{id}.
type Progress struct {
	crossroads.Batch
	Results string `json:"results"` // where the results are
}

func progress(b crossroads.Batch) Progress {
	return Progress{Batch: b, Results: "/v1/batches/" + b.ID + "/results"}
}

func (s *Service) submit(w http.ResponseWriter, r *http.Request) {
	caller, _ := crossroads.CallerFrom(r.Context())
	if caller == nil || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		problem.Error(w, http.StatusUnauthorized, crossroads.ReasonCertificateError, "a client certificate of the network CA is required")
		return
	}
	if mt := mediaType(r.Header.Get("Content-Type")); mt != ContentType && mt != "application/jsonl" {
		problem.Error(w, http.StatusUnsupportedMediaType, crossroads.ReasonUnsupportedMedia, "a batch is submitted as application/x-ndjson: one item per line")
		return
	}
	user := r.Header.Get(exchange.HeaderUser)
	if len(user) > maxText || hasControl(user) {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidHeader, "Crossroads-User must be at most 128 printable characters")
		return
	}
	if r.ContentLength > s.cfg.MaxBytes {
		problem.Error(w, http.StatusRequestEntityTooLarge, crossroads.ReasonBatchTooLarge, "a batch is at most "+strconv.FormatInt(s.cfg.MaxBytes, 10)+" bytes")
		return
	}
	h := sha256.New()
	items, err := Parse(io.TeeReader(r.Body, h), s.cfg.MaxItems, s.cfg.MaxBytes)
	var pe *ParseError
	if errors.As(err, &pe) {
		problem.Write(w, pe.Problem())
		return
	} else if err != nil {
		problem.Error(w, http.StatusBadRequest, crossroads.ReasonBatchInvalidItem, "the submission could not be read")
		return
	}
	raw := make([][]byte, len(items))
	for i := range items {
		if raw[i], err = json.Marshal(items[i]); err != nil {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonBatchInvalidItem, "an item could not be stored")
			return
		}
	}
	leaf := r.TLS.VerifiedChains[0][0]
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	b := crossroads.Batch{ID: id.String(), Participant: caller.ID, User: user, Serial: pki.SerialHex(leaf), Certificate: leaf.Raw,
		Created: s.cfg.Now().UTC(), Retention: s.cfg.Retention, Total: len(items)}
	ctx := r.Context()
	if err := s.cfg.Store.Create(ctx, b, raw); err != nil {
		s.cfg.Logger.Error("store batch", "participant", caller.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonBatchUnavailable, "the batch could not be stored; nothing was accepted")
		return
	}
	// No record, no act: the submission is recorded before the batch may run.
	rec, err := audit.Event(crossroads.RecordBatch, "submit", caller.ID, user, map[string]any{
		"batch": b.ID, "items": len(items), "sha256": hex.EncodeToString(h.Sum(nil)), "serial": b.Serial,
	})
	var receipt crossroads.Receipt
	if err == nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		receipt, err = s.cfg.Audit.Commit(actx, rec)
		cancel()
	}
	if err != nil {
		s.cfg.Logger.Error("record batch submission; refusing", "batch", b.ID, "err", err)
		if derr := s.cfg.Store.Discard(context.WithoutCancel(ctx), b.ID); derr != nil {
			s.cfg.Logger.Warn("discard held batch (purged later)", "batch", b.ID, "err", derr)
		}
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the submission could not be recorded; nothing was accepted")
		return
	}
	if err := s.cfg.Store.Activate(context.WithoutCancel(ctx), b.ID); err != nil {
		s.cfg.Logger.Error("activate batch", "batch", b.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonBatchUnavailable, "the batch could not be stored; nothing was accepted")
		return
	}
	s.poke()
	b.State = crossroads.BatchRunning
	w.Header().Set("Location", "/v1/batches/"+b.ID)
	w.Header().Set(exchange.HeaderReceipt, receipt.Token)
	writeJSON(w, http.StatusAccepted, progress(b))
}

// readable returns the batch if the caller may read it: its submitter, an
// operator or an auditor (full: the submitter, who alone gets the bodies).
func (s *Service) readable(w http.ResponseWriter, r *http.Request) (b crossroads.Batch, caller *crossroads.Participant, full, ok bool) {
	caller, _ = crossroads.CallerFrom(r.Context())
	id := r.PathValue("id")
	if caller == nil || !validUUID(id) {
		problem.Error(w, http.StatusNotFound, crossroads.ReasonBatchNotFound, "no such batch")
		return b, nil, false, false
	}
	b, err := s.cfg.Store.Batch(r.Context(), id)
	switch {
	case errors.Is(err, crossroads.ErrNotFound):
		problem.Error(w, http.StatusNotFound, crossroads.ReasonBatchNotFound, "no such batch")
		return b, nil, false, false
	case err != nil:
		s.cfg.Logger.Error("read batch", "batch", id, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonBatchUnavailable, "the batch store cannot be read")
		return b, nil, false, false
	}
	full = b.Participant == caller.ID
	auditor := caller.Kind == crossroads.KindOperator || caller.Kind == crossroads.KindAuditor
	if b.State == crossroads.BatchHeld || (!full && !auditor) {
		// Another participant's batch is not even said to exist.
		problem.Error(w, http.StatusNotFound, crossroads.ReasonBatchNotFound, "no such batch")
		return b, nil, false, false
	}
	if b.State == crossroads.BatchExpired {
		problem.Error(w, http.StatusGone, crossroads.ReasonBatchExpired, "the batch's results were erased after the retention period")
		return b, nil, false, false
	}
	return b, caller, full, true
}

func (s *Service) status(w http.ResponseWriter, r *http.Request) {
	b, _, _, ok := s.readable(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, progress(b))
}

// results streams the results so far as NDJSON; ?after=N resumes after
// item N. The read is recorded first (the lines carry personal data).
func (s *Service) results(w http.ResponseWriter, r *http.Request) {
	b, caller, full, ok := s.readable(w, r)
	if !ok {
		return
	}
	after := 0
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problem.Error(w, http.StatusBadRequest, crossroads.ReasonInvalidParameter, "after must be a non-negative item number")
			return
		}
		after = n
	}
	user := r.Header.Get(exchange.HeaderUser)
	if len(user) > maxText || hasControl(user) {
		user = ""
	}
	rec, err := audit.Event(crossroads.RecordBatch, "fetch", caller.ID, user, map[string]any{
		"batch": b.ID, "participant": b.Participant, "after": after, "done": b.Done, "bodies": full,
	})
	if err == nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		_, err = s.cfg.Audit.Commit(actx, rec)
		cancel()
	}
	if err != nil {
		s.cfg.Logger.Error("record batch fetch; refusing", "batch", b.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the read could not be recorded; nothing was released")
		return
	}
	page, err := s.cfg.Store.Results(r.Context(), b.ID, after, 500)
	if err != nil {
		s.cfg.Logger.Error("read batch results", "batch", b.ID, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonBatchUnavailable, "the batch store cannot be read")
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Crossroads-Batch-State", b.State)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // bodies are the sealed bytes, unchanged
	for len(page) > 0 {
		for i := range page {
			line := Line(page[i], full)
			if err := enc.Encode(&line); err != nil {
				return // the client went away
			}
			after = page[i].Seq
		}
		if page, err = s.cfg.Store.Results(r.Context(), b.ID, after, 500); err != nil {
			s.cfg.Logger.Error("read batch results", "batch", b.ID, "err", err)
			return // the stream ends short: the client sees fewer lines than done
		}
	}
}

// Line is a result as sent: the released bytes as Body when they are
// compact JSON that encoding/json writes unchanged, otherwise BodyBase64,
// so that the seal verifies over exactly what is sent. Without withBody
// (auditors), neither.
func Line(r crossroads.BatchResult, withBody bool) crossroads.BatchResult {
	rel := r.Released
	r.Released, r.Body, r.BodyBase64 = nil, nil, nil
	if !withBody || len(rel) == 0 {
		return r
	}
	if isJSON(r.ContentType) && compactJSON(rel) {
		r.Body = rel
	} else {
		r.BodyBase64 = rel
	}
	return r
}

// Released returns the bytes a result line carries (Body or BodyBase64).
func Released(r crossroads.BatchResult) []byte {
	if len(r.Body) > 0 {
		return r.Body
	}
	return r.BodyBase64
}

func isJSON(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// compactJSON reports whether b is one JSON value that json.Encoder (HTML
// escaping off) writes byte for byte as it is.
func compactJSON(b []byte) bool {
	if !json.Valid(b) {
		return false
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(json.RawMessage(b)); err != nil {
		return false
	}
	return buf.String() == string(b)+"\n"
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// poke wakes the dispatcher.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// certificate returns the submitter's certificate of a batch.
func (s *Service) certificate(ctx context.Context, id string) (*x509.Certificate, error) {
	if v, ok := s.certs.Load(id); ok {
		return v.(*x509.Certificate), nil
	}
	b, err := s.cfg.Store.Batch(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(b.Certificate)
	if err != nil {
		return nil, err
	}
	s.certs.Store(id, c)
	return c, nil
}
