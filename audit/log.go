package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/posix"
)

// integrateBatch bounds the rows added to the log in one pass.
const integrateBatch = 4096

// markChunk bounds the log indexes recorded in one store transaction.
const markChunk = 64

// kickAfter is how many newly durable records start an integration pass
// before the next tick. Between ticks (a quarter of the merge delay)
// records accumulate, so that each pass, with its fsyncs in the log and in
// the store, carries many leaves: integration cost per record falls as
// load rises, and the exchange path never waits for it.
const kickAfter = integrateBatch / 2

// merkleLog integrates durable records into the Tessera log, in the
// background, and records each one's index in the store. With a Lease it
// integrates only while it holds the lease (see lead).
type merkleLog struct {
	t        *Trail
	storage  LogStorage
	appender *tessera.Appender // nil while another node integrates
	shutdown func(context.Context) error
	reader   tessera.LogReader
	cancel   context.CancelFunc
	ctx      context.Context
	leading  atomic.Bool // this node is integrating

	lastClean time.Time // of orphan temporary files

	pending atomic.Int64  // records made durable since the last pass began
	kick    chan struct{} // enough records are waiting
	stop    chan struct{} // Close: a last pass, then return
	done    chan struct{}
}

func (l *merkleLog) appendOptions() *tessera.AppendOptions {
	ci := max(l.t.cfg.MaxMergeDelay/4, 100*time.Millisecond, l.storage.MinCheckpointInterval)
	return tessera.NewAppendOptions().
		WithCheckpointSigner(l.t.signer).
		WithBatching(integrateBatch, 20*time.Millisecond).
		WithCheckpointInterval(ci).
		WithCheckpointRepublishInterval(max(ci, time.Minute)).
		WithPushback(4 * integrateBatch)
}

func openLog(ctx context.Context, t *Trail) (*merkleLog, error) {
	lctx, cancel := context.WithCancel(context.Background())
	l := &merkleLog{
		t: t, cancel: cancel, ctx: lctx,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if t.cfg.Log != nil {
		l.storage = *t.cfg.Log
	} else {
		dir := filepath.Join(t.cfg.Dir, "log")
		if n, err := cleanLogTemp(dir, t.cfg.tempMinAge); err != nil {
			t.log.Warn("audit log: remove orphan temporary files", "err", err)
		} else if n > 0 {
			t.log.Info("audit log: orphan temporary files removed", "files", n)
		}
		drv, err := posix.New(ctx, posix.Config{Path: dir})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("audit: log storage: %w", err)
		}
		l.storage = LogStorage{Driver: drv}
	}
	if l.storage.Driver == nil {
		cancel()
		return nil, errors.New("audit: Config.Log has no Driver")
	}
	if t.cfg.Lease != nil {
		if l.storage.Reader == nil {
			cancel()
			return nil, errors.New("audit: a shared log (Config.Lease) needs Config.Log.Reader")
		}
		l.reader = l.storage.Reader
		go l.follow()
		return l, nil
	}
	app, shutdown, reader, err := tessera.NewAppender(lctx, l.storage.Driver, l.appendOptions())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("audit: log: %w", err)
	}
	l.appender, l.shutdown, l.reader = app, shutdown, reader
	l.leading.Store(true)
	if err := l.reconcile(ctx); err != nil {
		cancel()
		return nil, err
	}
	go l.run(l.ctx, false)
	return l, nil
}

// follow is the life of a node sharing the log: wait for the lease, lead
// while it is held, and wait again once it is lost.
func (l *merkleLog) follow() {
	defer close(l.done)
	if l.t.cfg.noIntegrate {
		<-l.stop
		return
	}
	actx, stopAcquire := context.WithCancel(l.ctx)
	defer stopAcquire()
	go func() {
		select {
		case <-l.stop:
			stopAcquire()
		case <-actx.Done():
		}
	}()
	for {
		held, release, err := l.t.cfg.Lease.Acquire(actx)
		if err != nil {
			if actx.Err() != nil {
				l.lastPass()
				return
			}
			l.t.log.Warn("audit log: integrator lease", "err", err)
			select {
			case <-l.stop:
				return
			case <-time.After(time.Second):
			}
			continue
		}
		stopped := l.lead(held)
		release()
		if stopped {
			return
		}
	}
}

// lastPass runs when the trail closes without the lease: if no other node
// takes it within a moment (this is the last node to stop), this one
// integrates what is durable and publishes a checkpoint, as Close promises.
func (l *merkleLog) lastPass() {
	ctx, cancel := context.WithTimeout(l.ctx, lastPassWait)
	held, release, err := l.t.cfg.Lease.Acquire(ctx)
	cancel()
	if err != nil {
		return // another node integrates
	}
	l.lead(held) // l.stop is closed: one pass, then return
	release()
}

