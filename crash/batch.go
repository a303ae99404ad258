package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// batchSize is the number of items in each batch the harness submits.
const batchSize = 40

// batchLoad is the batch submissions of a run: while the hub is killed and
// restarted, one client submits batches of the OCMW (people it has a file
// on, one in ten for an uncovered purpose, one in twenty for an operation
// the service lacks); every batch answered 202 is accepted and must end
// with exactly one result per item.
type batchLoad struct {
	mu       sync.Mutex
	sent     int
	accepted map[string]int // batch id → items
	fetched  map[string][]crossroads.BatchResult
}

// BatchReport is what the batch part of a run saw.
type BatchReport struct {
	Sent, Accepted int // batches submitted, answered 202
	Items          int // items accepted
	Allowed        int
	Denied         int
	Failed         int
	ReRun          int // items run more than once (a kill while they ran, or a retry)
}

func (b BatchReport) String() string {
	return fmt.Sprintf("  batches        %d sent, %d accepted (%d items: %d allowed, %d denied, %d failed; %d run more than once, one result each)\n",
		b.Sent, b.Accepted, b.Items, b.Allowed, b.Denied, b.Failed, b.ReRun)
}

// batches submits batches until ctx is done.
func (w *workers) batches(ctx context.Context) {
	cl := w.h.clients[demo.OCMW]
	n := len(w.people) - 1
	for k := 0; k < maxOpsPerWorker && ctx.Err() == nil; k++ {
		var body bytes.Buffer
		enc := json.NewEncoder(&body)
		for i := range batchSize {
			p := w.people[(k*batchSize+i)%n]
			it := crossroads.BatchItem{Operation: demo.ServicePerson + "/" + demo.OpRead, Parameters: map[string]string{"subject": p.INSZ},
				Purpose: "social-aid", User: "crash@" + demo.OCMW}
			switch {
			case i%20 == 19:
				it.Operation = demo.ServicePerson + "/salary"
			case i%10 == 9:
				it.Purpose = "marketing"
			}
			enc.Encode(&it)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.h.base+"/v1/batches", &body)
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", batch.ContentType)
		w.batch.mu.Lock()
		w.batch.sent++
		w.batch.mu.Unlock()
		resp, err := cl.Do(req)
		if err != nil {
			pause(ctx)
			continue
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if rerr == nil && resp.StatusCode == http.StatusAccepted {
			var p batch.Progress
			if json.Unmarshal(b, &p) == nil && p.ID != "" {
				w.batch.mu.Lock()
				if w.batch.accepted == nil {
					w.batch.accepted = map[string]int{}
				}
				w.batch.accepted[p.ID] = p.Total
				w.batch.mu.Unlock()
			}
		}
		select { // a batch every 300 ms at most: the exchanges stay the main load
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// awaitBatches waits, on the restarted hub, until every accepted batch is
// done, and fetches its results through the API.
func (h *harness) awaitBatches(ctx context.Context, w *workers) error {
	w.batch.mu.Lock()
	defer w.batch.mu.Unlock()
	w.batch.fetched = map[string][]crossroads.BatchResult{}
	deadline := time.Now().Add(2 * time.Minute)
	for id, n := range w.batch.accepted {
		for {
			p, err := h.batchGet(ctx, "/v1/batches/"+id)
			if err != nil {
				return err
			}
			var pr batch.Progress
			if err := json.Unmarshal(p, &pr); err != nil {
				return fmt.Errorf("crash: batch %s: %w", id, err)
			}
			if pr.Total != n {
				h.rep.problem("batch %s: accepted with %d items, the hub has %d", id, n, pr.Total)
			}
			if pr.State == crossroads.BatchDone {
				break
			}
			if time.Now().After(deadline) {
				h.rep.problem("batch %s: %d of %d items done two minutes after the last restart", id, pr.Done, pr.Total)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		b, err := h.batchGet(ctx, "/v1/batches/"+id+"/results")
		if err != nil {
			return err
		}
		rs, err := demo.ReadResults(b)
		if err != nil {
			h.rep.problem("batch %s: results: %v", id, err)
			continue
		}
		w.batch.fetched[id] = rs
	}
	return nil
}

func (h *harness) batchGet(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.clients[demo.OCMW].Do(req)
	if err != nil {
		return nil, fmt.Errorf("crash: %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("crash: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("crash: %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}

// verifyBatches checks, offline after the final stop, every accepted
// batch: done, exactly one result per item (the results fetched through
// the API and the store agree), each with a receipt that verifies against
// the log's key and names the leaf of a record of the submitter with the
// result's outcome.
func (h *harness) verifyBatches(ctx context.Context, w *workers) error {
	w.batch.mu.Lock()
	defer w.batch.mu.Unlock()
	rep := &h.rep.Batches
	rep.Sent, rep.Accepted = w.batch.sent, len(w.batch.accepted)
	if len(w.batch.accepted) == 0 {
		return nil
	}
	ast, err := sqlite.OpenAudit(ctx, filepath.Join(h.dataDir, "audit"))
	if err != nil {
		return fmt.Errorf("crash: open audit store: %w", err)
	}
	defer ast.Close()
	rows := map[string]audit.Row{}
	for after := int64(0); ; {
		page, err := ast.Rows(ctx, after, 1000, false)
		if err != nil {
			return fmt.Errorf("crash: read audit rows: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			rows[r.ExchangeID] = r
		}
		after = page[len(page)-1].Seq
	}
	bst, err := sqlite.OpenBatch(ctx, h.dataDir)
	if err != nil {
		return fmt.Errorf("crash: open batch store: %w", err)
	}
	defer bst.Close()
	for id, n := range w.batch.accepted {
		b, err := bst.Batch(ctx, id)
		if err != nil {
			h.rep.problem("accepted batch %s: %v", id, err)
			continue
		}
		if b.State != crossroads.BatchDone || b.Done != n || b.Allowed+b.Denied+b.Failed != n {
			h.rep.problem("batch %s: %s, %d of %d done (%d+%d+%d)", id, b.State, b.Done, n, b.Allowed, b.Denied, b.Failed)
		}
		stored, err := bst.Results(ctx, id, 0, 100_000)
		if err != nil {
			return fmt.Errorf("crash: batch results: %w", err)
		}
		fetched := w.batch.fetched[id]
		if len(stored) != n || len(fetched) != n {
			h.rep.problem("batch %s: %d items, %d results stored, %d fetched", id, n, len(stored), len(fetched))
			continue
		}
		rep.Items += n
		for i, r := range stored {
			if r.Seq != i+1 {
				h.rep.problem("batch %s: result %d is item %d", id, i+1, r.Seq)
				break
			}
			if f := fetched[i]; f.ExchangeID != r.ExchangeID || f.Receipt != r.Receipt || f.Outcome != r.Outcome {
				h.rep.problem("batch %s item %d: fetched result differs from the stored one", id, r.Seq)
			}
			switch r.Outcome {
			case crossroads.OutcomeAllowed:
				rep.Allowed++
			case crossroads.OutcomeDenied:
				rep.Denied++
			default:
				rep.Failed++
			}
			if r.Attempts > 1 {
				rep.ReRun++
			}
			row, ok := rows[r.ExchangeID]
			if !ok || r.Receipt == "" {
				h.rep.problem("batch %s item %d: result %s (%s) has no record or no receipt", id, r.Seq, r.ExchangeID, r.Outcome)
				continue
			}
			claims, err := audit.VerifyReceipt(r.Receipt, h.vkey)
			lh := audit.LeafHash(row.Leaf)
			switch {
			case err != nil:
				h.rep.problem("batch %s item %d: receipt: %v", id, r.Seq, err)
			case claims.ExchangeID != r.ExchangeID || !bytes.Equal(claims.LeafHash, lh[:]):
				h.rep.problem("batch %s item %d: the receipt is not the record's", id, r.Seq)
			case row.Index < 0:
				h.rep.problem("batch %s item %d: record not in the log after a clean stop", id, r.Seq)
			case row.Requester != demo.OCMW || row.Outcome != r.Outcome:
				h.rep.problem("batch %s item %d: recorded for %s as %s, result %s", id, r.Seq, row.Requester, row.Outcome, r.Outcome)
			}
		}
	}
	return nil
}
