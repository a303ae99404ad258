// Package directory keeps the registers and the person directory in memory
// for the preventive check, in front of a durable crossroads.RegisterStore.
//
// Writes go to the store first and reach memory only once durable, so the
// check never allows on the strength of something a crash would forget.
// Reads take no lock on the registers (an immutable snapshot behind an
// atomic pointer) and a shard read-lock on the person directory.
package directory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Directory answers policy.View from memory and writes through to a store.
type Directory struct {
	store crossroads.RegisterStore
	regs  atomic.Pointer[Registers]

	writeMu sync.Mutex // serialises writes so memory follows the store's order
	changes int64      // the store's integration change feed, applied up to here
	seed    maphash.Seed
	names   *interner // participants and capacities of compact integrations
	shards  [shardCount]shard
}

const shardCount = 256

type key struct{ person, participant string }

type shard struct {
	mu sync.RWMutex
	t  table                            // compact integrations (compact.go)
	m  map[key][]crossroads.Integration // the rest; slices are replaced, never modified in place
}

// Registers is an immutable snapshot of participants, services and
// authorisations, indexed for the check.
type Registers struct {
	net          *crossroads.Network
	participants map[string]*crossroads.Participant
	services     map[string]*crossroads.Service
	byGrant      map[grant][]*crossroads.Authorisation
	byID         map[string]*crossroads.Authorisation
	// capacities[grantee] holds the capacities named by the grantee's
	// authorisations that are not revoked, kinds canonical (person: "").
	capacities map[string]map[crossroads.Capacity]bool
}

// Version is the registers' version the snapshot was read at.
func (r *Registers) Version() int64 { return r.net.Version }

// Participant returns a participant by id.
func (r *Registers) Participant(id string) (*crossroads.Participant, bool) {
	p, ok := r.participants[id]
	return p, ok
}

// HoldsCapacity reports whether participant's authorisations that are not
// revoked name c (c.Kind canonical: "" for a person): whether it may hold
// a file in that capacity (apply.IntegrationView). O(1).
func (r *Registers) HoldsCapacity(participant string, c crossroads.Capacity) bool {
	return r.capacities[participant][c]
}

// Network returns the snapshot as a network; callers must not modify it.
func (r *Registers) Network() *crossroads.Network { return r.net }

type grant struct{ grantee, service string }

// Open loads the registers and every integration from store.
func Open(ctx context.Context, store crossroads.RegisterStore) (*Directory, error) {
	d := newDirectory(store)
	if err := d.reloadRegisters(ctx); err != nil {
		return nil, err
	}
	// The feed position is taken before the integrations are read: a change
	// made in between is then both loaded and replayed, which is harmless
	// (replays are idempotent and in order); none can be missed.
	last, err := store.LastIntegrationChange(ctx)
	if err != nil {
		return nil, fmt.Errorf("load integrations: %w", err)
	}
	d.changes = last
	if err := d.load(ctx, store); err != nil {
		return nil, fmt.Errorf("load integrations: %w", err)
	}
	return d, nil
}

// load reads every integration of store into d, which holds none yet: the
// compact ones are staged by shard, then each shard's table is built once,
// at its final size, the shards in parallel.
func (d *Directory) load(ctx context.Context, store crossroads.RegisterStore) error {
	stage := make([][]slot, shardCount)
	var cache lastIndexes
	err := store.EachIntegration(ctx, func(in crossroads.Integration) error {
		if c, k, ok := d.names.compactCached(&in, &cache); ok {
			i := shardOf(k)
			stage[i] = append(stage[i], c)
			return nil
		}
		d.put(in)
		return nil
	})
	if err != nil {
		return err
	}
	canon := d.names.cur.Load().canonOf
	work := make(chan int, shardCount)
	for i := range stage {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), 8)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := &d.shards[i]
				s.mu.Lock()
				if want := int(float64(s.t.n+len(stage[i]))/fitLoad) + 1; len(s.t.slots) < want {
					s.t.resize(max(minSlots, want))
				}
				// No exact integration shares an identity with a compact
				// one: the store holds one row per identity.
				for _, c := range stage[i] {
					s.t.put(c, canon)
				}
				stage[i] = nil
				s.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return nil
}

