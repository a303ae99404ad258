package apply

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Action says what applying does to one entry.
type Action string

// Actions.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
)

// Change is what applying does to one entry of the file.
type Change struct {
	Kind   string // "participant", "service", "authorisation" or "integration"
	ID     string // the id; for an integration, its key
	Action Action
	Fields []FieldChange // for Update: the fields that change
}

// FieldChange is one field of an updated entry, rendered for people.
type FieldChange struct {
	Field string // as in the file, e.g. "validTo"
	Old   string
	New   string
}

// Plan is the difference between the registers and a network file.
type Plan struct {
	Changes []Change
	// Warnings are what applies but deserves attention (e.g. a service
	// without operations, which cannot be called).
	Warnings []Problem
	// Version is the registers' version after the apply (before it, for a
	// dry run, an apply that changes nothing or a refused one): the ETag
	// of the admin API.
	Version int64
	write   crossroads.Network
}

// HasChanges reports whether applying the plan writes anything.
func (p Plan) HasChanges() bool {
	return slices.ContainsFunc(p.Changes, func(c Change) bool { return c.Action != Unchanged })
}

// Network returns the entries that applying the plan writes.
func (p Plan) Network() *crossroads.Network {
	n := p.write
	return &n
}

// String renders the plan as a diff: "+" creates, "~" updates (one line
// per changed field), and a count of unchanged entries.
func (p Plan) String() string {
	var b strings.Builder
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "! %s\n", w)
	}
	warned := b.Len()
	unchanged := 0
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			fmt.Fprintf(&b, "+ %s %s\n", c.Kind, c.ID)
		case Update:
			for _, f := range c.Fields {
				fmt.Fprintf(&b, "~ %s %s: %s %s → %s\n", c.Kind, c.ID, f.Field, f.Old, f.New)
			}
		default:
			unchanged++
		}
	}
	switch {
	case b.Len() == warned:
		fmt.Fprintf(&b, "no changes (%d unchanged)\n", unchanged)
	case unchanged > 0:
		fmt.Fprintf(&b, "= %d unchanged\n", unchanged)
	}
	return b.String()
}

// Diff compares the desired entries with the current registers and the
// current integrations (at least those with the keys of desired's; others
// are ignored). Entries of current that desired does not mention are not
// part of the plan: applying never removes anything.
func Diff(current, desired *crossroads.Network, currentIntegrations []crossroads.Integration) Plan {
	if current == nil {
		current = &crossroads.Network{}
	}
	var plan Plan
	if desired == nil {
		return plan
	}
	add := func(kind, id string, exists bool, fields []FieldChange) bool {
		c := Change{Kind: kind, ID: id, Action: Unchanged}
		switch {
		case !exists:
			c.Action = Create
		case len(fields) > 0:
			c.Action, c.Fields = Update, fields
		}
		plan.Changes = append(plan.Changes, c)
		return c.Action != Unchanged
	}

	participants := index(current.Participants, func(p crossroads.Participant) string { return p.ID })
	for _, p := range desired.Participants {
		old, ok := participants[p.ID]
		if add("participant", p.ID, ok, diffParticipant(old, p)) {
			plan.write.Participants = append(plan.write.Participants, p)
		}
	}
	services := index(current.Services, func(s crossroads.Service) string { return s.ID })
	for _, s := range desired.Services {
		old, ok := services[s.ID]
		if add("service", s.ID, ok, diffService(old, s)) {
			plan.write.Services = append(plan.write.Services, s)
		}
	}
	auths := index(current.Authorisations, func(a crossroads.Authorisation) string { return a.ID })
	for _, a := range desired.Authorisations {
		old, ok := auths[a.ID]
		if add("authorisation", a.ID, ok, diffAuthorisation(old, a)) {
			plan.write.Authorisations = append(plan.write.Authorisations, a)
		}
	}
	diffSubscriptions(&plan, add, current, desired) // subscriptions.go
	ints := index(currentIntegrations, integrationKey)
	for _, in := range desired.Integrations {
		old, ok := ints[integrationKey(in)]
		var fields []FieldChange
		if ok && !old.To.Equal(in.To) {
			fields = append(fields, FieldChange{"to", fmtTime(old.To), fmtTime(in.To)})
		}
		if add("integration", integrationKey(in), ok, fields) {
			plan.write.Integrations = append(plan.write.Integrations, in)
		}
	}
	return plan
}

func index[T any](s []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(s))
	for _, v := range s {
		m[key(v)] = v
	}
	return m
}

// integrationKey renders the key of an integration, e.g.
// "cpas-gent 17/beneficiary 85073003328 from 2024-01-01".
func integrationKey(in crossroads.Integration) string {
	subject := in.Person
	if k := CanonicalKind(in.Kind); k != "" {
		subject = k + " " + in.Person
	}
	return fmt.Sprintf("%s %s/%s %s from %s", in.Participant, in.Sector, in.Capacity, subject, fmtTime(in.From))
}

type differ []FieldChange

func (d *differ) str(field, old, new string) {
	if old != new {
		*d = append(*d, FieldChange{field, strconv.Quote(old), strconv.Quote(new)})
	}
}

func (d *differ) list(field string, old, new []string) {
	if !slices.Equal(old, new) {
		*d = append(*d, FieldChange{field, fmtList(old), fmtList(new)})
	}
}

func (d *differ) time(field string, old, new time.Time) {
	if !old.Equal(new) {
		*d = append(*d, FieldChange{field, fmtTime(old), fmtTime(new)})
	}
}

