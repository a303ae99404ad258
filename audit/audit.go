// Package audit is the verifiable audit trail of the hub (design §3).
//
// Every exchange's AuditRecord is made durable in an encrypted store before
// the hub releases anything (Trail.Commit, with group commit), then, in the
// background, committed as a leaf of an append-only Merkle log (Tessera,
// POSIX driver) whose checkpoints, tiles and entry bundles can be published
// in the C2SP tlog-tiles / tlog-checkpoint formats and verified with
// standard libraries (see package audit/verify).
//
// Leaves hold no personal data: a version byte, the record time truncated
// to the hour, and the hiding commitment SHA-256(nonce ‖ canonical record).
// Records are stored as AES-256-GCM ciphertext under a data key per day,
// wrapped by a key-encryption key of a KeyProvider; the subject is only
// searchable through a keyed blind index.
package audit

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrClosed is returned by Commit after Close.
var ErrClosed = errors.New("audit: trail closed")

// ErrNotIntegrated is returned for a record not yet covered by a published
// checkpoint.
var ErrNotIntegrated = errors.New("audit: record not yet in a published checkpoint")

// Config configures a Trail.
type Config struct {
	// Dir is the data directory: the Merkle log lives in Dir/log, the
	// default key files in Dir/audit-keys and Dir/audit-note.key.
	Dir string
	// Store persists the records (required).
	Store Store
	// KeyProvider holds the KEKs and the blind-index key (the hub's:
	// keys.Keyring). Default: FileKeys in Dir/audit-keys, plaintext, for
	// tests and tools over test data only.
	KeyProvider KeyProvider
	// NoteSigner is the note private key ("PRIVATE+KEY+origin+…", Ed25519)
	// that signs checkpoints and receipts; its name is the log origin.
	// Default: Dir/audit-note.key, created when absent.
	NoteSigner string
	// Origin names a generated note key (default DefaultOrigin).
	Origin string
	// MaxMergeDelay is the promised delay within which a committed record is
	// in a published checkpoint (default 2 s).
	MaxMergeDelay time.Duration
	// MaxBatch bounds the records written in one store transaction
	// (default 4096).
	MaxBatch int
	// Logger receives operational messages (never personal data).
	Logger *slog.Logger
	// Witnesses cosign the log's checkpoints (C2SP tlog-witness). With
	// witnesses, only checkpoints cosigned by Quorum of them are published
	// (at /v1/log/checkpoint, by Checkpoint and in proofs).
	Witnesses []WitnessConfig
	// Quorum is the number of distinct witnesses whose cosignatures a
	// checkpoint needs; 0 means all of them.
	Quorum int
	// WitnessHTTP is the client for the witnesses (default: 10 s timeout).
	WitnessHTTP *http.Client

	// Log is the Merkle log's storage (default: Tessera's POSIX driver in
	// Dir/log).
	Log *LogStorage
	// Sealer, when set, signs the seals that CommitSealed's callers ask
	// for, once per group commit (the hub's pki.SealSigner): at
	// saturation a dozen records share a commit, so a dozen seals share
	// one ES256 signature.
	Sealer Sealer

	// Lease, when set, elects the one node that integrates records into a
	// log shared by several nodes (Log must have a Reader): a node
	// integrates only while it holds the lease, and stops as soon as it
	// loses it; every node serves the log. Without a Lease this trail is
	// the log's only writer.
	Lease Lease

	// test hooks
	noIntegrate bool              // never integrate into the log
	beforeMark  func() error      // called between integration and marking
	tamperProof func([]tlog.Hash) // alters consistency proofs sent to witnesses
	tempMinAge  time.Duration     // age of Tessera's orphan temporary files removed (default tempMinAge)
}

// Trail is the audit trail. It implements crossroads.AuditLog.
type Trail struct {
	cfg      Config
	store    Store
	keys     KeyProvider
	indexKey []byte
	signer   note.Signer
	vkey     string
	verifier note.Verifier
	log      *slog.Logger

	dkMu sync.RWMutex
	dks  map[string]cipher.AEAD

	// The group commit (see lead): mu guards closed, queue and busy.
	mu      sync.Mutex
	closed  bool
	queue   []*pending     // records waiting for the next leader
	busy    bool           // a leader is writing
	leaders sync.WaitGroup // the leader at work, if any
	full    chan struct{}  // the queue reached lingerUntil
	// The writing leader's own state: one leader writes at a time.
	rows     []*Row
	rate     float64 // records/s, measured over windows of 100 ms
	window   time.Time
	inWindow int
	linger   *time.Timer

	lg  *merkleLog
	wit *witnessing // nil without witnesses

	batches, written atomic.Int64 // group commits and the records they wrote
	commitLatency    latencyHist  // of the store's group-commit writes
}

