package apply

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
)

// Problem is one reason a network file cannot be applied.
type Problem struct {
	Path    string // where, e.g. "authorisations[2].services[0]"
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Problems is every problem Validate found. It is an error that matches
// crossroads.ErrInvalid under errors.Is.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	if len(ps) == 1 {
		b.WriteString("1 problem in network file:")
	} else {
		fmt.Fprintf(&b, "%d problems in network file:", len(ps))
	}
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(ps, crossroads.ErrInvalid) true.
func (ps Problems) Is(target error) bool { return target == crossroads.ErrInvalid }

var (
	idPattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	purposePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	participantKinds = []string{crossroads.KindInstitution, crossroads.KindAuthenticSource, crossroads.KindNationalBackend, crossroads.KindOperator, crossroads.KindAuditor, crossroads.KindEnterpriseRepresentative}
)

// world is the registers as they would be after the apply (or before).
type world struct {
	participants map[string]crossroads.Participant
	services     map[string]crossroads.Service
	// capacities[grantee] holds the capacities named by the grantee's
	// authorisations that are not revoked (kinds canonical: person is "").
	capacities map[string]map[crossroads.Capacity]bool
	kinds      personid.Kinds
}

// activeOperators counts the active operator participants.
func (w *world) activeOperators() int {
	n := 0
	for _, p := range w.participants {
		if p.Kind == crossroads.KindOperator && p.Status == crossroads.StatusActive {
			n++
		}
	}
	return n
}

func activeOperators(ps []crossroads.Participant) int {
	n := 0
	for _, p := range ps {
		if p.Kind == crossroads.KindOperator && p.Status == crossroads.StatusActive {
			n++
		}
	}
	return n
}

// CanonicalKind returns the canonical form of a subject kind: the person
// kind is the empty kind.
func CanonicalKind(k string) string {
	if k == crossroads.SubjectPerson {
		return ""
	}
	return k
}

// canonicalCapacity is c with its kind canonical, as capacities are compared.
func canonicalCapacity(c crossroads.Capacity) crossroads.Capacity {
	c.Kind = CanonicalKind(c.Kind)
	return c
}

func newWorld(layers ...*crossroads.Network) *world {
	w := &world{participants: map[string]crossroads.Participant{}, services: map[string]crossroads.Service{}, capacities: map[string]map[crossroads.Capacity]bool{}}
	auths := map[string]crossroads.Authorisation{}
	for _, n := range layers {
		if n == nil {
			continue
		}
		for _, p := range n.Participants {
			w.participants[p.ID] = p
		}
		for _, s := range n.Services {
			w.services[s.ID] = s
		}
		for _, a := range n.Authorisations {
			auths[a.ID] = a
		}
	}
	for _, a := range auths {
		if a.Status == crossroads.StatusRevoked {
			continue
		}
		if w.capacities[a.Grantee] == nil {
			w.capacities[a.Grantee] = map[crossroads.Capacity]bool{}
		}
		for _, c := range a.Capacities {
			w.capacities[a.Grantee][canonicalCapacity(c)] = true
		}
	}
	return w
}

type problems struct {
	list     Problems
	warnings []Problem
}

