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
//     RegisterStore.Apply, which is one transaction;
//   - serialised (optimistic concurrency): the write carries the version
//     of the registers it was validated against, and the store refuses it
//     (crossroads.ErrStale) if another apply or an integration change
//     committed in between; Run then reads, validates and diffs again, so
//     that two applies can never combine into registers validation would
//     refuse. With Options.IfMatch the caller names the version it saw and
//     a mismatch is ErrPrecondition instead of a retry.
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

// Apply is Run with the default subject kinds under scheme (nil: INSZ).
func Apply(ctx context.Context, store crossroads.RegisterStore, desired *crossroads.Network, scheme personid.Scheme, dryRun bool) (Plan, error) {
	return Run(ctx, store, desired, Options{Kinds: personid.DefaultKinds(scheme), DryRun: dryRun})
}

// Options tune Run.
type Options struct {
	// Kinds are the network's subject kinds and their schemes; nil:
	// personid.DefaultKinds(nil).
	Kinds personid.Kinds
	// DryRun computes the plan without writing.
	DryRun bool
	// IfMatch, non-zero, is the version of the registers the caller based
	// the file on: if they are at another version, Run fails with
	// ErrPrecondition and writes nothing.
	IfMatch int64
}

// ErrPrecondition: the registers are not at Options.IfMatch.
var ErrPrecondition = fmt.Errorf("%w: the registers are not at the version the change was based on", crossroads.ErrStale)

// maxAttempts bounds how often Run validates again after losing a race.
const maxAttempts = 5

// Run reads the registers from store, validates desired against them,
// computes the plan and — unless opts.DryRun or nothing changed — writes
// the changed entries in one store.Apply at the version validated against.
// Validation problems are returned as Problems (errors.Is
// crossroads.ErrInvalid) with an empty plan; warnings come in the plan.
// desired is not modified. Losing a race to another writer is retried from
// the start, revalidating (see the package documentation).
func Run(ctx context.Context, store crossroads.RegisterStore, desired *crossroads.Network, opts Options) (Plan, error) {
	if desired == nil {
		return Plan{}, errors.New("apply: no network")
	}
	for attempt := 1; ; attempt++ {
		plan, err := run(ctx, store, desired, opts)
		if err == nil || !errors.Is(err, crossroads.ErrStale) || errors.Is(err, ErrPrecondition) || attempt == maxAttempts {
			return plan, err
		}
	}
}

func run(ctx context.Context, store crossroads.RegisterStore, desired *crossroads.Network, opts Options) (Plan, error) {
	current, err := store.Registers(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("apply: read registers: %w", err)
	}
	if opts.IfMatch != 0 && current.Version != opts.IfMatch {
		return Plan{Version: current.Version}, fmt.Errorf("apply: %w (now %d, expected %d)", ErrPrecondition, current.Version, opts.IfMatch)
	}
	d := *desired
	d.Integrations = append([]crossroads.Integration(nil), desired.Integrations...) // Check canonicalises subject ids
	d.Participants = append([]crossroads.Participant(nil), desired.Participants...) // and enterprise numbers
	warnings, err := Check(&d, current, opts.Kinds)
	if err != nil {
		return Plan{Version: current.Version}, err
	}
	ints, err := currentIntegrations(ctx, store, d.Integrations)
	if err != nil {
		return Plan{}, fmt.Errorf("apply: read integrations: %w", err)
	}
	plan := Diff(current, &d, ints)
	plan.Warnings = warnings
	plan.Version = current.Version
	plan.write.Version = current.Version
	if opts.DryRun || !plan.HasChanges() {
		return plan, nil
	}
	w := plan.Network()
	if err := store.Apply(ctx, w); err != nil {
		return plan, fmt.Errorf("apply: write: %w", err)
	}
	if len(w.Participants)+len(w.Services)+len(w.Authorisations)+len(w.Subscriptions) > 0 {
		plan.Version++ // the store bumps the version by one (storetest)
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