// Stats are counters of the trail's group commits.
type Stats struct {
	Batches int64 // store transactions
	Records int64 // records made durable
	// Commit is the distribution of the store's group-commit durations
	// (transaction and fsync), since the trail opened.
	Commit Latency
}

// Stats returns the group-commit counters (for metrics).
func (t *Trail) Stats() Stats {
	return Stats{Batches: t.batches.Load(), Records: t.written.Load(), Commit: t.commitLatency.snapshot()}
}

var _ crossroads.AuditLog = (*Trail)(nil)

type pending struct {
	row     *Row
	receipt string // set by the writer once the row is durable
	done    chan error

	seal    *pki.SealClaims // CommitSealed: the seal asked for
	sealed  string          // and made, once the row is durable
	sealErr error
}

// Sealer signs a group's seals with one signature (pki.SealSigner).
type Sealer interface {
	SealGroup(claims []*pki.SealClaims) ([]string, error)
}

// Open opens the trail: keys, store, Merkle log (reconciling it with the
// store after a crash) and the background writer and integrator.
func Open(ctx context.Context, cfg Config) (*Trail, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: Config.Store is required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("audit: Config.Dir is required")
	}
	if cfg.MaxMergeDelay <= 0 {
		cfg.MaxMergeDelay = 2 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if lo := cfg.Log; lo != nil && lo.MinCheckpointInterval > 0 {
		// A checkpoint can lag an integration by up to two intervals (the
		// driver skips a publication that comes too soon and retries at
		// its next tick): promise no less than that, with a margin.
		if least := 3 * lo.MinCheckpointInterval; cfg.MaxMergeDelay < least {
			cfg.Logger.Warn("audit: max merge delay raised to what the log storage can keep", "asked", cfg.MaxMergeDelay.String(), "promised", least.String())
			cfg.MaxMergeDelay = least
		}
	}
	if cfg.tempMinAge == 0 {
		cfg.tempMinAge = tempMinAge
	}
	t := &Trail{
		cfg:    cfg,
		store:  cfg.Store,
		keys:   cfg.KeyProvider,
		log:    cfg.Logger.With("component", "audit"),
		dks:    map[string]cipher.AEAD{},
		full:   make(chan struct{}, 1),
		window: time.Now(),
	}
	if t.keys == nil {
		fk, err := OpenFileKeys(filepath.Join(cfg.Dir, "audit-keys"))
		if err != nil {
			return nil, err
		}
		t.keys = fk
	}
	ik, err := t.keys.IndexKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: index key: %w", err)
	}
	t.indexKey = ik
	skey := cfg.NoteSigner
	if skey == "" {
		if skey, err = LoadOrCreateNoteKey(cfg.Dir, cfg.Origin); err != nil {
			return nil, err
		}
	}
	if t.signer, err = note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("audit: note signer: %w", err)
	}
	if t.vkey, err = VerifierKey(skey); err != nil {
		return nil, err
	}
	if t.verifier, err = note.NewVerifier(t.vkey); err != nil {
		return nil, fmt.Errorf("audit: note verifier: %w", err)
	}
	if len(cfg.Witnesses) > 0 {
		if t.wit, err = newWitnessing(t); err != nil {
			return nil, err
		}
	}
	if t.lg, err = openLog(ctx, t); err != nil {
		return nil, err
	}
	if t.wit != nil {
		go t.wit.run(max(cfg.MaxMergeDelay/4, 50*time.Millisecond))
	}
	t.linger = time.NewTimer(time.Hour)
	t.linger.Stop()
	return t, nil
}

// Origin returns the log origin (the note key name).
func (t *Trail) Origin() string { return t.signer.Name() }

// VerifierKey returns the note verifier key of checkpoints and receipts.
func (t *Trail) VerifierKey() string { return t.vkey }

// Commit makes rec durable and returns a signed receipt promising its
// inclusion in the log within MaxMergeDelay. It returns only once the
// record is durable; on error nothing may be released. A zero rec.Time is
// taken as now.
func (t *Trail) Commit(ctx context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	r, _, err := t.commit(ctx, rec, nil)
	return r, err
}

