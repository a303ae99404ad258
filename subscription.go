package crossroads

// Mutation push (issue 10, seed 001: "automatic communication of updates",
// driven by the subscription table of the reference directory: which
// participants want to receive which mutations, for which persons, in
// which capacity).

// Operation kinds (Operation.Kind).
const (
	// OperationCall is an ordinary operation: a call the hub forwards.
	OperationCall = ""
	// OperationMutation is a mutation the service's provider publishes to
	// the hub (POST /v1/mutations/{service}/{operation}); it declares no
	// method or path, only the fields its payload may carry. The exchange
	// never matches it.
	OperationMutation = "mutation"
)

// Delivery modes of a subscription.
const (
	DeliveryPush = "push" // POSTed to the subscriber's https endpoint over mTLS
	DeliveryPull = "pull" // read from GET /v1/subscriptions/{id}/events
)

// Subscription is one row of the subscription table: Subscriber wants the
// mutations Operation (of kind mutation) of Service, for the persons on
// which it holds a file in one of Capacities, for Purpose. It is covered
// by an authorisation of Subscriber for the service, the operation and the
// purpose, whose fields bound what each delivery carries.
type Subscription struct {
	ID         string     `json:"id" yaml:"id"`
	Subscriber string     `json:"subscriber" yaml:"subscriber"`
	Service    string     `json:"service" yaml:"service"`
	Operation  string     `json:"operation" yaml:"operation"`
	Purpose    string     `json:"purpose" yaml:"purpose"`
	Capacities []Capacity `json:"capacities" yaml:"capacities"`
	Delivery   string     `json:"delivery" yaml:"delivery"`                     // DeliveryPush or DeliveryPull
	Endpoint   string     `json:"endpoint,omitempty" yaml:"endpoint,omitempty"` // https URL, for push
	Status     string     `json:"status" yaml:"status"`                         // StatusActive or StatusSuspended
}

// Follows reports whether the subscription follows capacity c of an
// integration (sector and code; kinds compared canonically).
func (s *Subscription) Follows(in *Integration) bool {
	for _, c := range s.Capacities {
		if c.Sector == in.Sector && c.Code == in.Capacity && canonKind(c.Kind) == canonKind(in.Kind) {
			return true
		}
	}
	return false
}

func canonKind(k string) string {
	if k == SubjectPerson {
		return ""
	}
	return k
}

// Reasons of mutation push and the subscriptions register.
const (
	ReasonUnknownSubscription Reason = "unknown-subscription" // 404: no such subscription (or not the caller's)
	ReasonNotSubscriber       Reason = "not-subscriber"       // 403: a participant manages and reads only its own subscriptions
	ReasonInvalidSubscription Reason = "invalid-subscription" // 422: the subscription breaks a rule of the registers
	ReasonNotPublisher        Reason = "not-publisher"        // 403: only the service's provider publishes its mutations
	ReasonUnknownMutation     Reason = "unknown-mutation"     // 404: the service declares no mutation of that id
	ReasonInvalidMutation     Reason = "invalid-mutation"     // 400: the mutation body is malformed
	ReasonDuplicateMutation   Reason = "duplicate-mutation"   // 409: the idempotency key was used for another mutation
	ReasonInvalidCursor       Reason = "invalid-cursor"       // 400: after/ack is not a sequence number of the feed
	ReasonNotPull             Reason = "not-pull"             // 409: the feed of a push subscription
)
