package push

import (
	"slices"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// subIndex indexes the active subscriptions of one registers snapshot by
// (service, mutation).
type subIndex struct {
	net   *crossroads.Network
	byOp  map[[2]string][]*crossroads.Subscription
	byID  map[string]*crossroads.Subscription
	bySub map[string][]*crossroads.Subscription // every subscription (any status) by subscriber
}

// index returns the subscription index of the current registers.
func (p *Push) index() *subIndex {
	n := p.cfg.Directory.Snapshot()
	if ix := p.subs.Load(); ix != nil && ix.net == n {
		return ix
	}
	ix := &subIndex{net: n, byOp: map[[2]string][]*crossroads.Subscription{}, byID: map[string]*crossroads.Subscription{},
		bySub: map[string][]*crossroads.Subscription{}}
	for i := range n.Subscriptions {
		s := &n.Subscriptions[i]
		ix.byID[s.ID] = s
		ix.bySub[s.Subscriber] = append(ix.bySub[s.Subscriber], s)
		if s.Status == crossroads.StatusActive {
			k := [2]string{s.Service, s.Operation}
			ix.byOp[k] = append(ix.byOp[k], s)
		}
	}
	p.subs.Store(ix)
	return ix
}

// Subscription returns a subscription of the current registers.
func (p *Push) Subscription(id string) (*crossroads.Subscription, bool) {
	s, ok := p.index().byID[id]
	return s, ok
}

// Route returns the subscriptions a mutation of op of svc about the
// subject (kind, canonical id) effective at eff is to be delivered to, and
// for each the authorisation that covers it: the eligibility rules of the
// package documentation, checked at now.
func (p *Push) Route(svc *crossroads.Service, op *crossroads.Operation, kind, subject string, eff, now time.Time) ([]*crossroads.Subscription, []*crossroads.Authorisation) {
	ix := p.index()
	var subs []*crossroads.Subscription
	var auths []*crossroads.Authorisation
	key := crossroads.SubjectKey(kind, subject)
	for _, s := range ix.byOp[[2]string{svc.ID, op.ID}] {
		if a := p.eligible(s, svc, op, key, eff, now); a != nil {
			subs, auths = append(subs, s), append(auths, a)
		}
	}
	return subs, auths
}

// eligible returns the authorisation covering s for a mutation about
// subject key effective at eff, or nil.
func (p *Push) eligible(s *crossroads.Subscription, svc *crossroads.Service, op *crossroads.Operation, key string, eff, now time.Time) *crossroads.Authorisation {
	if s.Status != crossroads.StatusActive {
		return nil
	}
	if part, ok := p.cfg.Directory.Participant(s.Subscriber); !ok || part.Status != crossroads.StatusActive {
		return nil
	}
	ins := p.cfg.Directory.Integrations(key, s.Subscriber)
	if len(ins) == 0 {
		return nil
	}
	for _, a := range p.cfg.Directory.Authorisations(s.Subscriber, svc.ID) {
		if !a.ActiveAt(now) || !slices.Contains(a.Purposes, s.Purpose) || !a.GrantsOperation(svc.ID, op) {
			continue
		}
		for i := range ins {
			in := &ins[i]
			if s.Follows(in) && in.ActiveAt(eff) && namesCapacity(a, in) {
				return a
			}
		}
	}
	return nil
}

// namesCapacity reports whether a's capacities include in's (an
// authorisation naming none covers every capacity, as in the preventive
// check).
func namesCapacity(a *crossroads.Authorisation, in *crossroads.Integration) bool {
	if len(a.Capacities) == 0 {
		return true
	}
	for _, c := range a.Capacities {
		if c.Sector == in.Sector && c.Code == in.Capacity && kindOf(c.Kind) == kindOf(in.Kind) {
			return true
		}
	}
	return false
}

func kindOf(k string) string {
	if k == crossroads.SubjectPerson {
		return ""
	}
	return k
}

// covering returns the authorisation that covers s now, for delivery (the
// registers may have changed since the publication), or nil.
func (p *Push) covering(s *crossroads.Subscription, now time.Time) (*crossroads.Service, *crossroads.Operation, *crossroads.Authorisation) {
	if s.Status != crossroads.StatusActive {
		return nil, nil, nil
	}
	if part, ok := p.cfg.Directory.Participant(s.Subscriber); !ok || part.Status != crossroads.StatusActive {
		return nil, nil, nil
	}
	svc, ok := p.cfg.Directory.Service(s.Service)
	if !ok {
		return nil, nil, nil
	}
	op, ok := svc.Operation(s.Operation)
	if !ok || op.Kind != crossroads.OperationMutation {
		return nil, nil, nil
	}
	for _, a := range p.cfg.Directory.Authorisations(s.Subscriber, svc.ID) {
		if a.ActiveAt(now) && slices.Contains(a.Purposes, s.Purpose) && a.GrantsOperation(svc.ID, op) {
			return svc, op, a
		}
	}
	return nil, nil, nil
}