// CommitSealed is Commit, and also returns the seal of claims (the
// response the record's exchange releases), signed by Config.Sealer
// together with the other seals of the record's group commit. If the seal
// cannot be signed, the record is durable, the receipt is returned and err
// is crossroads.ErrNotSealed.
func (t *Trail) CommitSealed(ctx context.Context, rec *crossroads.AuditRecord, claims *pki.SealClaims) (crossroads.Receipt, string, error) {
	if t.cfg.Sealer == nil {
		return crossroads.Receipt{}, "", errors.New("audit: CommitSealed needs Config.Sealer")
	}
	return t.commit(ctx, rec, claims)
}

// SealsInCommit tells whether CommitSealed signs seals (Config.Sealer).
func (t *Trail) SealsInCommit() bool { return t.cfg.Sealer != nil }

func (t *Trail) commit(ctx context.Context, rec *crossroads.AuditRecord, seal *pki.SealClaims) (crossroads.Receipt, string, error) {
	if rec == nil || rec.ExchangeID == "" || rec.Requester == "" || rec.Outcome == "" {
		return crossroads.Receipt{}, "", fmt.Errorf("audit: record needs exchange id, requester and outcome: %w", crossroads.ErrInvalid)
	}
	r := *rec
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	row, err := t.seal(ctx, &r)
	if err != nil {
		return crossroads.Receipt{}, "", err
	}
	p := &pending{row: row, done: make(chan error, 1), seal: seal}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return crossroads.Receipt{}, "", ErrClosed
	}
	t.queue = append(t.queue, p)
	if t.busy {
		if len(t.queue) == lingerUntil {
			select {
			case t.full <- struct{}{}:
			default:
			}
		}
		t.mu.Unlock()
		select {
		case err = <-p.done:
		case <-ctx.Done():
			return crossroads.Receipt{}, "", fmt.Errorf("audit: commit: %w", ctx.Err())
		}
	} else {
		// No commit is being written: this caller writes its own record
		// (and whatever joins it), with no goroutine to wake either way.
		t.busy = true
		t.leaders.Add(1)
		t.mu.Unlock()
		t.lead(true)
		err = <-p.done
	}
	if err != nil {
		return crossroads.Receipt{}, "", err
	}
	if row.Seq == 0 {
		return crossroads.Receipt{}, "", fmt.Errorf("audit: exchange already recorded: %w", crossroads.ErrConflict)
	}
	receipt := crossroads.Receipt{ExchangeID: r.ExchangeID, Token: p.receipt}
	if p.sealErr != nil {
		return receipt, "", fmt.Errorf("audit: %w: %w", crossroads.ErrNotSealed, p.sealErr)
	}
	return receipt, p.sealed, nil
}

// seal turns a record into a storable row: canonical bytes, commitment,
// leaf, ciphertext and blind index.
func (t *Trail) seal(ctx context.Context, r *crossroads.AuditRecord) (*Row, error) {
	canon, err := Canonical(r)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	c := Commitment(nonce, canon)
	per := period(r.Time)
	aead, err := t.dataKey(ctx, per)
	if err != nil {
		return nil, err
	}
	ct := make([]byte, aead.NonceSize(), aead.NonceSize()+len(canon)+aead.Overhead())
	rand.Read(ct)
	ct = aead.Seal(ct, ct, canon, recordAAD(r.ExchangeID))
	return &Row{
		ExchangeID:   r.ExchangeID,
		Time:         r.Time,
		Requester:    r.Requester,
		Provider:     r.Provider,
		Service:      r.Service,
		Purpose:      r.Purpose,
		Outcome:      r.Outcome,
		Reason:       string(r.Reason),
		SubjectIndex: blindIndex(t.indexKey, subjectKind(r), r.Subject),
		Period:       per,
		Nonce:        nonce,
		Ciphertext:   ct,
		Leaf:         Leaf(r.Time, c),
		Index:        -1,
		Kind:         r.Kind,
		SubjectKind:  subjectKind(r),
		Log:          t.signer.Name(),
	}, nil
}

// subjectKind is the kind of a record's subject: "" without a subject,
// person when the record does not say.
func subjectKind(r *crossroads.AuditRecord) string {
	switch {
	case r.Subject == "":
		return ""
	case r.SubjectKind == "":
		return crossroads.SubjectPerson
	default:
		return r.SubjectKind
	}
}