func diffParticipant(old, new crossroads.Participant) []FieldChange {
	var d differ
	d.str("name", old.Name, new.Name)
	d.str("kind", old.Kind, new.Kind)
	d.str("status", old.Status, new.Status)
	d.str("incidentContact", old.IncidentContact, new.IncidentContact)
	d.str("enterprise", old.Enterprise, new.Enterprise)
	d.str("country", old.Country, new.Country)
	return d
}

func diffService(old, new crossroads.Service) []FieldChange {
	var d differ
	d.str("provider", old.Provider, new.Provider)
	d.str("baseUrl", old.BaseURL, new.BaseURL)
	d.str("description", old.Description, new.Description)
	if old.Classification != new.Classification {
		d = append(d, FieldChange{"classification", strconv.Itoa(old.Classification), strconv.Itoa(new.Classification)})
	}
	d.list("fields", old.Fields, new.Fields)
	if old.ConcernsPerson != new.ConcernsPerson {
		d = append(d, FieldChange{"concernsPerson", strconv.FormatBool(old.ConcernsPerson), strconv.FormatBool(new.ConcernsPerson)})
	}
	d.str("subject", old.Subject, new.Subject)
	// One line per operation added, removed or changed.
	var ids []string
	for _, o := range append(slices.Clone(old.Operations), new.Operations...) {
		if !slices.Contains(ids, o.ID) {
			ids = append(ids, o.ID)
		}
	}
	for _, id := range ids {
		o, inOld := old.Operation(id)
		n, inNew := new.Operation(id)
		switch {
		case !inOld:
			d = append(d, FieldChange{"operations." + id, "none", fmtOperation(n)})
		case !inNew:
			d = append(d, FieldChange{"operations." + id, fmtOperation(o), "none"})
		case fmtOperation(o) != fmtOperation(n):
			d = append(d, FieldChange{"operations." + id, fmtOperation(o), fmtOperation(n)})
		}
	}
	return d
}

// fmtOperation renders an operation on one line, e.g.
// `GET /persons/{subject} query ["lang"] fields ["/name"] body "application/json"`.
func fmtOperation(o *crossroads.Operation) string {
	s := o.Method + " " + o.Path
	if o.Kind != "" {
		s = o.Kind
	}
	if len(o.Query) > 0 {
		s += " query " + fmtList(o.Query)
	}
	if len(o.Fields) > 0 {
		s += " fields " + fmtList(o.Fields)
	}
	if o.Body != "" {
		s += " body " + strconv.Quote(o.Body)
	}
	return s
}

func diffAuthorisation(old, new crossroads.Authorisation) []FieldChange {
	var d differ
	d.str("reference", old.Reference, new.Reference)
	d.str("grantee", old.Grantee, new.Grantee)
	d.list("services", old.Services, new.Services)
	d.list("purposes", old.Purposes, new.Purposes)
	if !maps.EqualFunc(nonEmpty(old.Fields), nonEmpty(new.Fields), slices.Equal) {
		d = append(d, FieldChange{"fields", fmtFields(old.Fields), fmtFields(new.Fields)})
	}
	if !maps.EqualFunc(nonEmptyOps(old.Operations), nonEmptyOps(new.Operations), slices.Equal) {
		d = append(d, FieldChange{"operations", fmtFields(old.Operations), fmtFields(new.Operations)})
	}
	if !slices.EqualFunc(old.Capacities, new.Capacities, func(a, b crossroads.Capacity) bool { return canonicalCapacity(a) == canonicalCapacity(b) }) {
		d = append(d, FieldChange{"capacities", fmtCapacities(old.Capacities), fmtCapacities(new.Capacities)})
	}
	d.time("validFrom", old.ValidFrom, new.ValidFrom)
	d.time("validTo", old.ValidTo, new.ValidTo)
	d.str("status", old.Status, new.Status)
	if (old.Limits == nil) != (new.Limits == nil) || old.Limits != nil && *old.Limits != *new.Limits {
		d = append(d, FieldChange{"limits", fmtLimits(old.Limits), fmtLimits(new.Limits)})
	}
	d.str("kind", old.Kind, new.Kind)
	if o, n := fmtPermit(old.Permit), fmtPermit(new.Permit); o != n {
		d = append(d, FieldChange{"permit", o, n}) // permit.go
	}
	return d
}

// nonEmptyOps is the operations map with nil lists made empty (a service
// listed with no operation grants none; absent grants its GET operations).
func nonEmptyOps(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if v == nil {
			v = []string{}
		}
		out[k] = v
	}
	return out
}

// nonEmpty drops services granted no field: the same as not listing them.
func nonEmpty(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

func fmtTime(t time.Time) string {
	switch {
	case t.IsZero():
		return "none"
	case t.UTC().Format("15:04:05.999999999") == "00:00:00":
		return t.UTC().Format(time.DateOnly)
	default:
		return t.UTC().Format(time.RFC3339Nano)
	}
}

func fmtList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func fmtFields(m map[string][]string) string {
	m = nonEmpty(m)
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strconv.Quote(k) + ": " + fmtList(m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func fmtCapacities(cs []crossroads.Capacity) string {
	q := make([]string, len(cs))
	for i, c := range cs {
		q[i] = strconv.Quote(c.Sector + "/" + c.Code)
		if k := CanonicalKind(c.Kind); k != "" {
			q[i] = strconv.Quote(c.Sector + "/" + c.Code + " (" + k + ")")
		}
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func fmtLimits(l *crossroads.Limits) string {
	if l == nil {
		return "none"
	}
	return fmt.Sprintf("{ratePerSecond: %s, burst: %d, maxConcurrent: %d}", strconv.FormatFloat(l.RatePerSecond, 'g', -1, 64), l.Burst, l.MaxConcurrent)
}
