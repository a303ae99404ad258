package apply_test

import (
	"fmt"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/directory"
)

// BenchmarkRunOneAuthorisation: an operator's apply of a file changing one
// authorisation against registers of 10,000 authorisations, as the hub
// runs it: through the directory (validated against all of them in
// memory, diffed, written at the version in SQLite, the directory's
// snapshot reloaded).
func BenchmarkRunOneAuthorisation(b *testing.B) {
	ctx := ctx
	raw := newStore(b)
	d, err := directory.Open(ctx, raw.RegisterStore)
	if err != nil {
		b.Fatal(err)
	}
	s := struct{ RegisterStore crossroads.RegisterStore }{d.Store()}
	n := sample(b)
	base := n.Authorisations[0]
	for i := range 10_000 {
		a := base
		a.ID = fmt.Sprintf("bench-%05d", i)
		n.Authorisations = append(n.Authorisations, a)
	}
	if _, err := apply.Run(ctx, s.RegisterStore, n, apply.Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		a := base
		a.ID = "bench-00042"
		a.Purposes = []string{fmt.Sprintf("p%d", i)}
		plan, err := apply.Run(ctx, s.RegisterStore, &crossroads.Network{Authorisations: []crossroads.Authorisation{a}}, apply.Options{})
		if err != nil || !plan.HasChanges() {
			b.Fatal(err)
		}
	}
}
