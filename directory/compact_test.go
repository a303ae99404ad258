package directory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// model is the directory's former representation: every integration
// exact, by (subject key, participant), same-identity puts replacing.
type model map[key][]crossroads.Integration

func (m model) put(in crossroads.Integration) {
	k := key{subjectOf(in), in.Participant}
	m.remove(in)
	m[k] = append(m[k], in)
}

func (m model) remove(in crossroads.Integration) {
	k := key{subjectOf(in), in.Participant}
	m[k] = slices.DeleteFunc(m[k], func(o crossroads.Integration) bool { return sameIntegration(o, in) })
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

func sortIntegrations(v []crossroads.Integration) []crossroads.Integration {
	v = slices.Clone(v)
	slices.SortFunc(v, func(a, b crossroads.Integration) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	return v
}

// randomIntegration draws from a small space so that identities collide:
// INSZ and CBE subjects (compact), opaque ids, periods in whole days or
// with a time of day, both spellings of a person's kind.
func randomIntegration(r *rand.Rand) crossroads.Integration {
	in := crossroads.Integration{
		Participant: fmt.Sprintf("p%d", r.IntN(4)),
		Sector:      "s", Capacity: []string{"c", "d"}[r.IntN(2)],
		From: t0.AddDate(0, 0, r.IntN(3)),
	}
	switch r.IntN(5) {
	case 0, 1:
		in.Person = fmt.Sprintf("%011d", r.IntN(20))
		in.Kind = []string{"", crossroads.SubjectPerson}[r.IntN(2)]
	case 2:
		in.Person = fmt.Sprintf("%010d", r.IntN(20))
		in.Kind = crossroads.SubjectEnterprise
	case 3:
		in.Person = fmt.Sprintf("opaque-%d", r.IntN(20))
	case 4:
		in.Person = fmt.Sprintf("%011d", r.IntN(20)) // some kinds spelled otherwise
		in.Kind = "vehicle"
	}
	switch r.IntN(6) {
	case 0:
		in.From = in.From.Add(time.Hour) // a time of day: held exactly
	case 1:
		in.To = in.From.AddDate(0, 1, 0)
	case 2:
		in.To = in.From.Add(90 * time.Minute)
	case 3:
		in.From = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) // before the compact range
	}
	return in
}

// TestCompactMatchesExact: whatever mix of puts and removes, the compact
// directory answers Integrations exactly as the former representation.
func TestCompactMatchesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := newDirectory(nil)
	m := model{}
	for step := 0; step < 20_000; step++ {
		in := randomIntegration(r)
		if r.IntN(3) == 0 {
			d.remove(in)
			m.remove(in)
		} else {
			d.put(in)
			m.put(in)
		}
		if step%500 == 499 {
			d.fit()
		}
		probe := randomIntegration(r)
		k := key{subjectOf(probe), probe.Participant}
		if got, want := sortIntegrations(d.Integrations(k.person, k.participant)), sortIntegrations(m[k]); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d, %v:\n got %v\nwant %v", step, k, got, want)
		}
	}
	for k, want := range m {
		if got := d.Integrations(k.person, k.participant); !reflect.DeepEqual(sortIntegrations(got), sortIntegrations(want)) {
			t.Fatalf("%v:\n got %v\nwant %v", k, got, want)
		}
	}
}

// TestCompactMemory: an INSZ directory costs at most 40 bytes per
// integration (issue 13), after a load and while growing.
func TestCompactMemory(t *testing.T) {
	const n = 300_000
	before := heapInUse()
	d := newDirectory(nil)
	for i := 0; i < n; i++ {
		d.put(scaleIntegration(i, n))
	}
	grown := float64(heapInUse()-before) / n
	d.fit()
	loaded := float64(heapInUse()-before) / n
	t.Logf("%.1f bytes per integration while growing, %.1f after fit", grown, loaded)
	if grown > 40 || loaded > 40 {
		t.Errorf("%.1f / %.1f bytes per integration, want ≤ 40", grown, loaded)
	}
	if got := d.Integrations(personOf(5), scaleIntegration(5, n).Participant); len(got) != 1 {
		t.Fatalf("lookup after load: %v", got)
	}
}

// TestCompactKey: only 11-digit subjects and 10-digit CBE numbers are
// compact, and the kind is part of the key.
func TestCompactKey(t *testing.T) {
	for _, c := range []struct {
		subject string
		ok      bool
	}{
		{"85073003328", true}, {"00000000000", true}, {"8507300332", false}, {"850730033280", false},
		{"8507300332x", false}, {"enterprise:0403170701", true}, {"enterprise:040317070", false},
		{"vehicle:0403170701", false}, {"", false},
	} {
		if _, ok := compactKey(c.subject); ok != c.ok {
			t.Errorf("compactKey(%q) ok = %v", c.subject, ok)
		}
	}
	p, _ := compactKey("00403170701")
	e, _ := compactKey("enterprise:0403170701")
	if p == e {
		t.Error("a person and an enterprise of the same digits share a key")
	}
	for _, c := range []struct {
		t  time.Time
		ok bool
	}{
		{t0, true}, {t0.Add(time.Nanosecond), false}, {t0.Add(time.Hour), false}, {t0.In(time.FixedZone("x", 0)), false},
		{time.Unix(0, 0).UTC(), true}, {time.Unix(-86400, 0).UTC(), false}, {time.Unix(maxDay*86400, 0).UTC(), true},
		{time.Unix((maxDay+1)*86400, 0).UTC(), false},
	} {
		if d, ok := day(c.t); ok != c.ok || (ok && !dayTime(d).Equal(c.t)) {
			t.Errorf("day(%v) = %d, %v", c.t, d, ok)
		}
	}
}

// eachStore is a store that only streams integrations.
type eachStore struct {
	crossroads.RegisterStore
	list []crossroads.Integration
}

func (s eachStore) EachIntegration(_ context.Context, fn func(crossroads.Integration) error) error {
	for _, in := range s.list {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// TestLoadMatchesExact: the bulk load (staged, built per shard) holds what
// put by put would.
func TestLoadMatchesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := model{}
	for range 5000 {
		m.put(randomIntegration(r))
	}
	var list []crossroads.Integration
	for _, v := range m {
		list = append(list, v...)
	}
	d := newDirectory(nil)
	if err := d.load(context.Background(), eachStore{list: list}); err != nil {
		t.Fatal(err)
	}
	for k, want := range m {
		if got := d.Integrations(k.person, k.participant); !reflect.DeepEqual(sortIntegrations(got), sortIntegrations(want)) {
			t.Fatalf("%v:\n got %v\nwant %v", k, got, want)
		}
	}
	if got := d.Integrations(personOf(1), "p0"); len(got) != 0 {
		t.Fatalf("unknown subject: %v", got)
	}
}
