package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
)

// benchAuthorisations is the size of the registers the integration
// benchmarks run against (issue 8 item 6: 10,000 authorisations).
const benchAuthorisations = 10_000

func largeFixture(b *testing.B) *fixture {
	f := newFixture(b, func(c *Config) { c.IntegrationLimits = &crossroads.Limits{} })
	n := &crossroads.Network{}
	for i := range benchAuthorisations {
		a := testNetwork().Authorisations[0]
		a.ID = fmt.Sprintf("a-%05d", i)
		a.Grantee = []string{"inst", "other"}[i%2]
		a.Capacities = []crossroads.Capacity{{Sector: fmt.Sprint(i % 50), Code: fmt.Sprintf("c%d", i)}}
		n.Authorisations = append(n.Authorisations, a)
	}
	if err := f.dir.Store().Apply(ctx, n); err != nil {
		b.Fatal(err)
	}
	return f
}

func benchPerson(i int) string {
	return personid.Make(fmt.Sprintf("%02d%02d%02d", 50+i%50, 1+i/50%12, 1+i/600%28), i/16800, false)
}

// BenchmarkIntegrationValidate compares the validation of one integration
// at 10,000 authorisations: before, the PUT ran the network file's whole
// validation (apply.Apply, here as a dry run so that only validation is
// measured); after, apply.CheckIntegration on the directory's indexes.
func BenchmarkIntegrationValidate(b *testing.B) {
	f := largeFixture(b)
	in := crossroads.Integration{Person: person, Participant: "inst", Sector: "17", Capacity: "beneficiary", From: now}
	b.Run("before/apply", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := apply.Apply(ctx, f.dir.Store(), &crossroads.Network{Integrations: []crossroads.Integration{in}}, nil, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("after/check", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			c := in
			if err := apply.CheckIntegration(&c, f.api.cfg.Kinds, f.dir.Current()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIntegrationPut: PUT /v1/integrations end to end (handler,
// audit record to a fake trail, SQLite write with history) at 10,000
// authorisations, each iteration a new file.
func BenchmarkIntegrationPut(b *testing.B) {
	f := largeFixture(b)
	from := now.Add(time.Hour).Format(time.RFC3339)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := f.put("inst", `{"person":"`+benchPerson(i)+`","sector":"17","capacity":"beneficiary","from":"`+from+`"}`)
		if r.status != 201 {
			b.Fatal(strings.TrimSpace(r.raw))
		}
	}
}