func newDirectory(store crossroads.RegisterStore) *Directory {
	d := &Directory{store: store, seed: maphash.MakeSeed(), names: newInterner()}
	for i := range d.shards {
		d.shards[i].m = make(map[key][]crossroads.Integration)
	}
	return d
}

// fit shrinks every shard's table to its load after a bulk load.
func (d *Directory) fit() {
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		s.t.fit()
		s.mu.Unlock()
	}
}

func (d *Directory) reloadRegisters(ctx context.Context) error {
	n, err := d.store.Registers(ctx)
	if err != nil {
		return fmt.Errorf("load registers: %w", err)
	}
	d.regs.Store(index(n))
	return nil
}

func index(n *crossroads.Network) *Registers {
	r := &Registers{
		net:          n,
		participants: make(map[string]*crossroads.Participant, len(n.Participants)),
		services:     make(map[string]*crossroads.Service, len(n.Services)),
		byGrant:      make(map[grant][]*crossroads.Authorisation),
		byID:         make(map[string]*crossroads.Authorisation, len(n.Authorisations)),
		capacities:   make(map[string]map[crossroads.Capacity]bool),
	}
	for i := range n.Participants {
		r.participants[n.Participants[i].ID] = &n.Participants[i]
	}
	for i := range n.Services {
		r.services[n.Services[i].ID] = &n.Services[i]
	}
	for i := range n.Authorisations {
		a := &n.Authorisations[i]
		r.byID[a.ID] = a
		if a.Status != crossroads.StatusRevoked {
			for _, c := range a.Capacities {
				if c.Kind == crossroads.SubjectPerson {
					c.Kind = ""
				}
				if r.capacities[a.Grantee] == nil {
					r.capacities[a.Grantee] = map[crossroads.Capacity]bool{}
				}
				r.capacities[a.Grantee][c] = true
			}
		}
		for _, s := range a.Services {
			g := grant{a.Grantee, s}
			r.byGrant[g] = append(r.byGrant[g], a)
		}
	}
	return r
}

// shard returns subject's shard: by its number when it has one (a compact
// key), by a hash of its spelling otherwise.
func (d *Directory) shard(subject string) *shard {
	if k, ok := compactKey(subject); ok {
		return &d.shards[shardOf(k)]
	}
	return &d.shards[maphash.String(d.seed, subject)%shardCount]
}

func shardOf(k uint64) uint64 { return mix(k) >> 56 % shardCount }

// subjectOf is the key under which the directory holds in: its subject
// kind and id (crossroads.SubjectKey).
func subjectOf(in crossroads.Integration) string { return crossroads.SubjectKey(in.Kind, in.Person) }

// put adds or replaces in in memory (same identity: person, participant,
// sector, capacity, from).
func (d *Directory) put(in crossroads.Integration) {
	c, n, compact := d.names.compact(&in)
	subject := subjectOf(in)
	s := d.shard(subject)
	k := key{subject, in.Participant}
	s.mu.Lock()
	defer s.mu.Unlock()
	if compact {
		canon := d.names.cur.Load().canonOf
		s.t.put(c, canon)
		// An integration of the same identity may be held exactly (its
		// former period had a time of day).
		if len(s.m) > 0 {
			s.removeExact(k, in)
		}
		return
	}
	if n != 0 {
		// The same identity may be held compactly.
		if c, ok := d.compactIdentity(&in, n); ok {
			s.t.remove(c, d.names.cur.Load().canonOf)
		}
	}
	old := s.m[k]
	next := make([]crossroads.Integration, 0, len(old)+1)
	for _, o := range old {
		if !sameIntegration(o, in) {
			next = append(next, o)
		}
	}
	s.m[k] = append(next, in)
}

