package exchange

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Refusals of participants the hub does not serve — unknown to the
// registers or suspended — cost the hub as little as possible: they are
// refused right after authentication, before any work on a person, counted
// in crossroads_refused_participants_total, and recorded as one
// abuse-summary audit record per actor, reason and window (the count in
// its Detail) rather than one record per request, so that a flood cannot
// fill the audit store. Memory is bounded: at most MaxAbuseActors windows
// are open; refusals of further actors are summarised together under the
// actor "*".

// abuseOverflow is the actor of the summary of actors beyond the bound.
const abuseOverflow = "*"

type abuseKey struct {
	actor  string
	reason crossroads.Reason
}

type abuseCount struct {
	from, last time.Time
	n          int64
}

type abuseWindows struct {
	window time.Duration
	max    int
	mu     sync.Mutex
	open   map[abuseKey]*abuseCount
}

func newAbuseWindows(window time.Duration, max int) *abuseWindows {
	return &abuseWindows{window: window, max: max, open: make(map[abuseKey]*abuseCount)}
}

// note counts one refusal.
func (w *abuseWindows) note(actor string, reason crossroads.Reason, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := abuseKey{actor, reason}
	c := w.open[k]
	if c == nil {
		if len(w.open) >= w.max {
			k = abuseKey{abuseOverflow, reason}
			c = w.open[k]
		}
		if c == nil {
			c = &abuseCount{from: now}
			w.open[k] = c
		}
	}
	c.n++
	c.last = now
}

// abuseSummary is one closed window.
type abuseSummary struct {
	key abuseKey
	abuseCount
}

// due removes and returns the windows that have closed by now (all of them
// with all).
func (w *abuseWindows) due(now time.Time, all bool) []abuseSummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []abuseSummary
	for k, c := range w.open {
		if all || !now.Before(c.from.Add(w.window)) {
			out = append(out, abuseSummary{k, *c})
			delete(w.open, k)
		}
	}
	return out
}

// abusive refuses a participant the hub does not serve, without an audit
// record of its own (and so without an exchange id or receipt).
func (p *Pipeline) abusive(s *state, reason crossroads.Reason) Result {
	p.cfg.Metrics.refusedParticipants.WithLabelValues(string(reason)).Inc()
	p.abuse.note(s.rec.Requester, reason, s.start)
	s.hdr.Del(HeaderExchangeID)
	s.rec.ExchangeID = ""
	detail := "this participant is suspended"
	if reason == crossroads.ReasonUnknownParticipant {
		detail = "this participant is not in the registers"
	}
	return p.unrecorded(s, refuse(403, reason, detail))
}

// Run records the abuse summaries as their windows close, until ctx is
// done; then it records the open ones. The hub runs it beside the server.
func (p *Pipeline) Run(ctx context.Context) {
	every := p.cfg.AbuseWindow / 4
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.FlushAbuse(context.WithoutCancel(ctx), true)
			return
		case <-t.C:
			p.FlushAbuse(ctx, false)
		}
	}
}

// FlushAbuse records the summaries of the closed windows (all open ones
// with all). A summary that cannot be recorded is logged and dropped.
func (p *Pipeline) FlushAbuse(ctx context.Context, all bool) {
	now := p.cfg.Now()
	for _, sum := range p.abuse.due(now, all) {
		detail, _ := json.Marshal(struct {
			Count int64     `json:"count"`
			From  time.Time `json:"from"`
			Last  time.Time `json:"last"`
		}{sum.n, sum.from.UTC(), sum.last.UTC()})
		rec := crossroads.AuditRecord{
			Kind: crossroads.RecordAbuseSummary, Action: "refused", ExchangeID: newExchangeID(), Time: now.UTC(),
			Requester: sum.key.actor, Outcome: crossroads.OutcomeDenied, Reason: sum.key.reason, Status: 403, Detail: detail,
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.AuditTimeout)
		_, err := p.cfg.Audit.Commit(cctx, &rec)
		cancel()
		if err != nil {
			p.cfg.Metrics.auditFailures.Inc()
			p.cfg.Logger.Error("abuse summary not recorded", "actor", sum.key.actor, "reason", sum.key.reason, "count", sum.n, "err", err)
			continue
		}
		p.cfg.Metrics.abuseSummaries.Inc()
	}
}
