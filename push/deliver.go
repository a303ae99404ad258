package push

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/pki"
)

// CloudEvents 1.0 HTTP binary mode (and the hub's extensions).
const (
	CloudEventsVersion = "1.0"
	// Extension attributes: the effective date of the mutation, the
	// subject's kind, the subscription, the publication, the outbox
	// sequence number (ordering within a subscription).
	ExtEffectiveDate = "effectivedate"
	ExtSubjectKind   = "subjectkind"
	ExtSubscription  = "subscription"
	ExtPublication   = "publication"
	ExtSequence      = "sequence"
	// Structured mode (the pull feed) carries the seal and the receipt as
	// extensions; binary mode as the Crossroads-Seal and -Receipt headers.
	ExtSeal    = "crossroadsseal"
	ExtReceipt = "crossroadsreceipt"
)

// Run delivers until ctx is done: it claims due entries, at most Workers
// at a time, and delivers each.
func (p *Push) Run(ctx context.Context) {
	sem := make(chan struct{}, p.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		free := cap(sem) - len(sem)
		claimed := 0
		if free > 0 {
			entries, err := p.cfg.Store.Claim(ctx, p.cfg.Node, p.cfg.Now(), p.cfg.Lease, free)
			if err != nil && ctx.Err() == nil {
				p.cfg.Logger.Warn("push: claim", "err", err)
			}
			claimed = len(entries)
			for _, e := range entries {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem; p.poke() }()
					p.Deliver(ctx, e)
				})
			}
		}
		if free > 0 && claimed == free {
			continue // there may be more
		}
		t := time.NewTimer(p.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Deliver takes one claimed entry one step: seal it (and record it) if it
// is not yet, then for push send it and record the outcome in the outbox.
func (p *Push) Deliver(ctx context.Context, e Entry) {
	now := p.cfg.Now()
	sub, ok := p.Subscription(e.Subscription)
	var svc *crossroads.Service
	var op *crossroads.Operation
	var a *crossroads.Authorisation
	if ok {
		svc, op, a = p.covering(sub, now)
	}
	if a == nil {
		// The subscription, its subscriber or its authorisation is gone:
		// nothing is released.
		if err := p.event(ctx, e, "drop", "", "the subscription is no longer covered", 0); err != nil {
			p.retryLater(ctx, e, e.Attempts, "drop not recorded")
			return
		}
		p.finish(ctx, e, StateDropped, "the subscription is no longer covered")
		return
	}
	fresh := false
	if e.Sealed.Seal == "" {
		s, err := p.seal(ctx, e, sub, svc, op, a, now)
		if err != nil {
			p.cfg.Logger.Error("push: seal or record a delivery", "entry", e.Seq, "err", err)
			p.retryLater(ctx, e, e.Attempts, "not recorded")
			return
		}
		p.metrics.deliveries.WithLabelValues("sealed").Inc()
		e.Sealed = s
		if e.Delivery == crossroads.DeliveryPull {
			if err := p.cfg.Store.Seal(ctx, e.Seq, p.cfg.Node, s, StateAvailable); err != nil {
				p.cfg.Logger.Warn("push: store sealed entry", "entry", e.Seq, "err", err)
				return // the lease runs out; sealed again (and recorded again) later
			}
			p.fed()
			return
		}
		// push: the sealed form is stored only if the first attempt fails
		// (one write less on the happy path); a kill before the outcome is
		// stored seals, records and sends again, with the same event id.
		fresh = true
	} else if e.Delivery == crossroads.DeliveryPull {
		if err := p.cfg.Store.Seal(ctx, e.Seq, p.cfg.Node, e.Sealed, StateAvailable); err == nil {
			p.fed()
		}
		return
	}

	// push: send, the same sealed bytes on every retry
	err := p.send(ctx, e, sub)
	now = p.cfg.Now()
	if err != nil && fresh {
		if serr := p.cfg.Store.Seal(ctx, e.Seq, p.cfg.Node, e.Sealed, StatePending); serr != nil {
			p.cfg.Logger.Warn("push: store sealed entry", "entry", e.Seq, "err", serr)
			return // the lease runs out; sealed again (and recorded again) later
		}
	}
	if err == nil {
		p.finish(ctx, e, StateDelivered, "")
		p.metrics.latency.Observe(now.Sub(e.Publication.Time).Seconds())
		return
	}
	attempts := e.Attempts + 1
	next := now.Add(p.backoff(attempts))
	msg := err.Error()
	if len(msg) > 256 {
		msg = msg[:256]
	}
	if !next.Before(e.Since.Add(p.cfg.Horizon)) {
		if rerr := p.event(ctx, e, "dead-letter", "", msg, attempts); rerr != nil {
			p.retryLater(ctx, e, attempts, msg)
			return
		}
		p.finish(ctx, e, StateDead, msg)
		p.cfg.Logger.Warn("push: dead letter", "entry", e.Seq, "subscription", e.Subscription, "attempts", attempts, "err", msg)
		return
	}
	p.metrics.deliveries.WithLabelValues("retry").Inc()
	if err := p.cfg.Store.Retry(ctx, e.Seq, p.cfg.Node, attempts, next, msg); err != nil {
		p.cfg.Logger.Warn("push: schedule retry", "entry", e.Seq, "err", err)
	}
}

func (p *Push) finish(ctx context.Context, e Entry, state, msg string) {
	if err := p.cfg.Store.Finish(ctx, e.Seq, p.cfg.Node, state, p.cfg.Now(), msg); err != nil {
		p.cfg.Logger.Warn("push: finish entry", "entry", e.Seq, "state", state, "err", err)
		return
	}
	p.metrics.deliveries.WithLabelValues(state).Inc()
}

func (p *Push) retryLater(ctx context.Context, e Entry, attempts int, msg string) {
	if err := p.cfg.Store.Retry(ctx, e.Seq, p.cfg.Node, attempts, p.cfg.Now().Add(p.cfg.MinBackoff), msg); err != nil {
		p.cfg.Logger.Warn("push: schedule retry", "entry", e.Seq, "err", err)
	}
}

// backoff is the wait before attempt n+1: MinBackoff doubled n-1 times,
// at most MaxBackoff, with full jitter in [d/2, 3d/2).
func (p *Push) backoff(n int) time.Duration {
	d := p.cfg.MinBackoff
	for i := 1; i < n && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	return d/2 + rand.N(d)
}

// seal minimises the payload to the subscriber's authorisation, seals it
// as an exchange response and records the delivery as an exchange of the
// subscriber about the subject (the citizen sees it) before anything is
// released.
func (p *Push) seal(ctx context.Context, e Entry, sub *crossroads.Subscription, svc *crossroads.Service, op *crossroads.Operation, a *crossroads.Authorisation, now time.Time) (Sealed, error) {
	fields := op.Fields
	if len(fields) == 0 {
		fields = svc.Fields
	}
	granted, err := minimise.Compile(a.Fields[svc.ID])
	if err != nil {
		return Sealed{}, fmt.Errorf("authorisation %s fields: %w", a.ID, err)
	}
	offered, err := minimise.Compile(fields)
	if err != nil {
		return Sealed{}, fmt.Errorf("service %s fields: %w", svc.ID, err)
	}
	body, err := minimise.Intersect(granted, offered).JSON(e.Publication.Payload)
	if err != nil {
		return Sealed{}, fmt.Errorf("minimise: %w", err)
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	pub := e.Publication
	id := newID()
	target := "/v1/subscriptions/" + sub.ID + "/events/" + strconv.FormatInt(e.Seq, 10)
	digest := pki.Digest(body)
	seal, err := p.cfg.Sealer.Seal(ctx, pki.SealClaims{
		ExchangeID: id, Requester: sub.Subscriber, Service: svc.ID, Operation: op.ID, Method: http.MethodPost, Target: target,
		SubjectKind: pub.SubjectKind, Subject: pub.Subject, Purpose: sub.Purpose, AuthorisationID: a.ID,
		RequestDigest: pub.Digest, Status: http.StatusOK, ContentType: "application/json", ResponseDigest: digest, Time: now.UTC(),
	})
	if err != nil {
		return Sealed{}, fmt.Errorf("seal: %w", err)
	}
	rec := &crossroads.AuditRecord{
		Kind: crossroads.RecordExchange, Action: "deliver", ExchangeID: id, Time: now.UTC(), Requester: sub.Subscriber,
		Service: svc.ID, Provider: svc.Provider, SubjectKind: pub.SubjectKind, Subject: pub.Subject, Purpose: sub.Purpose,
		AuthorisationID: a.ID, AuthorisationRef: a.Reference, CorrelationID: pub.ID, Operation: op.ID, Method: http.MethodPost,
		Target: target, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed, RequestDigest: pub.Digest,
		ResponseDigest: digest, Status: http.StatusOK, ContentType: "application/json",
	}
	receipt, err := p.commit(ctx, rec)
	if err != nil {
		return Sealed{}, fmt.Errorf("record: %w", err)
	}
	return Sealed{Body: body, Seal: seal, Receipt: receipt.Token, ExchangeID: id}, nil
}

// deliveryDetail is the detail of RecordDelivery events.
type deliveryDetail struct {
	Subscription string `json:"subscription"`
	Publication  string `json:"publication,omitempty"`
	Seq          int64  `json:"seq,omitempty"`
	Attempts     int    `json:"attempts,omitempty"`
	Count        int64  `json:"count,omitempty"`
	Error        string `json:"error,omitempty"`
}

// event records a RecordDelivery event about entry e (dead letter, drop).
func (p *Push) event(ctx context.Context, e Entry, action, actor, msg string, attempts int) error {
	if actor == "" {
		actor = pki.HubParticipant
	}
	rec, err := audit.Event(crossroads.RecordDelivery, action, actor, "", deliveryDetail{
		Subscription: e.Subscription, Publication: e.Publication.ID, Seq: e.Seq, Attempts: attempts, Error: msg,
	})
	if err != nil {
		return err
	}
	rec.Service, rec.Operation = e.Publication.Service, e.Publication.Operation
	rec.SubjectKind, rec.Subject = e.Publication.SubjectKind, e.Publication.Subject
	rec.CorrelationID = e.Publication.ID
	if action == "dead-letter" {
		rec.Outcome, rec.Reason = crossroads.OutcomeFailed, crossroads.ReasonProviderUnreachable
	}
	_, err = p.commit(ctx, rec)
	return err
}

// send POSTs the sealed entry to the subscriber's endpoint as a
// CloudEvent in binary mode, over mTLS to the subscriber's own server
// certificate (the transport checks it).
func (p *Push) send(ctx context.Context, e Entry, sub *crossroads.Subscription) error {
	ctx, cancel := context.WithTimeout(crossroads.WithProvider(ctx, sub.Subscriber), p.cfg.SendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, strings.NewReader(string(e.Sealed.Body)))
	if err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	h := req.Header
	for k, v := range binaryHeaders(e) {
		h.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %d", resp.StatusCode)
	}
	return nil
}

// Type is the CloudEvents type of a mutation: service/operation.
func Type(service, operation string) string { return service + "/" + operation }

// Source is the CloudEvents source of a service's mutations.
func Source(service string) string { return "/v1/mutations/" + service }

// binaryHeaders are the HTTP headers of e in CloudEvents binary mode.
func binaryHeaders(e Entry) map[string]string {
	pub := e.Publication
	return map[string]string{
		"Content-Type":           "application/json",
		"ce-specversion":         CloudEventsVersion,
		"ce-id":                  pub.Key,
		"ce-source":              Source(pub.Service),
		"ce-type":                Type(pub.Service, pub.Operation),
		"ce-subject":             pub.Subject,
		"ce-time":                pub.Time.UTC().Format(time.RFC3339Nano),
		"ce-" + ExtEffectiveDate: effective(pub.Effective),
		"ce-" + ExtSubjectKind:   pub.SubjectKind,
		"ce-" + ExtSubscription:  e.Subscription,
		"ce-" + ExtPublication:   pub.ID,
		"ce-" + ExtSequence:      strconv.FormatInt(e.Seq, 10),
		pki.HeaderSeal:           e.Sealed.Seal,
		pki.HeaderReceipt:        e.Sealed.Receipt,
		pki.HeaderExchangeID:     e.Sealed.ExchangeID,
	}
}

// effective renders an effective date: YYYY-MM-DD for midnight UTC.
func effective(t time.Time) string {
	if t.Equal(t.Truncate(24*time.Hour)) && t.Location() == time.UTC {
		return t.Format(time.DateOnly)
	}
	return t.UTC().Format(time.RFC3339Nano)
}