// compactIdentity returns the slot that would hold an integration of in's
// identity (subject k): its period's start is whole days, its participant
// and capacity interned. The end of the period is not part of identity.
func (d *Directory) compactIdentity(in *crossroads.Integration, k uint64) (slot, bool) {
	from, ok := day(in.From)
	if !ok {
		return slot{}, false
	}
	t := d.names.cur.Load()
	part, okp := t.parts[in.Participant]
	capacity, okc := t.caps[capacityName{in.Kind, in.Sector, in.Capacity}]
	if !okp || !okc {
		// A capacity spelled with the other person kind ("" / "person")
		// has the same identity.
		if okp && kindOf(in.Kind) == crossroads.SubjectPerson {
			alt := ""
			if in.Kind == "" {
				alt = crossroads.SubjectPerson
			}
			capacity, okc = t.caps[capacityName{alt, in.Sector, in.Capacity}]
		}
		if !okp || !okc {
			return slot{}, false
		}
	}
	return slot{lo: uint32(k), hi: uint32(k >> 32), part: part, capacity: capacity, from: from}, true
}

// removeExact drops in's identity from the exact representation; s is locked.
func (s *shard) removeExact(k key, in crossroads.Integration) {
	old, ok := s.m[k]
	if !ok {
		return
	}
	next := make([]crossroads.Integration, 0, len(old))
	for _, o := range old {
		if !sameIntegration(o, in) {
			next = append(next, o)
		}
	}
	if len(next) == 0 {
		delete(s.m, k)
	} else {
		s.m[k] = next
	}
}

func (d *Directory) remove(in crossroads.Integration) {
	subject := subjectOf(in)
	s := d.shard(subject)
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := compactKey(subject); ok {
		if c, ok := d.compactIdentity(&in, k); ok {
			s.t.remove(c, d.names.cur.Load().canonOf)
		}
	}
	s.removeExact(key{subject, in.Participant}, in)
}

// identity is what names an integration in the store.
type identity struct {
	subject, participant, sector, capacity, from string
}

func identify(in crossroads.Integration) identity {
	return identity{subjectOf(in), in.Participant, in.Sector, in.Capacity, in.From.UTC().Format(time.RFC3339Nano)}
}

func sameIntegration(a, b crossroads.Integration) bool {
	return a.Person == b.Person && kindOf(a.Kind) == kindOf(b.Kind) && a.Participant == b.Participant && a.Sector == b.Sector &&
		a.Capacity == b.Capacity && a.From.Equal(b.From)
}

// kindOf canonicalises a subject kind: the empty kind is a person.
func kindOf(k string) string {
	if k == "" {
		return crossroads.SubjectPerson
	}
	return k
}

// Refresh reloads participants, services and authorisations from the store
// when they differ from memory, so that changes written by another hub
// node (or an offline apply) reach this one. It reports whether anything
// changed. Integrations are not refreshed: they follow writes made through
// this directory (see docs/architecture.md).
func (d *Directory) Refresh(ctx context.Context) (bool, error) {
	// Read under the write lock: a snapshot read before a write through
	// this directory and installed after it would undo that write in
	// memory until the next refresh.
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	n, err := d.store.Registers(ctx)
	if err != nil {
		return false, fmt.Errorf("refresh registers: %w", err)
	}
	if reflect.DeepEqual(normalise(n), normalise(d.regs.Load().net)) {
		return false, nil
	}
	d.regs.Store(index(n))
	return true, nil
}