// lastPassWait bounds how long a closing node waits for the lease.
const lastPassWait = 2 * time.Second

// lead integrates while held is not done; it reports whether the trail
// was closed.
func (l *merkleLog) lead(held context.Context) (stopped bool) {
	l.t.log.Info("audit log: this node integrates the shared log")
	app, shutdown, _, err := tessera.NewAppender(held, l.storage.Driver, l.appendOptions())
	if err != nil {
		l.t.log.Error("audit log: open appender", "err", err)
		select {
		case <-l.stop:
			return true
		case <-held.Done():
			return false
		case <-time.After(time.Second):
			return false
		}
	}
	l.appender, l.shutdown = app, shutdown
	l.leading.Store(true)
	defer func() {
		l.leading.Store(false)
		if held.Err() == nil { // closing: publish a checkpoint covering everything added
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := shutdown(sctx); err != nil {
				l.t.log.Warn("audit log: appender shutdown", "err", err)
			}
			cancel()
		}
		l.appender, l.shutdown = nil, nil
	}()
	stopped = l.run(held, true)
	if !stopped {
		l.t.log.Warn("audit log: integrator lease lost; this node stops integrating")
	}
	return stopped
}

// barrier waits for the writes of a previous integrator to end, then
// reconciles.
func (l *merkleLog) barrier(ctx context.Context) error {
	if b := l.storage.Barrier; b != nil {
		if err := b(ctx); err != nil {
			return fmt.Errorf("audit: log barrier: %w", err)
		}
	}
	return l.reconcile(ctx)
}

// added is told of n newly durable records.
func (l *merkleLog) added(n int) {
	if l.pending.Add(int64(n)) >= kickAfter {
		l.notify()
	}
}

