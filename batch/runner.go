package batch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/exchange"
	"github.com/crossroads-hub/crossroads/problem"
)

// Run runs the workers and the erasure job until ctx is done, then waits
// for the items in flight (bounded by the provider and audit timeouts).
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	expire := time.NewTicker(s.cfg.ExpireEvery)
	defer expire.Stop()
	s.Expire(ctx)
	for {
		s.dispatch(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-s.wake:
		case <-s.freed:
		case <-expire.C:
			s.Expire(ctx)
		}
	}
}

// dispatch claims items while there are free slots: round-robin over the
// participants with claimable items, each up to its own bound.
func (s *Service) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	for ctx.Err() == nil {
		s.mu.Lock()
		free := s.cfg.Workers - s.all
		s.mu.Unlock()
		if free <= 0 {
			return
		}
		now := s.cfg.Now()
		parts, err := s.cfg.Store.Runnable(ctx, now, 256)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("batch: look for items", "err", err)
			}
			return
		}
		claimed := 0
		for _, p := range parts {
			s.mu.Lock()
			n := min(s.cfg.Workers-s.all, s.cfg.PerParticipant-s.byPart[p])
			s.mu.Unlock()
			if n <= 0 {
				continue
			}
			cs, err := s.cfg.Store.Claim(ctx, p, n, now, s.cfg.Lease)
			if err != nil {
				if ctx.Err() == nil {
					s.cfg.Logger.Warn("batch: claim items", "participant", p, "err", err)
				}
				return
			}
			for _, c := range cs {
				s.mu.Lock()
				s.all++
				s.byPart[c.Participant]++
				s.mu.Unlock()
				claimed++
				wg.Go(func() {
					defer s.done(c.Participant)
					s.runItem(context.WithoutCancel(ctx), c)
				})
			}
		}
		if claimed == 0 {
			return
		}
	}
}

