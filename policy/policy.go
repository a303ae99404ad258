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

// Request is what is asked: who, which service and operation, why, about
// whom.
type Request struct {
	Requester string
	Service   string
	// Operation is the service operation matched (operation.Matcher). Nil:
	// no operation rule is applied — only for callers that check the
	// registers rather than a call; the exchange pipeline always sets it.
	Operation *crossroads.Operation
	Purpose   string
	// SubjectKind is the kind of Subject; empty: the service's kind. A
	// kind other than the service's is refused (invalid-subject).
	SubjectKind string
	Subject     string // canonical id of the subject's scheme; empty for services about no one
}

// Decide applies the rules of design §2 in a fixed order, so that the
// reason of a denial is the first rule that fails:
//
//  1. the requester is a known, active participant;
//  2. the service exists and its provider is active;
//  3. some authorisation grants the requester the service;
//  4. one of them names the purpose;
//  5. one of those is active now;
//  6. and grants the operation (Authorisation.GrantsOperation);
//  7. for a service about a subject (a person, an enterprise): the
//     requester has an integration on the subject, of the service's subject
//     kind, whose period contains now;
//  8. and whose capacity, of that kind, the authorisation lists.
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
	kind := svc.SubjectKind()
	if q.SubjectKind != "" && q.SubjectKind != kind {
		return deny(crossroads.ReasonInvalidSubject)
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
		if q.Operation != nil && !a.GrantsOperation(q.Service, q.Operation) {
			reason = worse(reason, crossroads.ReasonOperationNotCovered)
			continue
		}
		if kind == crossroads.SubjectNone {
			return allow(a, q.Service)
		}
		if !integrationsLoaded {
			integrations = v.Integrations(crossroads.SubjectKey(kind, q.Subject), q.Requester)
			integrationsLoaded = true
		}
		r := coveredBy(a, kind, integrations, now)
		if r == crossroads.ReasonAllowed {
			return allow(a, q.Service)
		}
		reason = worse(reason, r)
	}
	return deny(reason)
}

// coveredBy checks the integrations of the subject kind against the
// authorisation's capacities of that kind.
func coveredBy(a *crossroads.Authorisation, kind string, integrations []crossroads.Integration, now time.Time) crossroads.Reason {
	active := false
	for i := range integrations {
		in := &integrations[i]
		if !in.ActiveAt(now) || kindOf(in.Kind) != kind {
			continue
		}
		active = true
		for _, c := range a.Capacities {
			if c.Sector == in.Sector && c.Code == in.Capacity && kindOf(c.Kind) == kind {
				return crossroads.ReasonAllowed
			}
		}
	}
	if !active {
		return crossroads.ReasonNoIntegration
	}
	return crossroads.ReasonCapacityNotCovered
}

// kindOf reads an integration's or capacity's kind (empty: person).
func kindOf(k string) string {
	if k == "" {
		return crossroads.SubjectPerson
	}
	return k
}

// rank orders denial reasons by how far the request got: when several
// authorisations fail for different reasons, the most specific one is told.
var rank = map[crossroads.Reason]int{
	crossroads.ReasonPurposeNotCovered:      1,
	crossroads.ReasonAuthorisationNotActive: 2,
	crossroads.ReasonOperationNotCovered:    3,
	crossroads.ReasonNoIntegration:          4,
	crossroads.ReasonCapacityNotCovered:     5,
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