// RefreshIntegrations applies, in order, the changes to the person directory
// recorded in the store since the last call, whoever wrote them (another
// hub node, an offline apply). It returns how many it applied.
func (d *Directory) RefreshIntegrations(ctx context.Context) (int, error) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	n := 0
	for {
		batch, err := d.store.IntegrationChanges(ctx, d.changes, 1000)
		if err != nil {
			return n, fmt.Errorf("refresh integrations: %w", err)
		}
		// Only the last change of each integration in the batch is applied:
		// replaying "put, then delete" one by one would let a decision
		// between the two see an integration that is already gone (this
		// node's own writes come back through the feed too).
		last := make(map[identity]int, len(batch))
		for i, c := range batch {
			last[identify(c.Integration)] = i
		}
		for i, c := range batch {
			if last[identify(c.Integration)] != i {
				continue
			}
			if c.Deleted {
				d.remove(c.Integration)
			} else {
				d.put(c.Integration)
			}
		}
		if len(batch) > 0 {
			d.changes = batch[len(batch)-1].Seq
		}
		n += len(batch)
		if len(batch) < 1000 {
			return n, nil
		}
	}
}

// ReloadIntegrations rebuilds the person directory from the store, for a
// node that fell behind the change feed's retention.
func (d *Directory) ReloadIntegrations(ctx context.Context) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	last, err := d.store.LastIntegrationChange(ctx)
	if err != nil {
		return fmt.Errorf("reload integrations: %w", err)
	}
	fresh := newDirectory(nil)
	fresh.names = d.names
	fresh.seed = d.seed
	if err := fresh.load(ctx, d.store); err != nil {
		return fmt.Errorf("reload integrations: %w", err)
	}
	for i := range d.shards {
		d.shards[i].mu.Lock()
		d.shards[i].t = fresh.shards[i].t
		d.shards[i].m = fresh.shards[i].m
		d.shards[i].mu.Unlock()
	}
	d.changes = last
	return nil
}

// normalise drops integrations (never part of the snapshot) for comparison.
func normalise(n *crossroads.Network) crossroads.Network {
	c := *n
	c.Integrations = nil
	return c
}

// Participant implements policy.View.
func (d *Directory) Participant(id string) (*crossroads.Participant, bool) {
	p, ok := d.regs.Load().participants[id]
	return p, ok
}

// Service implements policy.View.
func (d *Directory) Service(id string) (*crossroads.Service, bool) {
	s, ok := d.regs.Load().services[id]
	return s, ok
}

// Authorisations implements policy.View.
func (d *Directory) Authorisations(grantee, service string) []*crossroads.Authorisation {
	return d.regs.Load().byGrant[grant{grantee, service}]
}

// Authorisation returns an authorisation by id.
func (d *Directory) Authorisation(id string) (*crossroads.Authorisation, bool) {
	a, ok := d.regs.Load().byID[id]
	return a, ok
}

// Integrations implements policy.View: subject is a person's canonical id
// or, for another kind, crossroads.SubjectKey(kind, id).
func (d *Directory) Integrations(subject, participant string) []crossroads.Integration {
	s := d.shard(subject)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var v []crossroads.Integration
	if len(s.m) > 0 {
		v = s.m[key{subject, participant}]
	}
	if s.t.n == 0 {
		return v
	}
	k, ok := compactKey(subject)
	if !ok {
		return v
	}
	t := d.names.cur.Load()
	part, ok := t.parts[participant]
	if !ok {
		return v
	}
	v = slices.Clip(v) // never append into the exact map's slice
	for i := s.t.start(home(k, part)); s.t.slots[i].part != 0; i = s.t.next(i) {
		if c := &s.t.slots[i]; c.part == part && c.key() == k {
			v = append(v, t.integration(c, subject))
		}
	}
	return v
}

// Current returns the registers as last loaded, indexed: what a change to
// the person directory is validated against, at Current().Version().
func (d *Directory) Current() *Registers { return d.regs.Load() }

// Snapshot returns the registers (participants, services, authorisations)
// as last loaded; callers must not modify it.
func (d *Directory) Snapshot() *crossroads.Network {
	return d.regs.Load().net
}

