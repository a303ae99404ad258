// Package push is mutation push (issue 10; seed 001: the automatic
// communication of updates driven by the subscription table): an authentic
// source publishes a mutation about a person to the hub; the hub routes it
// to every eligible subscriber and delivers it, minimised to the
// subscriber's authorisation, sealed and audited, at least once and in
// order per (subscriber, person), by push (CloudEvents 1.0 over mutual TLS
// to the subscriber's https endpoint) or pull (a feed with an explicit
// acknowledgement cursor).
//
// # Publishing
//
// POST /v1/mutations/{serviceId}/{operationId}, by the service's provider
// (its client certificate), with a body {subject, effectiveDate, payload,
// idempotencyKey}. A subscription is eligible when it is active, follows
// that mutation, its subscriber is active and holds an active
// authorisation for the service, the mutation and the subscription's
// purpose, and an integration on the person in a capacity the subscription
// follows (and the authorisation names) whose period contains the
// effective date (seed 001: mutations are filtered by the integration
// period). The answer (202) says to how many subscribers the mutation was
// routed, never to whom.
//
// # One transaction with the audit trail
//
// The audit trail is its own store (on SQLite another file, audit.db), so
// the publication and its record cannot share a database transaction.
// The order makes them behave as one, in the manner of the integrations
// API: (1) the routing is computed; (2) the publication's audit record
// (RecordMutation, action publish, routed count in its detail) is
// committed — if it cannot be, the publisher gets 503 and nothing is
// stored, so a publication whose record failed is never delivered;
// (3) the publication and its outbox entries are written in one store
// transaction; (4) only then is 202 answered. A crash between 2 and 3
// leaves a record of a publication that was not stored and never
// acknowledged: the publisher, not having its 202, retries with the same
// idempotency key, which routes it then (a second record names the same
// key). A retry after 3 finds the stored publication by its key and is
// answered as the first was (duplicate: true), routed once. The same key
// with another body is refused (409 duplicate-mutation).
//
// # Delivery
//
// Worker claims the heads of the per-(subscriber, person) queues that are
// due, under a lease (on PostgreSQL with SELECT … FOR UPDATE SKIP LOCKED,
// on SQLite under its single writer), so that no two hub nodes ever
// deliver for the same queue at once and a queue is delivered in
// publication order. Each entry is minimised to the subscriber's
// authorisation, sealed (Crossroads-Seal, as an exchange response),
// recorded as an exchange of the subscriber about the person (the citizen
// sees it) before it leaves the hub, then sent — the same sealed bytes on
// every attempt — with exponential backoff and jitter, until it is
// acknowledged (2xx) or its horizon passes (dead letter, recorded). An
// operator redelivers (recorded). Pull entries are sealed the same way and
// wait in the feed until the subscriber acknowledges them.
package push

import "github.com/crossroads-hub/crossroads/push/outbox"

// The outbox's data and store (package outbox).
type (
	Publication = outbox.Publication
	Sealed      = outbox.Sealed
	Entry       = outbox.Entry
	EntryQuery  = outbox.EntryQuery
	Store       = outbox.Store
)

// Entry states (outbox).
const (
	StatePending   = outbox.StatePending
	StateAvailable = outbox.StateAvailable
	StateDelivered = outbox.StateDelivered
	StateDead      = outbox.StateDead
	StateDropped   = outbox.StateDropped
)
