package directory

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// The person directory at national scale (issue 13): an integration whose
// subject is an INSZ (11 digits) or a CBE number (10 digits), whose period
// is in whole UTC days between 1970 and 2149, is held in 16 bytes — the
// subject as a number, the participant and the capacity as small interned
// indexes, the period as two day numbers — in an open-addressing table
// (linear probing, backward-shift deletion). Anything else (opaque ids of
// another scheme, periods with a time of day, more than 65,535 distinct
// participants or capacities) falls back to the exact representation, a
// map of crossroads.Integration slices. Both answer the same questions the
// same way; Integrations materialises the compact entries on each call.

// slot is one compact integration. part 0 marks an empty slot.
type slot struct {
	lo, hi   uint32 // subject key, see compactKey
	part     uint16 // participant index (names), from 1
	capacity uint16 // capacity index (capacities), from 1
	from, to uint16 // days since 1970-01-01; to == openEnded: no end
}

const (
	openEnded = 0xFFFF
	maxDay    = 0xFFFE

	tagPerson     = 1 << 56
	tagEnterprise = 2 << 56

	// Linear probing stays short below maxLoad (a lookup reads ≈ 4 slots
	// past its home at fitLoad); a table grows by ×1.5, so that even just
	// after growing it is half full: 16 / 0.5 = 32 bytes per integration
	// at worst, 16 / 0.6 ≈ 27 after a load.
	maxLoad  = 0.75
	fitLoad  = 0.6
	minSlots = 8
)

var enterprisePrefix = crossroads.SubjectKey(crossroads.SubjectEnterprise, "")

func (s *slot) key() uint64 { return uint64(s.hi)<<32 | uint64(s.lo) }

// compactKey maps a subject key (crossroads.SubjectKey) to a number when it
// is an 11-digit person id or a 10-digit enterprise number.
func compactKey(subject string) (uint64, bool) {
	switch {
	case len(subject) == 11:
		n, ok := digits(subject)
		return tagPerson | n, ok
	case len(subject) == len(enterprisePrefix)+10 && subject[:len(enterprisePrefix)] == enterprisePrefix:
		n, ok := digits(subject[len(enterprisePrefix):])
		return tagEnterprise | n, ok
	}
	return 0, false
}

func digits(s string) (uint64, bool) {
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	return n, true
}

// day returns t as a day number when it is a UTC midnight in range.
func day(t time.Time) (uint16, bool) {
	if t.Location() != time.UTC || t.Nanosecond() != 0 {
		return 0, false
	}
	u := t.Unix()
	if u < 0 || u%86400 != 0 || u/86400 > maxDay {
		return 0, false
	}
	return uint16(u / 86400), true
}

func dayTime(d uint16) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// mix is a 64-bit finaliser (SplitMix64).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// home is the hash of a slot's (subject, participant): every integration
// of one participant on one subject lies in one probe run.
func home(k uint64, part uint16) uint64 { return mix(k ^ uint64(part)<<40 ^ 0x9e3779b97f4a7c15) }

// table is one shard's compact integrations.
type table struct {
	slots []slot
	n     int
}

func (t *table) start(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.slots)))
	return int(hi)
}

func (t *table) next(i int) int {
	i++
	if i == len(t.slots) {
		return 0
	}
	return i
}

// find returns the index of the slot with in's identity, or -1.
func (t *table) find(in *slot, canon []uint16) int {
	if len(t.slots) == 0 {
		return -1
	}
	k := in.key()
	for i := t.start(home(k, in.part)); t.slots[i].part != 0; i = t.next(i) {
		s := &t.slots[i]
		if s.part == in.part && s.key() == k && s.from == in.from && canon[s.capacity] == canon[in.capacity] {
			return i
		}
	}
	return -1
}

// put adds in, replacing the slot of the same identity: one pass along
// the run from in's home, to that slot or the first empty one.
func (t *table) put(in slot, canon []uint16) {
	if float64(t.n+1) > maxLoad*float64(len(t.slots)) {
		t.resize(max(minSlots, len(t.slots)*3/2, int(float64(t.n+1)/fitLoad)))
	}
	k := in.key()
	i := t.start(home(k, in.part))
	for ; t.slots[i].part != 0; i = t.next(i) {
		if s := &t.slots[i]; s.part == in.part && s.key() == k && s.from == in.from && canon[s.capacity] == canon[in.capacity] {
			*s = in
			return
		}
	}
	t.slots[i] = in
	t.n++
}

func (t *table) place(in slot) {
	i := t.start(home(in.key(), in.part))
	for t.slots[i].part != 0 {
		i = t.next(i)
	}
	t.slots[i] = in
}

func (t *table) resize(size int) {
	old := t.slots
	t.slots = newSlots(size)
	for _, s := range old {
		if s.part != 0 {
			t.place(s)
		}
	}
}

// fit shrinks the table to fitLoad after a bulk load.
func (t *table) fit() {
	want := max(minSlots, int(float64(t.n)/fitLoad)+1)
	if len(t.slots) > want+want/16 {
		t.resize(want)
	}
}