// dataKey returns the AEAD of a period's data key, creating, wrapping and
// storing the key on first use.
func (t *Trail) dataKey(ctx context.Context, per string) (cipher.AEAD, error) {
	t.dkMu.RLock()
	a, ok := t.dks[per]
	t.dkMu.RUnlock()
	if ok {
		return a, nil
	}
	t.dkMu.Lock()
	defer t.dkMu.Unlock()
	if a, ok := t.dks[per]; ok {
		return a, nil
	}
	dk, err := t.store.Key(ctx, per)
	if errors.Is(err, crossroads.ErrNotFound) {
		dk, err = t.newDataKey(ctx, per)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: data key %s: %w", per, err)
	}
	raw, err := t.keys.UnwrapDataKey(ctx, dk.KEKID, per, dk.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("audit: unwrap data key %s: %w", per, err)
	}
	defer clear(raw)
	a, err = newGCM(raw)
	if err != nil {
		return nil, err
	}
	t.dks[per] = a
	return a, nil
}

// newDataKey creates, wraps under the period's KEK and stores the data key
// of a period. When another node stored one first, that one is returned
// and a KEK created here for nothing is destroyed.
func (t *Trail) newDataKey(ctx context.Context, per string) (DataKey, error) {
	kek, created, err := t.periodKEK(ctx, per)
	if err != nil {
		return DataKey{}, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw)
	wrapped, err := t.keys.WrapDataKey(ctx, kek, per, raw)
	if err != nil {
		return DataKey{}, fmt.Errorf("wrap data key: %w", err)
	}
	dk, err := t.store.PutKey(ctx, DataKey{Period: per, KEKID: kek, Wrapped: wrapped})
	if err == nil && created && dk.KEKID != kek {
		if derr := t.keys.DestroyKEK(ctx, kek); derr != nil {
			t.log.Warn("audit: destroy an unused KEK", "period", per, "err", derr)
		}
	}
	return dk, err
}

// periodKEK returns a KEK of period, creating one when the provider has
// none; created tells which.
func (t *Trail) periodKEK(ctx context.Context, per string) (id string, created bool, err error) {
	keks, err := t.keys.KEKs(ctx)
	if err != nil {
		return "", false, fmt.Errorf("list KEKs: %w", err)
	}
	for _, k := range keks {
		if k.Period == per {
			return k.ID, false, nil
		}
	}
	id, err = t.keys.NewKEK(ctx, per)
	if err != nil {
		return "", false, fmt.Errorf("create KEK: %w", err)
	}
	return id, true, nil
}

// lead writes one group commit: every queued record (up to MaxBatch) in
// one store transaction, then wakes their callers. The leader is the
// caller that found no commit in progress (at ordinary load, each caller
// writes its own record, and nothing waits on another goroutine); records
// arriving meanwhile queue, and when the leader is done a new goroutine
// leads them, so no caller waits longer than its own commit and the one
// before it.
func (t *Trail) lead(fresh bool) {
	defer t.leaders.Done()
	t.mu.Lock()
	batch := t.take(make([]*pending, 0, min(len(t.queue), t.cfg.MaxBatch)+lingerUntil))
	t.mu.Unlock()
	// Under load, a leader that found the writer idle waits a moment for
	// more records: a transaction costs nearly the same for 1 record as
	// for 16 (one fsync, the same index pages), so fuller batches cut the
	// cost per record. A leader for records that queued during the
	// previous commit waits only from lingerRateAll (saturation, where
	// CPU is what limits): they have waited already. Below lingerRate
	// there is no wait, and no added latency. The rate,
	// measured over windows of 100 ms, tells load; it does not depend on
	// lingering (batch sizes would: waiting makes them grow).
	if until := min(lingerUntil, t.cfg.MaxBatch); (t.rate >= lingerRate && fresh || t.rate >= lingerRateAll) && len(batch) < until {
		select {
		case <-t.full: // a stale signal
		default:
		}
		t.linger.Reset(lingerFor)
		select {
		case <-t.full:
		case <-t.linger.C:
		}
		if !t.linger.Stop() {
			select {
			case <-t.linger.C:
			default:
			}
		}
		t.mu.Lock()
		batch = t.take(batch)
		t.mu.Unlock()
	}
	t.inWindow += len(batch)
	if d := time.Since(t.window); d >= 100*time.Millisecond {
		t.rate = float64(t.inWindow) / d.Seconds()
		t.window, t.inWindow = time.Now(), 0
	}
	t.rows = t.rows[:0]
	for _, p := range batch {
		t.rows = append(t.rows, p.row)
	}
	began := time.Now()
	err := t.store.InsertBatch(context.Background(), t.rows)
	t.commitLatency.observe(time.Since(began))
	n := len(t.rows)
	clear(t.rows)
	// The store is free: whatever queued meanwhile gets its leader now,
	// while this one signs its batch's receipts and seals.
	t.mu.Lock()
	if len(t.queue) > 0 {
		t.leaders.Add(1)
		go t.lead(false)
	} else {
		t.busy = false
	}
	t.mu.Unlock()
	if err != nil {
		t.log.Error("audit store write failed", "records", n, "err", err)
		err = fmt.Errorf("audit: store: %w", err)
	}
	if err == nil {
		t.batches.Add(1)
		t.written.Add(int64(n))
		t.receipts(batch)
		t.seals(batch)
		t.lg.added(n)
	}
	for _, p := range batch {
		p.done <- err
	}
}