// Capacities returns the capacities that participant's authorisations name
// (any status), the only ones in which it may register integrations.
func (d *Directory) Capacities(participant string) []crossroads.Capacity {
	var out []crossroads.Capacity
	for _, a := range d.regs.Load().net.Authorisations {
		if a.Grantee != participant {
			continue
		}
		for _, c := range a.Capacities {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Sector != out[j].Sector {
			return out[i].Sector < out[j].Sector
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// Store returns the directory as a crossroads.RegisterStore: writes go to
// the underlying store and, once durable, to memory. Use it for every write
// (apply, the admin API, participants managing their integrations).
func (d *Directory) Store() crossroads.RegisterStore { return writeThrough{d} }

type writeThrough struct{ d *Directory }

var _ crossroads.RegisterStore = writeThrough{}

// Registers implements crossroads.RegisterStore from memory.
func (w writeThrough) Registers(ctx context.Context) (*crossroads.Network, error) {
	return w.d.regs.Load().net, nil
}

// Apply implements crossroads.RegisterStore.
func (w writeThrough) Apply(ctx context.Context, n *crossroads.Network) error {
	d := w.d
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.store.Apply(ctx, n); err != nil {
		if errors.Is(err, crossroads.ErrStale) {
			// Another writer changed the registers: read them again so that
			// a retry validates against what is there.
			if rerr := d.reloadRegisters(ctx); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	}
	for _, in := range n.Integrations {
		d.put(in)
	}
	if len(n.Participants)+len(n.Services)+len(n.Authorisations)+len(n.Subscriptions) > 0 {
		return d.reloadRegisters(ctx)
	}
	return nil
}

// PutIntegration implements crossroads.RegisterStore.
func (w writeThrough) PutIntegration(ctx context.Context, in crossroads.Integration) error {
	d := w.d
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.store.PutIntegration(ctx, in); err != nil {
		return err
	}
	d.put(in)
	return nil
}

// DeleteIntegration implements crossroads.RegisterStore.
func (w writeThrough) DeleteIntegration(ctx context.Context, in crossroads.Integration) error {
	d := w.d
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.store.DeleteIntegration(ctx, in); err != nil {
		return err
	}
	d.remove(in)
	return nil
}

// ChangeIntegration implements crossroads.RegisterStore.
func (w writeThrough) ChangeIntegration(ctx context.Context, ev crossroads.IntegrationEvent, version int64) (crossroads.IntegrationEvent, error) {
	d := w.d
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	ev, err := d.store.ChangeIntegration(ctx, ev, version)
	if err != nil {
		if errors.Is(err, crossroads.ErrStale) {
			if rerr := d.reloadRegisters(ctx); rerr != nil {
				return ev, errors.Join(err, rerr)
			}
		}
		return ev, err
	}
	d.put(ev.Integration)
	return ev, nil
}

// IntegrationHistory implements crossroads.RegisterStore.
func (w writeThrough) IntegrationHistory(ctx context.Context, q crossroads.HistoryQuery) ([]crossroads.IntegrationEvent, error) {
	return w.d.store.IntegrationHistory(ctx, q)
}

// Integrations implements crossroads.RegisterStore (listing from the store).
func (w writeThrough) Integrations(ctx context.Context, participant, person string) ([]crossroads.Integration, error) {
	return w.d.store.Integrations(ctx, participant, person)
}

// IntegrationChanges implements crossroads.RegisterStore.
func (w writeThrough) IntegrationChanges(ctx context.Context, after int64, limit int) ([]crossroads.IntegrationChange, error) {
	return w.d.store.IntegrationChanges(ctx, after, limit)
}

// PruneIntegrationChanges implements crossroads.RegisterStore.
func (w writeThrough) PruneIntegrationChanges(ctx context.Context, before time.Time) (int64, error) {
	return w.d.store.PruneIntegrationChanges(ctx, before)
}

// LastIntegrationChange implements crossroads.RegisterStore.
func (w writeThrough) LastIntegrationChange(ctx context.Context) (int64, error) {
	return w.d.store.LastIntegrationChange(ctx)
}

// EachIntegration implements crossroads.RegisterStore.
func (w writeThrough) EachIntegration(ctx context.Context, fn func(crossroads.Integration) error) error {
	return w.d.store.EachIntegration(ctx, fn)
}
