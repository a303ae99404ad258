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

// kickAfter is how many newly durable records start an integration pass
// before the next tick. Between ticks (a quarter of the merge delay)
// records accumulate, so that each pass, with its fsyncs in the log and in
// the store, carries many leaves: integration cost per record falls as
// load rises, and the exchange path never waits for it.
const kickAfter = integrateBatch / 2

// merkleLog integrates durable records into the Tessera log, in the
// background, and records each one's index in the store.
type merkleLog struct {
	t        *Trail
	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	cancel   context.CancelFunc
	ctx      context.Context

	lastClean time.Time // of orphan temporary files

	pending atomic.Int64  // records made durable since the last pass began
	kick    chan struct{} // enough records are waiting
	stop    chan struct{} // Close: a last pass, then return
	done    chan struct{}
}

func openLog(ctx context.Context, t *Trail) (*merkleLog, error) {
	dir := filepath.Join(t.cfg.Dir, "log")
	if n, err := cleanLogTemp(dir, t.cfg.tempMinAge); err != nil {
		t.log.Warn("audit log: remove orphan temporary files", "err", err)
	} else if n > 0 {
		t.log.Info("audit log: orphan temporary files removed", "files", n)
	}
	drv, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return nil, fmt.Errorf("audit: log storage: %w", err)
	}
	ci := max(t.cfg.MaxMergeDelay/4, 100*time.Millisecond)
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(t.signer).
		WithBatching(integrateBatch, 20*time.Millisecond).
		WithCheckpointInterval(ci).
		WithCheckpointRepublishInterval(max(ci, time.Minute)).
		WithPushback(4 * integrateBatch)
	lctx, cancel := context.WithCancel(context.Background())
	app, shutdown, reader, err := tessera.NewAppender(lctx, drv, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("audit: log: %w", err)
	}
	l := &merkleLog{
		t: t, appender: app, shutdown: shutdown, reader: reader, cancel: cancel, ctx: lctx,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := l.reconcile(ctx); err != nil {
		cancel()
		return nil, err
	}
	go l.run()
	return l, nil
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
// every MaxMergeDelay/4, and once more on Close.
func (l *merkleLog) run() {
	defer close(l.done)
	if l.t.cfg.noIntegrate {
		<-l.stop
		return
	}
	tick := time.NewTicker(max(l.t.cfg.MaxMergeDelay/4, 50*time.Millisecond))
	defer tick.Stop()
	dirty := false // an error left the store and the log possibly apart
	for {
		last := false
		select {
		case <-l.kick:
		case <-tick.C:
		case <-l.stop:
			last = true
		}
		if dirty {
			if err := l.reconcile(l.ctx); err != nil {
				l.t.log.Error("audit log reconcile", "err", err)
				if last {
					return
				}
				continue
			}
			dirty = false
		}
		if err := l.integrate(l.ctx); err != nil {
			if errors.Is(err, errCrash) {
				<-l.stop
				return
			}
			l.t.log.Error("audit log integration", "err", err)
			dirty = true
			l.cleanTemp()
		}
		if last {
			return
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
		marks := make([]Mark, 0, len(rows))
		var ferr error
		for i, f := range futures {
			idx, err := f()
			if err != nil {
				ferr = errors.Join(ferr, err)
				continue
			}
			marks = append(marks, Mark{Seq: rows[i].Seq, Index: int64(idx.Index)})
		}
		if h := l.t.cfg.beforeMark; h != nil {
			if err := h(); err != nil {
				return errCrash
			}
		}
		if len(marks) > 0 {
			if err := l.t.store.MarkIntegrated(ctx, marks); err != nil {
				return fmt.Errorf("record indexes: %w", err)
			}
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
	err := l.shutdown(ctx)
	l.cancel()
	if err != nil {
		return fmt.Errorf("audit: log shutdown: %w", err)
	}
	return nil
}