// Group-commit lingering (see lead). A single-record transaction costs
// ≈ 470 µs on this project's machine (≈ 300 µs of fsync, the rest SQLite
// and a write system call per page), nearly what 16 records cost. At
// 1,000 records/s without lingering each record paid one of its own (1.1
// per commit, 1.2 ms of CPU per exchange for the whole benchmark
// process); when every leader waited up to 1.5 ms from 500/s it was 3.2
// per commit and 0.84 ms, but the median exchange took 1.5 ms longer.
// Waiting only for a leader that found the writer idle keeps most of the
// gain (1.7 per commit, 0.9 ms) for a third of the added median; at
// saturation (from 2,000/s) every leader waits, as CPU is what limits
// there (docs/performance.md). Below 500/s there is no wait at all.
const (
	lingerRate    = 500                     // records/s from which a leader that found the writer idle waits
	lingerRateAll = 2000                    // and from which every leader does
	lingerUntil   = 32                      // stop waiting at this many records
	lingerFor     = 1500 * time.Microsecond // and after this long at most
)

// take moves queued records to batch, up to MaxBatch; t.mu is held.
func (t *Trail) take(batch []*pending) []*pending {
	n := min(len(t.queue), t.cfg.MaxBatch-len(batch))
	batch = append(batch, t.queue[:n]...)
	rest := copy(t.queue, t.queue[n:])
	clear(t.queue[rest:])
	t.queue = t.queue[:rest]
	return batch
}

// seals signs, once, the seals asked for in a durable batch.
func (t *Trail) seals(batch []*pending) {
	var claims []*pki.SealClaims
	var owners []*pending
	for _, p := range batch {
		if p.seal != nil && p.row.Seq != 0 {
			claims = append(claims, p.seal)
			owners = append(owners, p)
		}
	}
	if len(claims) == 0 {
		return
	}
	seals, err := t.cfg.Sealer.SealGroup(claims)
	if err != nil {
		t.log.Error("audit: seals of a group commit", "records", len(claims), "err", err)
	}
	for i, p := range owners {
		if err != nil {
			p.sealErr = err
			continue
		}
		p.sealed = seals[i]
	}
}

// receipts signs, once, the receipts of a durable batch (see receipt.go).
// The records are durable whatever happens here: a receipt is a courtesy,
// so a failure is logged and the tokens stay empty.
func (t *Trail) receipts(batch []*pending) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	mmd := int64((t.cfg.MaxMergeDelay + time.Second - 1) / time.Second)
	claims := make([]*ReceiptClaims, 0, len(batch))
	owners := make([]*pending, 0, len(batch))
	for _, p := range batch {
		if p.row.Seq == 0 {
			continue // already recorded: Commit reports the conflict
		}
		lh := LeafHash(p.row.Leaf)
		claims = append(claims, &ReceiptClaims{Version: 2, Log: t.signer.Name(), ExchangeID: p.row.ExchangeID, LeafHash: lh[:], Time: now, MaxMergeDelay: mmd})
		owners = append(owners, p)
	}
	if len(claims) == 0 {
		return
	}
	tokens, err := signReceipts(t.signer, claims)
	if err != nil {
		t.log.Error("audit receipts", "records", len(claims), "err", err)
		return
	}
	for i, p := range owners {
		p.receipt = tokens[i]
	}
}

