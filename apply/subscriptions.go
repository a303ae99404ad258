package apply

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/crossroads-hub/crossroads"
)

// The subscription table (issue 10): a subscription names an active
// subscriber, a mutation (an operation of kind mutation) of a service, a
// purpose and the capacities it follows, and is covered by an authorisation
// of the subscriber for that service, mutation and purpose, naming those
// capacities; a push subscription names the https endpoint the hub
// delivers to.

// SubscriptionView is what validating one subscription needs.
type SubscriptionView interface {
	Participant(id string) (*crossroads.Participant, bool)
	Service(id string) (*crossroads.Service, bool)
	Authorisations(grantee, service string) []*crossroads.Authorisation
}

// CheckSubscription validates one subscription against view (the
// self-service path); the problems come as Problems (ErrInvalid).
func CheckSubscription(s *crossroads.Subscription, view SubscriptionView) error {
	var ps problems
	if !idPattern.MatchString(s.ID) {
		ps.add("id", "%q is not a valid id (1–63 of a-z 0-9 . _ -, starting with a letter or digit)", s.ID)
	}
	checkSubscription(&ps, "", s, view)
	if len(ps.list) > 0 {
		return ps.list
	}
	return nil
}

func (ps *problems) subscriptions(n, current *crossroads.Network, w *world) {
	if len(n.Subscriptions) == 0 {
		return
	}
	view := &netView{w: w, auths: map[[2]string][]*crossroads.Authorisation{}}
	seenAuth := map[string]bool{}
	for _, layer := range []*crossroads.Network{n, current} { // n's entries win
		if layer == nil {
			continue
		}
		for i := range layer.Authorisations {
			a := &layer.Authorisations[i]
			if seenAuth[a.ID] {
				continue
			}
			seenAuth[a.ID] = true
			for _, svc := range a.Services {
				k := [2]string{a.Grantee, svc}
				view.auths[k] = append(view.auths[k], a)
			}
		}
	}
	seen := map[string]int{}
	for i := range n.Subscriptions {
		path := fmt.Sprintf("subscriptions[%d]", i)
		ps.id(path, "subscriptions", n.Subscriptions[i].ID, seen, i)
		checkSubscription(ps, path+".", &n.Subscriptions[i], view)
	}
}

type netView struct {
	w     *world
	auths map[[2]string][]*crossroads.Authorisation
}

func (v *netView) Participant(id string) (*crossroads.Participant, bool) {
	p, ok := v.w.participants[id]
	return &p, ok
}

func (v *netView) Service(id string) (*crossroads.Service, bool) {
	s, ok := v.w.services[id]
	return &s, ok
}

func (v *netView) Authorisations(grantee, service string) []*crossroads.Authorisation {
	return v.auths[[2]string{grantee, service}]
}

func checkSubscription(ps *problems, path string, s *crossroads.Subscription, view SubscriptionView) {
	switch p, ok := view.Participant(s.Subscriber); {
	case s.Subscriber == "":
		ps.add(path+"subscriber", "subscriber is required")
	case !ok:
		ps.add(path+"subscriber", "unknown participant %q", s.Subscriber)
	case p.Status != crossroads.StatusActive && s.Status == crossroads.StatusActive:
		ps.add(path+"subscriber", "participant %q is not active: its subscriptions cannot be", s.Subscriber)
	}
	svc, ok := view.Service(s.Service)
	var op *crossroads.Operation
	switch {
	case s.Service == "":
		ps.add(path+"service", "service is required")
	case !ok:
		ps.add(path+"service", "unknown service %q", s.Service)
	default:
		if op, ok = svc.Operation(s.Operation); !ok || op.Kind != crossroads.OperationMutation {
			ps.add(path+"operation", "service %q declares no mutation %q (an operation of kind %s)", s.Service, s.Operation, crossroads.OperationMutation)
			op = nil
		}
	}
	if !purposePattern.MatchString(s.Purpose) {
		ps.add(path+"purpose", "%q is not a purpose", s.Purpose)
	}
	if len(s.Capacities) == 0 {
		ps.add(path+"capacities", "a subscription follows at least one capacity (seed 001: the persons it holds a file on in that capacity)")
	}
	switch s.Delivery {
	case crossroads.DeliveryPush:
		if msg := checkEndpoint(s.Endpoint); msg != "" {
			ps.add(path+"endpoint", "%s", msg)
		}
	case crossroads.DeliveryPull:
		if s.Endpoint != "" {
			ps.add(path+"endpoint", "a pull subscription has no endpoint")
		}
	default:
		ps.add(path+"delivery", "%q is not a delivery mode (push, pull)", s.Delivery)
	}
	if s.Status != crossroads.StatusActive && s.Status != crossroads.StatusSuspended {
		ps.add(path+"status", "%q is not a subscription status (active, suspended)", s.Status)
	}
	if op == nil || s.Status != crossroads.StatusActive {
		return
	}
	// Covered by an authorisation (not revoked) for the service, the
	// mutation and the purpose, naming every capacity followed.
	for _, a := range view.Authorisations(s.Subscriber, s.Service) {
		if a.Status == crossroads.StatusRevoked || !slices.Contains(a.Purposes, s.Purpose) || !a.GrantsOperation(s.Service, op) {
			continue
		}
		if covered(a.Capacities, s.Capacities) {
			return
		}
	}
	ps.add(path+"purpose", "no authorisation of %q covers mutation %s/%s for purpose %q and the capacities followed", s.Subscriber, s.Service, s.Operation, s.Purpose)
}

func covered(granted, followed []crossroads.Capacity) bool {
	for _, c := range followed {
		c = canonicalCapacity(c)
		if !slices.ContainsFunc(granted, func(g crossroads.Capacity) bool { return canonicalCapacity(g) == c }) {
			return false
		}
	}
	return true
}

// checkEndpoint checks a push endpoint: an absolute https URL with a host,
// no credentials, no fragment.
func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "a push subscription needs an endpoint (https URL)"
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("%q is not an https URL", s)
	case u.User != nil:
		return "the endpoint must not carry credentials"
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "the endpoint must not have a fragment"
	case len(s) > 2048:
		return "the endpoint is longer than 2048 bytes"
	}
	return ""
}

// diffSubscriptions adds the subscriptions of desired to plan.
func diffSubscriptions(plan *Plan, add func(kind, id string, exists bool, fields []FieldChange) bool, current, desired *crossroads.Network) {
	subs := index(current.Subscriptions, func(s crossroads.Subscription) string { return s.ID })
	for _, s := range desired.Subscriptions {
		old, ok := subs[s.ID]
		var d differ
		d.str("subscriber", old.Subscriber, s.Subscriber)
		d.str("service", old.Service, s.Service)
		d.str("operation", old.Operation, s.Operation)
		d.str("purpose", old.Purpose, s.Purpose)
		if a, b := fmtCapacities(old.Capacities), fmtCapacities(s.Capacities); a != b {
			d = append(d, FieldChange{"capacities", a, b})
		}
		d.str("delivery", old.Delivery, s.Delivery)
		d.str("endpoint", old.Endpoint, s.Endpoint)
		d.str("status", old.Status, s.Status)
		if add("subscription", s.ID, ok, d) {
			plan.write.Subscriptions = append(plan.write.Subscriptions, s)
		}
	}
}