func (s *Service) done(participant string) {
	s.mu.Lock()
	s.all--
	if s.byPart[participant]--; s.byPart[participant] <= 0 {
		delete(s.byPart, participant)
	}
	s.mu.Unlock()
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// provider returns the semaphore of a provider.
func (s *Service) provider(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.providers[id]
	if !ok {
		c = make(chan struct{}, s.cfg.PerProvider)
		s.providers[id] = c
	}
	return c
}

// retryable reports whether an item's answer is the hub's own refusal to
// take more now (nothing about the item was decided): it is run again.
func retryable(res exchange.Result, err error) bool {
	if errors.Is(err, exchange.ErrNotRecorded) {
		return true
	}
	switch res.Reason {
	case crossroads.ReasonOverloaded, crossroads.ReasonRateLimited, crossroads.ReasonAuditUnavailable:
		return true
	}
	return false
}

// backoff is how long an item waits before its next attempt.
func backoff(attempts int) time.Duration {
	d := 500 * time.Millisecond << min(attempts, 7)
	return min(d, time.Minute)
}

// runItem runs one claimed item and stores its result (or gives it back
// to be retried).
func (s *Service) runItem(ctx context.Context, c Claim) {
	claimed := s.cfg.Now()
	log := s.cfg.Logger.With("batch", c.Batch, "item", c.Seq)
	var it crossroads.BatchItem
	if err := json.Unmarshal(c.Item, &it); err != nil {
		log.Error("batch: stored item does not parse", "err", err)
		s.retry(ctx, c)
		return
	}
	cert, err := s.certificate(ctx, c.Batch)
	if err != nil {
		log.Warn("batch: submitter's certificate", "err", err)
		s.retry(ctx, c)
		return
	}
	req, provider, ref := s.request(c, &it)
	var res exchange.Result
	if ref != nil {
		res, err = s.refuseItem(ctx, c, &it, ref)
	} else {
		req.Caller = cert
		if provider != "" {
			sem := s.provider(provider)
			sem <- struct{}{}
			defer func() { <-sem }()
		}
		// The exchange starts only while half the lease remains (Lease/2
		// exceeds the provider and audit timeouts), so that no other node
		// takes the item over while it runs here.
		if s.cfg.Now().Sub(claimed) > s.cfg.Lease/2 {
			s.retryAt(ctx, c, s.cfg.Now())
			return
		}
		res, err = s.cfg.Pipeline.Do(ctx, req)
	}
	if retryable(res, err) {
		s.retry(ctx, c)
		return
	}
	r := crossroads.BatchResult{
		Seq: c.Seq, CorrelationID: it.CorrelationID, Outcome: res.Outcome, Status: res.Status, Reason: res.Reason,
		ExchangeID: res.ExchangeID, Seal: res.Header.Get(exchange.HeaderSeal), Receipt: res.Header.Get(exchange.HeaderReceipt),
		ContentType: res.Header.Get("Content-Type"), Released: res.Body, Attempts: c.Attempts, Completed: s.cfg.Now().UTC(),
	}
	if r.Outcome == "" {
		r.Outcome = crossroads.OutcomeFailed
	}
	ok, err := s.cfg.Store.Complete(ctx, c, r)
	switch {
	case err != nil:
		// Not stored, so not released: the lease expires and the item runs again.
		log.Warn("batch: store result", "err", err)
	case !ok:
		log.Warn("batch: lease lost before the result was stored; the other claim's result counts")
	}
}

func (s *Service) retry(ctx context.Context, c Claim) {
	s.retryAt(ctx, c, s.cfg.Now().Add(backoff(c.Attempts)))
}

func (s *Service) retryAt(ctx context.Context, c Claim, at time.Time) {
	if err := s.cfg.Store.Retry(ctx, c, at); err != nil {
		s.cfg.Logger.Warn("batch: give the item back (its lease will expire)", "batch", c.Batch, "item", c.Seq, "err", err)
	}
}

// itemRefusal is an item the hub cannot turn into a call (the operation
// named is not the service's, a path parameter is missing or unknown).
type itemRefusal struct {
	status int
	reason crossroads.Reason
	detail string
}

// request builds the item's exchange request: the operation form resolved
// against the registers as they are now (an unknown service is left to
// the pipeline, which refuses it and records that), and the provider to
// bound.
func (s *Service) request(c Claim, it *crossroads.BatchItem) (exchange.Request, string, *itemRefusal) {
	corr := correlation(c, it)
	h := http.Header{}
	h.Set(exchange.HeaderPurpose, it.Purpose)
	h.Set(exchange.HeaderUser, it.User)
	h.Set(exchange.HeaderCorrelationID, corr)
	req := exchange.Request{Method: it.Method, Service: it.Service, Path: it.Path, Header: h, ContentLength: 0}
	if len(it.Query) > 0 {
		req.RawQuery = url.Values(it.Query).Encode()
	}
	if len(it.Body) > 0 {
		h.Set("Content-Type", "application/json")
		req.Body, req.ContentLength = strings.NewReader(string(it.Body)), int64(len(it.Body))
	}
	svcID := it.Service
	if it.Operation != "" {
		var opID string
		svcID, opID, _ = strings.Cut(it.Operation, "/")
		req.Service, req.Method = svcID, http.MethodGet
		svc, ok := s.cfg.Directory.Service(svcID)
		if !ok {
			return req, "", nil // the pipeline says unknown-service
		}
		op, ok := svc.Operation(opID)
		if !ok {
			return req, "", &itemRefusal{http.StatusNotFound, crossroads.ReasonUnknownOperation, "the service has no operation " + opID}
		}
		path, ref := fill(op.Path, it.Parameters)
		if ref != nil {
			return req, "", ref
		}
		req.Method, req.Path = op.Method, path
	}
	if svc, ok := s.cfg.Directory.Service(svcID); ok {
		return req, svc.Provider, nil
	}
	return req, "", nil
}

// correlation is the item's correlation id: the submitter's, or
// batch:{id}:{item}, so that every record of an item names it.
func correlation(c Claim, it *crossroads.BatchItem) string {
	if it.CorrelationID != "" {
		return it.CorrelationID
	}
	return "batch:" + c.Batch + ":" + strconv.Itoa(c.Seq)
}

// fill substitutes the parameters into an operation's path template
// ({name} or {name:type} segments), escaped; the pipeline then validates
// them as it does an interactive call's path.
func fill(template string, params map[string]string) (string, *itemRefusal) {
	if template == "/" {
		template = ""
	}
	segs := strings.Split(strings.TrimPrefix(template, "/"), "/")
	used := 0
	var b strings.Builder
	for _, seg := range segs {
		if template == "" {
			break
		}
		b.WriteByte('/')
		if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
			name, _, _ := strings.Cut(seg[1:len(seg)-1], ":")
			v, ok := params[name]
			if !ok {
				return "", &itemRefusal{http.StatusBadRequest, crossroads.ReasonInvalidParameter, "parameter " + name + " is missing"}
			}
			used++
			b.WriteString(url.PathEscape(v))
			continue
		}
		b.WriteString(seg)
	}
	if used != len(params) {
		return "", &itemRefusal{http.StatusBadRequest, crossroads.ReasonUnknownParameter, "a parameter is not one of the operation's path"}
	}
	return b.String(), nil
}