// remove deletes the slot of in's identity, if any (backward-shift
// deletion: the run stays without holes, so lookups may stop at the first
// empty slot).
func (t *table) remove(in slot, canon []uint16) bool {
	i := t.find(&in, canon)
	if i < 0 {
		return false
	}
	for j := t.next(i); t.slots[j].part != 0; j = t.next(j) {
		h := t.start(home(t.slots[j].key(), t.slots[j].part))
		// The slot at j may move to i unless its home lies cyclically in (i, j].
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = slot{}
	t.n--
	return true
}

// capacityName is an interned capacity as integrations spell it.
type capacityName struct{ kind, sector, code string }

// interned is an immutable pair of interning tables, replaced whole (copy
// on write) when a new participant or capacity appears — rarely.
type interned struct {
	parts   map[string]uint16
	partOf  []string // index → participant; [0] unused
	caps    map[capacityName]uint16
	capOf   []capacityName
	canonOf []uint16 // index → first index of the same (canonical kind, sector, code)
}

// interner hands out indexes; reads are lock-free.
type interner struct {
	mu  sync.Mutex
	cur atomic.Pointer[interned]
}

func newInterner() *interner {
	in := &interner{}
	in.cur.Store(&interned{
		parts: map[string]uint16{}, partOf: []string{""},
		caps: map[capacityName]uint16{}, capOf: []capacityName{{}}, canonOf: []uint16{0},
	})
	return in
}

// indexes returns in's participant and capacity indexes, interning them
// when new; ok is false when a table is full.
func (n *interner) indexes(in *crossroads.Integration) (part, capacity uint16, ok bool) {
	c := capacityName{in.Kind, in.Sector, in.Capacity}
	t := n.cur.Load()
	part, okp := t.parts[in.Participant]
	capacity, okc := t.caps[c]
	if okp && okc {
		return part, capacity, true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t = n.cur.Load()
	part, okp = t.parts[in.Participant]
	capacity, okc = t.caps[c]
	if okp && okc {
		return part, capacity, true
	}
	if (!okp && len(t.partOf) > 0xFFFF) || (!okc && len(t.capOf) > 0xFFFF) {
		return 0, 0, false
	}
	next := *t
	if !okp {
		next.parts = make(map[string]uint16, len(t.parts)+1)
		for k, v := range t.parts {
			next.parts[k] = v
		}
		part = uint16(len(t.partOf))
		next.parts[in.Participant] = part
		next.partOf = append(t.partOf[:len(t.partOf):len(t.partOf)], in.Participant)
	}
	if !okc {
		next.caps = make(map[capacityName]uint16, len(t.caps)+1)
		for k, v := range t.caps {
			next.caps[k] = v
		}
		capacity = uint16(len(t.capOf))
		// The same identity under the other spelling of a person's kind
		// ("" or "person") shares its canonical index.
		canon := capacity
		if kindOf(c.kind) == crossroads.SubjectPerson {
			alt := ""
			if c.kind == "" {
				alt = crossroads.SubjectPerson
			}
			if k, ok := next.caps[capacityName{alt, c.sector, c.code}]; ok {
				canon = next.canonOf[k]
			}
		}
		next.caps[c] = capacity
		next.capOf = append(t.capOf[:len(t.capOf):len(t.capOf)], c)
		next.canonOf = append(t.canonOf[:len(t.canonOf):len(t.canonOf)], canon)
	}
	n.cur.Store(&next)
	return part, capacity, true
}

// lastIndexes remembers the last participant and capacity interned, for a
// bulk load (rows come sorted by subject: capacities repeat, participants
// often).
type lastIndexes struct {
	part     string
	partIdx  uint16
	capacity capacityName
	capIdx   uint16
	ok       bool
}

// compactCached is compact with a one-entry cache of indexes.
func (n *interner) compactCached(in *crossroads.Integration, c *lastIndexes) (slot, uint64, bool) {
	if !c.ok || c.part != in.Participant || c.capacity != (capacityName{in.Kind, in.Sector, in.Capacity}) {
		s, k, ok := n.compact(in)
		if ok {
			*c = lastIndexes{in.Participant, s.part, capacityName{in.Kind, in.Sector, in.Capacity}, s.capacity, true}
		}
		return s, k, ok
	}
	k, ok := compactKey(subjectOf(*in))
	if !ok {
		return slot{}, 0, false
	}
	from, ok := day(in.From)
	if !ok {
		return slot{}, k, false
	}
	to := uint16(openEnded)
	if !in.To.IsZero() {
		if to, ok = day(in.To); !ok {
			return slot{}, k, false
		}
	}
	return slot{lo: uint32(k), hi: uint32(k >> 32), part: c.partIdx, capacity: c.capIdx, from: from, to: to}, k, true
}

// compact returns in as a slot when it has a compact form.
func (n *interner) compact(in *crossroads.Integration) (slot, uint64, bool) {
	k, ok := compactKey(subjectOf(*in))
	if !ok {
		return slot{}, 0, false
	}
	from, ok := day(in.From)
	if !ok {
		return slot{}, k, false
	}
	to := uint16(openEnded)
	if !in.To.IsZero() {
		if to, ok = day(in.To); !ok {
			return slot{}, k, false
		}
	}
	part, capacity, ok := n.indexes(in)
	if !ok {
		return slot{}, k, false
	}
	return slot{lo: uint32(k), hi: uint32(k >> 32), part: part, capacity: capacity, from: from, to: to}, k, true
}

// integration materialises s for subject (its SubjectKey).
func (t *interned) integration(s *slot, subject string) crossroads.Integration {
	c := t.capOf[s.capacity]
	person := subject
	if s.key()&tagEnterprise != 0 {
		person = subject[len(enterprisePrefix):]
	}
	in := crossroads.Integration{Kind: c.kind, Person: person, Participant: t.partOf[s.part], Sector: c.sector, Capacity: c.code, From: dayTime(s.from)}
	if s.to != openEnded {
		in.To = dayTime(s.to)
	}
	return in
}