func (l *merkleLog) notify() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run integrates pending rows whenever a batch becomes durable, at least
// every MaxMergeDelay/4, and once more on Close, until ctx is done. Under
// a lease (leased: ctx is done when the lease is lost) it first waits out
// the previous integrator and reconciles; it reports whether the trail
// was closed.
func (l *merkleLog) run(ctx context.Context, leased bool) (stopped bool) {
	var lost <-chan struct{}
	if leased {
		lost = ctx.Done()
	} else {
		defer close(l.done)
		if l.t.cfg.noIntegrate {
			<-l.stop
			return true
		}
	}
	tick := time.NewTicker(max(l.t.cfg.MaxMergeDelay/4, 50*time.Millisecond))
	defer tick.Stop()
	dirty := leased // a new integrator reconciles first
	for first := true; ; first = false {
		last := false
		if !first || !dirty {
			select {
			case <-l.kick:
			case <-tick.C:
			case <-lost:
				return false
			case <-l.stop:
				last = true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		if dirty {
			if err := l.barrier(ctx); err != nil {
				if ctx.Err() != nil {
					return false
				}
				l.t.log.Error("audit log reconcile", "err", err)
				if last {
					return true
				}
				select {
				case <-tick.C:
				case <-lost:
					return false
				case <-l.stop:
					return true
				}
				continue
			}
			dirty = false
		}
		if err := l.integrate(ctx); err != nil {
			if errors.Is(err, errCrash) {
				<-l.stop
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			l.t.log.Error("audit log integration", "err", err)
			dirty = true
			l.cleanTemp()
		}
		if last {
			return true
		}
	}
}

var errCrash = errors.New("simulated crash")

// cleanTemp removes, after a failed pass (a full disk), the temporary files
// Tessera left behind (see logtemp.go), at most once every tempMinAge.
func (l *merkleLog) cleanTemp() {
	if time.Since(l.lastClean) < l.t.cfg.tempMinAge/2 {
		return
	}
	l.lastClean = time.Now()
	n, err := cleanLogTemp(filepath.Join(l.t.cfg.Dir, "log"), l.t.cfg.tempMinAge)
	if err != nil {
		l.t.log.Warn("audit log: remove orphan temporary files", "err", err)
	} else if n > 0 {
		l.t.log.Info("audit log: orphan temporary files removed", "files", n)
	}
}

// integrate adds every row not yet integrated to the log, in Seq order,
// and records the indexes.
func (l *merkleLog) integrate(ctx context.Context) error {
	l.pending.Store(0)
	var after int64
	for {
		rows, err := l.t.store.Rows(ctx, after, integrateBatch, true)
		if err != nil {
			return fmt.Errorf("list unintegrated: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		futures := make([]tessera.IndexFuture, len(rows))
		for i := range rows {
			futures[i] = l.appender.Add(ctx, tesseraEntry(&rows[i]))
		}
		// Tessera's queue drops the futures of a batch it has not flushed
		// when its context ends (a lost lease): wait for them with ctx.
		idxs := make([]tessera.Index, len(futures))
		errs := make([]error, len(futures))
		resolved := make(chan struct{})
		go func() {
			defer close(resolved)
			for i, f := range futures {
				idxs[i], errs[i] = f()
			}
		}()
		select {
		case <-resolved:
		case <-ctx.Done():
			return fmt.Errorf("add to log: %w", ctx.Err())
		}
		marks := make([]Mark, 0, len(rows))
		var ferr error
		for i := range futures {
			if errs[i] != nil {
				ferr = errors.Join(ferr, errs[i])
				continue
			}
			marks = append(marks, Mark{Seq: rows[i].Seq, Index: int64(idxs[i].Index)})
		}
		if h := l.t.cfg.beforeMark; h != nil {
			if err := h(); err != nil {
				return errCrash
			}
		}
		// Marked a chunk per store transaction: the store has one writer,
		// and a group commit waiting behind a pass's 4,096 marks would
		// hold its exchanges for tens of milliseconds (issue 13). Between
		// chunks the writer gets its turn; a crash between chunks leaves
		// rows unmarked, which reconcile recovers from the log.
		for rest := marks; len(rest) > 0; {
			n := min(markChunk, len(rest))
			if err := l.t.store.MarkIntegrated(ctx, rest[:n]); err != nil {
				return fmt.Errorf("record indexes: %w", err)
			}
			rest = rest[n:]
		}
		if ferr != nil {
			return fmt.Errorf("add to log: %w", ferr)
		}
		after = rows[len(rows)-1].Seq
	}
}

// reconcile matches the leaves integrated into the log after the last
// index the store knows (a crash between integration and recording the
// index) back to their records, so that no record is added twice.
func (l *merkleLog) reconcile(ctx context.Context) error {
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("audit: log size: %w", err)
	}
	maxIdx, err := l.t.store.MaxIndex(ctx)
	if err != nil {
		return fmt.Errorf("audit: reconcile: %w", err)
	}
	from := uint64(maxIdx + 1)
	if from >= size {
		return nil
	}
	bySeq := map[[LeafSize]byte]int64{}
	var after int64
	for {
		rows, err := l.t.store.Rows(ctx, after, integrateBatch, true)
		if err != nil {
			return fmt.Errorf("audit: reconcile: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			if len(r.Leaf) == LeafSize {
				bySeq[[LeafSize]byte(r.Leaf)] = r.Seq
			}
		}
		after = rows[len(rows)-1].Seq
	}
	var marks []Mark
	unmatched := 0
	for i := from; i < size; {
		bi := i / layout.EntryBundleWidth
		raw, err := l.reader.ReadEntryBundle(ctx, bi, layout.PartialTileSize(0, bi, size))
		if err != nil {
			return fmt.Errorf("audit: reconcile: read bundle %d: %w", bi, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return fmt.Errorf("audit: reconcile: bundle %d: %w", bi, err)
		}
		for ; i < size && i/layout.EntryBundleWidth == bi; i++ {
			j := int(i % layout.EntryBundleWidth)
			if j >= len(b.Entries) || len(b.Entries[j]) != LeafSize {
				unmatched++
				continue
			}
			seq, ok := bySeq[[LeafSize]byte(b.Entries[j])]
			if !ok {
				unmatched++
				continue
			}
			delete(bySeq, [LeafSize]byte(b.Entries[j]))
			marks = append(marks, Mark{Seq: seq, Index: int64(i)})
		}
	}
	if unmatched > 0 {
		// Only possible if the store lost records that reached the log.
		l.t.log.Error("audit log leaves without a stored record", "count", unmatched)
	}
	if len(marks) > 0 {
		if err := l.t.store.MarkIntegrated(ctx, marks); err != nil {
			return fmt.Errorf("audit: reconcile: %w", err)
		}
		l.t.log.Info("audit log reconciled", slog.Int("records", len(marks)), slog.Uint64("from", from), slog.Uint64("size", size))
	}
	return nil
}

// close runs a last integration pass and waits for a published checkpoint
// covering everything added.
func (l *merkleLog) close(ctx context.Context) error {
	close(l.stop)
	<-l.done
	var err error
	if l.t.cfg.Lease == nil {
		err = l.shutdown(ctx)
	}
	l.cancel()
	if err != nil {
		return fmt.Errorf("audit: log shutdown: %w", err)
	}
	return nil
}
