// Package apply manages the registers declaratively from a network file
// (`crossroads apply -f network.yaml`).
//
// A network file is YAML with the fields of crossroads.Network:
// participants, services, authorisations and integrations. Applying it is
//
//   - an upsert of what the file says: entries are created or replaced
//     whole, by id (integrations by their key: person, participant,
//     sector, capacity, from). Entries of the registers that the file does
//     not mention are left as they are — nothing is ever pruned; suspend or
//     revoke by saying so in the file;
//   - validated completely before anything is written, against the file
//     and the current registers together, reporting every problem at once
//     (Problems);
//   - idempotent: only entries that differ are written, so applying the
//     same file twice writes nothing the second time;
//   - all or nothing: the changed entries are written with one
//     RegisterStore.Apply, which is one transaction.
//
// Dry run computes and returns the same Plan without writing; Plan.String
// renders it as a diff.
package apply

import (
	"context"
	"errors"
	"fmt"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
)

// perPersonLookups is how many distinct people a file may name before
// Apply streams the whole directory rather than look each one up.
const perPersonLookups = 2000

// Apply reads the registers from store, validates desired against them,
// computes the plan and — unless dryRun or nothing changed — writes the
// changed entries in one store.Apply. Validation problems are returned as
// Problems (errors.Is crossroads.ErrInvalid) with an empty plan. desired is
// not modified. Two concurrent applies are not serialised against each
// other: the later write wins per entry.
func Apply(ctx context.Context, store crossroads.RegisterStore, desired *crossroads.Network, scheme personid.Scheme, dryRun bool) (Plan, error) {
	if desired == nil {
		return Plan{}, errors.New("apply: no network")
	}
	current, err := store.Registers(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("apply: read registers: %w", err)
	}
	d := *desired
	d.Integrations = append([]crossroads.Integration(nil), desired.Integrations...) // Validate canonicalises person ids
	d.Participants = append([]crossroads.Participant(nil), desired.Participants...) // and enterprise numbers
	if err := Validate(&d, current, scheme); err != nil {
		return Plan{}, err
	}
	ints, err := currentIntegrations(ctx, store, d.Integrations)
	if err != nil {
		return Plan{}, fmt.Errorf("apply: read integrations: %w", err)
	}
	plan := Diff(current, &d, ints)
	if dryRun || !plan.HasChanges() {
		return plan, nil
	}
	if err := store.Apply(ctx, plan.Network()); err != nil {
		return plan, fmt.Errorf("apply: write: %w", err)
	}
	return plan, nil
}

// currentIntegrations returns the stored integrations of the people in
// want: looked up person by person for a few, streamed for many.
func currentIntegrations(ctx context.Context, store crossroads.RegisterStore, want []crossroads.Integration) ([]crossroads.Integration, error) {
	people := map[string]bool{}
	for _, in := range want {
		people[in.Person] = true
	}
	var out []crossroads.Integration
	if len(people) <= perPersonLookups {
		for p := range people {
			ins, err := store.Integrations(ctx, "", p)
			if err != nil {
				return nil, err
			}
			out = append(out, ins...)
		}
		return out, nil
	}
	err := store.EachIntegration(ctx, func(in crossroads.Integration) error {
		if people[in.Person] {
			out = append(out, in)
		}
		return nil
	})
	return out, err
}
