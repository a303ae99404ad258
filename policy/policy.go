// Package policy is the preventive check: a pure function deciding whether
// an exchange may happen, before it happens (seed 001). It does no I/O; the
// registers are reached through View, which the directory answers from
// memory.
package policy

import (
	"slices"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// View is the read side of the registers that a decision needs.
type View interface {
	Participant(id string) (*crossroads.Participant, bool)
	Service(id string) (*crossroads.Service, bool)
	// Authorisations returns the authorisations granting grantee the service
	// (in any status or period); the slice must not be modified.
	Authorisations(grantee, service string) []*crossroads.Authorisation
	// Integrations returns participant's integrations on person; the slice
	// must not be modified.
	Integrations(person, participant string) []crossroads.Integration
}

// Request is what is asked: who, which service, why, about whom.
type Request struct {
	Requester string
	Service   string
	Purpose   string
	Subject   string // canonical person id; empty for services not about a person
}

// Decide applies the rules of design §2 in a fixed order, so that the
// reason of a denial is the first rule that fails:
//
//  1. the requester is a known, active participant;
//  2. the service exists and its provider is active;
//  3. some authorisation grants the requester the service;
//  4. one of them names the purpose;
//  5. one of those is active now;
//  6. for a service about a person: the requester has an integration on the
//     subject whose period contains now;
//  7. and whose capacity the authorisation lists.
//
// When several authorisations cover the request, the first one (in the
// order View returns them) that passes every rule is chosen.
func Decide(v View, q Request, now time.Time) crossroads.Decision {
	p, ok := v.Participant(q.Requester)
	if !ok {
		return deny(crossroads.ReasonUnknownParticipant)
	}
	if p.Status != crossroads.StatusActive {
		return deny(crossroads.ReasonParticipantSuspended)
	}
	svc, ok := v.Service(q.Service)
	if !ok {
		return deny(crossroads.ReasonUnknownService)
	}
	if prov, ok := v.Participant(svc.Provider); !ok || prov.Status != crossroads.StatusActive {
		return deny(crossroads.ReasonProviderSuspended)
	}
	auths := v.Authorisations(q.Requester, q.Service)
	if len(auths) == 0 {
		return deny(crossroads.ReasonNoAuthorisation)
	}
	reason := crossroads.ReasonPurposeNotCovered
	var integrations []crossroads.Integration
	integrationsLoaded := false
	for _, a := range auths {
		if !slices.Contains(a.Purposes, q.Purpose) {
			continue
		}
		if !a.ActiveAt(now) {
			reason = worse(reason, crossroads.ReasonAuthorisationNotActive)
			continue
		}
		if !svc.ConcernsPerson {
			return allow(a, q.Service)
		}
		if !integrationsLoaded {
			integrations = v.Integrations(q.Subject, q.Requester)
			integrationsLoaded = true
		}
		r := coveredBy(a, integrations, now)
		if r == crossroads.ReasonAllowed {
			return allow(a, q.Service)
		}
		reason = worse(reason, r)
	}
	return deny(reason)
}

// coveredBy checks the integrations against the authorisation's capacities.
func coveredBy(a *crossroads.Authorisation, integrations []crossroads.Integration, now time.Time) crossroads.Reason {
	active := false
	for i := range integrations {
		in := &integrations[i]
		if !in.ActiveAt(now) {
			continue
		}
		active = true
		for _, c := range a.Capacities {
			if c.Sector == in.Sector && c.Code == in.Capacity {
				return crossroads.ReasonAllowed
			}
		}
	}
	if !active {
		return crossroads.ReasonNoIntegration
	}
	return crossroads.ReasonCapacityNotCovered
}

// rank orders denial reasons by how far the request got: when several
// authorisations fail for different reasons, the most specific one is told.
var rank = map[crossroads.Reason]int{
	crossroads.ReasonPurposeNotCovered:      1,
	crossroads.ReasonAuthorisationNotActive: 2,
	crossroads.ReasonNoIntegration:          3,
	crossroads.ReasonCapacityNotCovered:     4,
}

func worse(a, b crossroads.Reason) crossroads.Reason {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func deny(r crossroads.Reason) crossroads.Decision {
	return crossroads.Decision{Reason: r}
}

func allow(a *crossroads.Authorisation, service string) crossroads.Decision {
	return crossroads.Decision{Allowed: true, Reason: crossroads.ReasonAllowed, Authorisation: a, Fields: a.Fields[service]}
}