// refuseItem records and answers an item refused before the pipeline: an
// event of the batch (kind batch, action item-refused) naming the item,
// the operation and the reason; its receipt is the item's.
func (s *Service) refuseItem(ctx context.Context, c Claim, it *crossroads.BatchItem, ref *itemRefusal) (exchange.Result, error) {
	rec, err := audit.Event(crossroads.RecordBatch, "item-refused", c.Participant, it.User, map[string]any{
		"batch": c.Batch, "item": c.Seq, "operation": it.Operation, "purpose": it.Purpose, "reason": ref.reason,
	})
	if err != nil {
		return exchange.Result{}, exchange.ErrNotRecorded
	}
	rec.Outcome, rec.Reason, rec.Purpose, rec.CorrelationID = crossroads.OutcomeDenied, ref.reason, it.Purpose, correlation(c, it)
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	receipt, err := s.cfg.Audit.Commit(actx, rec)
	if err != nil {
		s.cfg.Logger.Warn("batch: record refused item", "batch", c.Batch, "item", c.Seq, "err", err)
		return exchange.Result{}, exchange.ErrNotRecorded
	}
	d := problem.New(ref.status, ref.reason, ref.detail)
	d.ExchangeID = rec.ExchangeID
	body, _ := json.Marshal(d)
	h := http.Header{}
	h.Set("Content-Type", problem.ContentType)
	h.Set(exchange.HeaderReceipt, receipt.Token)
	return exchange.Result{Status: ref.status, Header: h, Body: body, ExchangeID: rec.ExchangeID, Outcome: crossroads.OutcomeDenied, Reason: ref.reason}, nil
}

// Expire erases the results of batches past their retention, each after
// recording it (kind batch, action expire), and purges held batches.
func (s *Service) Expire(ctx context.Context) {
	now := s.cfg.Now()
	for ctx.Err() == nil {
		ids, err := s.cfg.Store.Expired(ctx, now, 100)
		if err != nil {
			s.cfg.Logger.Warn("batch: expired batches", "err", err)
			return
		}
		for _, id := range ids {
			b, err := s.cfg.Store.Batch(ctx, id)
			if err != nil {
				s.cfg.Logger.Warn("batch: expired batch", "batch", id, "err", err)
				return
			}
			rec, err := audit.Event(crossroads.RecordBatch, "expire", b.Participant, "", map[string]any{
				"batch": id, "items": b.Total, "finished": b.Finished, "expires": b.Expires,
			})
			if err == nil {
				_, err = s.cfg.Audit.Commit(ctx, rec)
			}
			if err != nil {
				s.cfg.Logger.Warn("batch: record expiry; results kept until the next run", "batch", id, "err", err)
				return
			}
			if err := s.cfg.Store.Erase(ctx, id); err != nil {
				s.cfg.Logger.Warn("batch: erase results", "batch", id, "err", err)
				return
			}
			s.certs.Delete(id)
			s.cfg.Logger.Info("batch results erased after the retention period", "batch", id)
		}
		if len(ids) < 100 {
			break
		}
	}
	if n, err := s.cfg.Store.PurgeHeld(ctx, now.Add(-heldTimeout)); err != nil {
		s.cfg.Logger.Warn("batch: purge held batches", "err", err)
	} else if n > 0 {
		s.cfg.Logger.Info("batch: purged submissions never accepted", "batches", n)
	}
}