// Close stops accepting records, waits for the queued ones to be written,
// integrates what is durable into the log and publishes a checkpoint.
func (t *Trail) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.leaders.Wait() // the queued records are written
	err := t.lg.close(ctx)
	if t.wit != nil {
		t.wit.close(ctx)
	}
	return err
}

// decrypt returns the record of a row.
func (t *Trail) decrypt(ctx context.Context, row *Row) (*crossroads.AuditRecord, []byte, error) {
	if row.Erased() {
		return nil, nil, fmt.Errorf("audit: exchange %s: %w", row.ExchangeID, ErrErased)
	}
	aead, err := t.dataKey(ctx, row.Period)
	if err != nil {
		return nil, nil, err
	}
	ns := aead.NonceSize()
	if len(row.Ciphertext) < ns+aead.Overhead() {
		return nil, nil, errors.New("audit: ciphertext too short")
	}
	canon, err := aead.Open(nil, row.Ciphertext[:ns], row.Ciphertext[ns:], recordAAD(row.ExchangeID))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: decrypt record: %w", err)
	}
	var rec crossroads.AuditRecord
	if err := json.Unmarshal(canon, &rec); err != nil {
		return nil, nil, fmt.Errorf("audit: decode record: %w", err)
	}
	return &rec, canon, nil
}

// Rewrap rotates the key-encryption keys: every period's data key is
// rewrapped under a new KEK of its period and the old KEKs are destroyed.
// It returns how many data keys it rewrapped.
func (t *Trail) Rewrap(ctx context.Context) (int, error) {
	return t.rewrap(ctx, t.keys, func(DataKey) bool { return true })
}

// MigrateKeys moves the data keys wrapped by another provider (from: the
// plaintext FileKeys of earlier versions) to KEKs of the trail's own
// provider, and returns how many it moved. The KEKs of from are left to
// the caller to remove.
func (t *Trail) MigrateKeys(ctx context.Context, from KeyProvider) (int, error) {
	keks, err := t.keys.KEKs(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: migrate keys: %w", err)
	}
	own := map[string]bool{}
	for _, k := range keks {
		own[k.ID] = true
	}
	return t.rewrap(ctx, from, func(dk DataKey) bool { return !own[dk.KEKID] })
}

// rewrap rewraps the data keys selected by which, unwrapping them through
// from, under new KEKs of the trail's provider, then destroys (in from) the
// KEKs no longer used.
func (t *Trail) rewrap(ctx context.Context, from KeyProvider, which func(DataKey) bool) (int, error) {
	dks, err := t.store.Keys(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: rewrap: %w", err)
	}
	t.dkMu.Lock() // no data key is created meanwhile
	defer t.dkMu.Unlock()
	n := 0
	retired := map[string]bool{}
	for _, dk := range dks {
		if !which(dk) {
			continue
		}
		raw, err := from.UnwrapDataKey(ctx, dk.KEKID, dk.Period, dk.Wrapped)
		if err != nil {
			return n, fmt.Errorf("audit: rewrap %s: %w", dk.Period, err)
		}
		kek, err := t.keys.NewKEK(ctx, dk.Period)
		if err != nil {
			clear(raw)
			return n, fmt.Errorf("audit: rewrap %s: %w", dk.Period, err)
		}
		wrapped, err := t.keys.WrapDataKey(ctx, kek, dk.Period, raw)
		clear(raw)
		if err != nil {
			return n, fmt.Errorf("audit: rewrap %s: %w", dk.Period, err)
		}
		if err := t.store.ReplaceKey(ctx, DataKey{Period: dk.Period, KEKID: kek, Wrapped: wrapped}); err != nil {
			return n, fmt.Errorf("audit: rewrap %s: %w", dk.Period, err)
		}
		retired[dk.KEKID] = true
		n++
	}
	for _, dk := range dks { // a KEK of an earlier version may serve several periods
		if !which(dk) {
			delete(retired, dk.KEKID)
		}
	}
	for id := range retired {
		if err := from.DestroyKEK(ctx, id); err != nil {
			return n, fmt.Errorf("audit: rewrap: destroy old KEK: %w", err)
		}
	}
	return n, nil
}

// tesseraEntry builds the log entry of a row.
func tesseraEntry(row *Row) *tessera.Entry { return tessera.NewEntry(row.Leaf) }