func (ps *problems) warn(path, format string, args ...any) {
	ps.warnings = append(ps.warnings, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) add(path, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate checks n completely against itself and against current (the
// registers as they are; may be nil) and returns every problem at once as
// Problems, or nil. References may point into n or into current; where both
// have an entry with the same id, n's wins, as it will after the apply.
//
// Validate also checks that the entries of current that n does not mention
// stay valid once n's entries replace theirs (a provider changing kind, a
// service dropping a field an authorisation grants), reporting only what n
// would break. Integrations are checked against scheme (nil: INSZ) and their
// person ids are replaced, in n, by the canonical form.
func Validate(n *crossroads.Network, current *crossroads.Network, scheme personid.Scheme) error {
	_, err := Check(n, current, personid.DefaultKinds(scheme))
	return err
}

// Check is Validate for a network whose subject kinds are kinds (nil:
// personid.DefaultKinds(nil)); it also returns warnings: what applies but
// deserves attention (a service without operations cannot be called).
func Check(n *crossroads.Network, current *crossroads.Network, kinds personid.Kinds) (warnings []Problem, err error) {
	if n == nil {
		return nil, Problems{{Path: "", Message: "no network"}}
	}
	if kinds == nil {
		kinds = personid.DefaultKinds(nil)
	}
	var ps problems
	w := newWorld(current, n)
	w.kinds = kinds

	seen, countries := map[string]int{}, map[string]int{}
	for i, p := range n.Participants {
		path := fmt.Sprintf("participants[%d]", i)
		ps.id(path, "participants", p.ID, seen, i)
		if !slices.Contains(participantKinds, p.Kind) {
			ps.add(path+".kind", "%q is not a participant kind (%s)", p.Kind, strings.Join(participantKinds, ", "))
		}
		// A representative names the one enterprise it represents (stored
		// canonical); no other kind names one.
		switch {
		case p.Kind == crossroads.KindEnterpriseRepresentative:
			if c, err := (personid.Enterprise{}).Canonical(p.Enterprise); err != nil {
				ps.add(path+".enterprise", "an enterprise representative needs a valid enterprise number")
			} else {
				n.Participants[i].Enterprise = c
			}
		case p.Enterprise != "":
			ps.add(path+".enterprise", "only participants of kind %s name an enterprise", crossroads.KindEnterpriseRepresentative)
		}
		// A national backend of the federation gateway names its country
		// (the origin of its keys), one backend per country; a peer hub of
		// another profile (secure processing) names none, and the gateway
		// refuses it. No other kind names a country.
		switch {
		case p.Kind == crossroads.KindNationalBackend && p.Country == "":
		case p.Kind == crossroads.KindNationalBackend:
			if !validCountry(p.Country) {
				ps.add(path+".country", "a national backend needs its country code (ISO 3166-1 alpha-2, upper case)")
			} else if j, dup := countries[p.Country]; dup {
				ps.add(path+".country", "country %s is already the country of participants[%d]", p.Country, j)
			} else {
				countries[p.Country] = i
			}
		case p.Country != "":
			ps.add(path+".country", "only participants of kind %s name a country", crossroads.KindNationalBackend)
		}
		if p.Status != crossroads.StatusActive && p.Status != crossroads.StatusSuspended {
			ps.add(path+".status", "%q is not a participant status (active, suspended)", p.Status)
		}
	}
	clear(seen)
	for i, s := range n.Services {
		path := fmt.Sprintf("services[%d]", i)
		ps.id(path, "services", s.ID, seen, i)
		ps.service(path, s, w)
	}
	clear(seen)
	for i, a := range n.Authorisations {
		path := fmt.Sprintf("authorisations[%d]", i)
		ps.id(path, "authorisations", a.ID, seen, i)
		ps.authorisation(path, a, w)
	}
	ps.integrations(n.Integrations, w)
	ps.subscriptions(n, current, w) // subscriptions.go
	ps.current(n, current, w)
	if current != nil && activeOperators(current.Participants) > 0 && w.activeOperators() == 0 {
		ps.add("participants", "this change would leave no active operator: the hub could then only be managed from its host (keep at least one operator participant active)")
	}
	if len(ps.list) == 0 {
		return ps.warnings, nil
	}
	return ps.warnings, ps.list
}

func (ps *problems) id(path, register, id string, seen map[string]int, i int) {
	switch {
	case id == "":
		ps.add(path+".id", "id is required")
	case !idPattern.MatchString(id):
		ps.add(path+".id", "%q is not a valid id (1–63 of a-z 0-9 . _ -, starting with a letter or digit)", id)
	case register == "participants" && id == pki.HubParticipant:
		ps.add(path+".id", "%q is reserved for the hub itself", id)
	default:
		if j, dup := seen[id]; dup {
			ps.add(path+".id", "duplicate id %q (also %s[%d])", id, register, j)
		} else {
			seen[id] = i
		}
	}
}

func (ps *problems) service(path string, s crossroads.Service, w *world) {
	switch p, ok := w.participants[s.Provider]; {
	case s.Provider == "":
		ps.add(path+".provider", "provider is required")
	case !ok:
		ps.add(path+".provider", "unknown participant %q", s.Provider)
	case p.Kind != crossroads.KindAuthenticSource && p.Kind != crossroads.KindNationalBackend:
		ps.add(path+".provider", "participant %q is %s %s; a provider must be an authentic-source or a national-backend", s.Provider, article(p.Kind), p.Kind)
	}
	if msg := checkBaseURL(s.BaseURL); msg != "" {
		ps.add(path+".baseUrl", "%s", msg)
	}
	if s.Classification < 0 || s.Classification > 4 {
		ps.add(path+".classification", "%d is not a classification (0–4)", s.Classification)
	}
	for j, f := range s.Fields {
		if msg := checkPointer(f); msg != "" {
			ps.add(fmt.Sprintf("%s.fields[%d]", path, j), "%s", msg)
		}
	}
	ps.subject(path, s, w)
	ps.operations(path, s)
}

// subject checks the kind of subject a service is about.
func (ps *problems) subject(path string, s crossroads.Service, w *world) {
	switch {
	case s.Subject == "" || s.Subject == crossroads.SubjectNone:
	case w.kinds != nil && w.kinds[s.Subject] != nil:
	default:
		ps.add(path+".subject", "%q is not a subject kind of this network (%s)", s.Subject, strings.Join(kindNames(w.kinds), ", "))
		return
	}
	if s.ConcernsPerson && s.Subject != "" && s.Subject != crossroads.SubjectPerson {
		ps.add(path+".concernsPerson", "concernsPerson: true contradicts subject: %s (drop concernsPerson, which subject replaces)", s.Subject)
	}
}

// kindNames lists the subject kinds a service may name, none included.
func kindNames(k personid.Kinds) []string {
	names := []string{crossroads.SubjectNone}
	for name := range k {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// operations checks a service's operations (operation.CheckService: ids,
// methods, templates, {subject} in every path of a service about a
// subject, query parameters, bodies, fields) and warns about a service
// without any, which applies but cannot be called.
func (ps *problems) operations(path string, s crossroads.Service) {
	if len(s.Operations) == 0 {
		ps.warn(path+".operations", "service %q declares no operations: it cannot be called until it does", s.ID)
	}
	for _, err := range checkOperations(s) {
		ps.add(path+".operations", "%s", strings.TrimPrefix(err.Error(), crossroads.ErrInvalid.Error()+": "))
	}
}

func article(kind string) string {
	if kind != "" && strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an"
	}
	return "a"
}

func checkBaseURL(s string) string {
	if s == "" {
		return "baseUrl is required"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "https":
		return fmt.Sprintf("%q is not an https URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return "must not contain user info"
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Sprintf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Sprintf("%q must not have a fragment", s)
	case u.Opaque != "":
		return fmt.Sprintf("%q is not an absolute https URL", s)
	}
	return ""
}

// checkPointer checks an RFC 6901 JSON pointer: "" or "/"-separated
// reference tokens in which "~" only appears as "~0" or "~1".
func checkPointer(p string) string {
	if p == "" {
		return ""
	}
	if !utf8.ValidString(p) {
		return "JSON pointer is not valid UTF-8"
	}
	if p[0] != '/' {
		return fmt.Sprintf("%q is not a JSON pointer: must be empty or start with \"/\"", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Sprintf("%q is not a JSON pointer: \"~\" must be followed by 0 or 1", p)
		}
	}
	return ""
}

// covers reports whether granting pointer g is within what a service
// listing f may return: g is f, an ancestor of f (granting "/address"
// covers "/address/street"), or a part of f ("/address/street" when the
// service returns all of "/address").
func covers(g, f string) bool {
	return g == f || strings.HasPrefix(f, g+"/") || strings.HasPrefix(g, f+"/")
}

func (ps *problems) authorisation(path string, a crossroads.Authorisation, w *world) {
	if a.Grantee == "" {
		ps.add(path+".grantee", "grantee is required")
	} else if _, ok := w.participants[a.Grantee]; !ok {
		ps.add(path+".grantee", "unknown participant %q", a.Grantee)
	}
	switch a.Status {
	case crossroads.StatusActive, crossroads.StatusSuspended, crossroads.StatusRevoked:
	default:
		ps.add(path+".status", "%q is not an authorisation status (active, suspended, revoked)", a.Status)
	}
	if len(a.Services) == 0 && a.Kind != crossroads.KindDataPermit {
		ps.add(path+".services", "at least one service is required")
	}
	ps.permit(path, a, w) // kind and terms of a data permit (permit.go)
	for j, s := range a.Services {
		p := fmt.Sprintf("%s.services[%d]", path, j)
		if _, ok := w.services[s]; !ok {
			ps.add(p, "unknown service %q", s)
		}
		if k := slices.Index(a.Services, s); k < j {
			ps.add(p, "service %q listed twice", s)
		}
	}
	if len(a.Purposes) == 0 {
		ps.add(path+".purposes", "at least one purpose is required")
	}
	for j, p := range a.Purposes {
		if !purposePattern.MatchString(p) {
			ps.add(fmt.Sprintf("%s.purposes[%d]", path, j), "%q is not a valid purpose (a-z 0-9 . _ -, starting with a letter or digit)", p)
		}
	}
	keys := make([]string, 0, len(a.Fields))
	for k := range a.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kp := fmt.Sprintf("%s.fields[%s]", path, strconv.Quote(k))
		if !slices.Contains(a.Services, k) {
			ps.add(kp, "%q is not one of the services of this authorisation", k)
		}
		svc, known := w.services[k]
		for j, f := range a.Fields[k] {
			fp := fmt.Sprintf("%s[%d]", kp, j)
			if msg := checkPointer(f); msg != "" {
				ps.add(fp, "%s", msg)
				continue
			}
			if f == crossroads.WholePayload || !known {
				continue
			}
			if !slices.ContainsFunc(svc.Fields, func(sf string) bool { return covers(f, sf) }) {
				ps.add(fp, "service %q does not list %q among its fields", k, f)
			}
		}
	}
	if !a.ValidTo.IsZero() && !a.ValidTo.After(a.ValidFrom) {
		ps.add(path+".validTo", "validTo must be after validFrom")
	}
	for j, c := range a.Capacities {
		p := fmt.Sprintf("%s.capacities[%d]", path, j)
		if c.Sector == "" {
			ps.add(p+".sector", "sector is required")
		}
		if c.Code == "" {
			ps.add(p+".code", "code is required")
		}
		if c.Kind != "" && (w.kinds == nil || w.kinds[c.Kind] == nil) {
			ps.add(p+".kind", "%q is not a subject kind of this network", c.Kind)
		}
	}
	var ops []string
	for k := range a.Operations {
		ops = append(ops, k)
	}
	slices.Sort(ops)
	for _, k := range ops {
		// Paths are made only for problems: this runs for every
		// authorisation of the registers on every apply.
		kp := func() string { return fmt.Sprintf("%s.operations[%s]", path, strconv.Quote(k)) }
		if !slices.Contains(a.Services, k) {
			ps.add(kp(), "%q is not one of the services of this authorisation", k)
		}
		svc, known := w.services[k]
		for j, id := range a.Operations[k] {
			if !known {
				continue
			}
			if _, ok := svc.Operation(id); !ok {
				ps.add(fmt.Sprintf("%s[%d]", kp(), j), "service %q has no operation %q", k, id)
			}
		}
	}
	if l := a.Limits; l != nil {
		if l.RatePerSecond < 0 || math.IsNaN(l.RatePerSecond) || math.IsInf(l.RatePerSecond, 0) {
			ps.add(path+".limits.ratePerSecond", "must be a non-negative number")
		}
		if l.Burst < 0 {
			ps.add(path+".limits.burst", "must not be negative")
		}
		if l.MaxConcurrent < 0 {
			ps.add(path+".limits.maxConcurrent", "must not be negative")
		}
	}
}

func (ps *problems) integrations(ins []crossroads.Integration, w *world) {
	type key struct {
		kind, person, participant, sector, capacity string
		from                                        int64
	}
	seen := map[key]int{}
	for i := range ins {
		in := &ins[i]
		path := fmt.Sprintf("integrations[%d]", i)
		ok := checkIntegration(ps, path, in, w.kinds, w)
		if ok {
			k := key{in.Kind, in.Person, in.Participant, in.Sector, in.Capacity, in.From.UnixNano()}
			if j, dup := seen[k]; dup {
				ps.add(path, "duplicate of integrations[%d]", j)
			} else {
				seen[k] = i
			}
		}
	}
}

// IntegrationView is what validating one integration needs: the
// participants and, per participant, the capacities its authorisations
// that are not revoked name. directory.Snapshot implements it with maps, so
// that checking an integration costs O(1) in the size of the registers.
type IntegrationView interface {
	Participant(id string) (*crossroads.Participant, bool)
	// HoldsCapacity reports whether participant's authorisations (not
	// revoked) name c; c.Kind is canonical (person is "").
	HoldsCapacity(participant string, c crossroads.Capacity) bool
}

func (w *world) Participant(id string) (*crossroads.Participant, bool) {
	p, ok := w.participants[id]
	return &p, ok
}

func (w *world) HoldsCapacity(participant string, c crossroads.Capacity) bool {
	return w.capacities[participant][c]
}

// CheckIntegration validates one integration against view, with the rules
// of a network file: subject id valid under its kind's scheme (kinds nil:
// personid.DefaultKinds(nil)), participant known, sector and capacity
// given and named by one of the participant's authorisations, period
// sound. It canonicalises in's kind and subject id. The cost does not
// depend on the size of the registers.
func CheckIntegration(in *crossroads.Integration, kinds personid.Kinds, view IntegrationView) error {
	if kinds == nil {
		kinds = personid.DefaultKinds(nil)
	}
	var ps problems
	checkIntegration(&ps, "integration", in, kinds, view)
	if len(ps.list) == 0 {
		return nil
	}
	return ps.list
}

// checkIntegration reports in's problems and whether its key is sound.
func checkIntegration(ps *problems, path string, in *crossroads.Integration, kinds personid.Kinds, view IntegrationView) bool {
	in.Kind = CanonicalKind(in.Kind)
	keyOK := true
	kindName := in.Kind
	if kindName == "" {
		kindName = crossroads.SubjectPerson
	}
	if scheme := kinds[kindName]; scheme == nil {
		ps.add(path+".kind", "%q is not a subject kind of this network", in.Kind)
		keyOK = false
	} else if canonical, err := scheme.Canonical(in.Person); err != nil {
		ps.add(path+".person", "not a valid %s %s id: %v", scheme.Name(), kindName, err)
		keyOK = false
	} else {
		in.Person = canonical
	}
	if in.Participant == "" {
		ps.add(path+".participant", "participant is required")
	} else if _, ok := view.Participant(in.Participant); !ok {
		ps.add(path+".participant", "unknown participant %q", in.Participant)
	}
	if in.Sector == "" {
		ps.add(path+".sector", "sector is required")
	}
	if in.Capacity == "" {
		ps.add(path+".capacity", "capacity is required")
	}
	if !in.To.IsZero() && !in.To.After(in.From) {
		ps.add(path+".to", "to must be after from")
	}
	if in.Participant != "" && in.Sector != "" && in.Capacity != "" &&
		!view.HoldsCapacity(in.Participant, crossroads.Capacity{Sector: in.Sector, Code: in.Capacity, Kind: in.Kind}) {
		ps.add(path+".capacity", "participant %q holds no authorisation naming capacity %s/%s for %s %s", in.Participant, in.Sector, in.Capacity, article(kindName), kindName)
	}
	return keyOK
}

// current reports what n would break in entries of current it leaves as
// they are: only problems that the entry does not already have.
func (ps *problems) current(n, current *crossroads.Network, after *world) {
	if current == nil {
		return
	}
	before := newWorld(current)
	services, auths := map[string]bool{}, map[string]bool{}
	for _, s := range n.Services {
		services[s.ID] = true
	}
	for _, a := range n.Authorisations {
		auths[a.ID] = true
	}
	newOnly := func(check func(*problems, *world)) {
		var was, will problems
		check(&was, before)
		check(&will, after)
		for _, p := range will.list {
			if !slices.Contains(was.list, p) {
				ps.list = append(ps.list, p)
			}
		}
	}
	for _, s := range current.Services {
		if services[s.ID] {
			continue
		}
		path := fmt.Sprintf("current service %q", s.ID)
		newOnly(func(ps *problems, w *world) { ps.service(path, s, w) })
	}
	for _, a := range current.Authorisations {
		if auths[a.ID] {
			continue
		}
		path := fmt.Sprintf("current authorisation %q", a.ID)
		newOnly(func(ps *problems, w *world) { ps.authorisation(path, a, w) })
	}
}

// validCountry reports whether c is two upper-case ASCII letters (an ISO
// 3166-1 alpha-2 code, as the federation gateway's origin field carries).
func validCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}
