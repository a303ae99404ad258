package apply_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
)

// FuzzParse: no input makes Parse panic, and whatever Parse accepts,
// Validate and Diff handle without panicking.
func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile("testdata/network.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	if wave1, err := os.ReadFile("testdata/wave1-demo-network.yaml"); err == nil {
		f.Add(wave1)
	}
	for _, s := range []string{
		"", "{}", "participants: []", "participants:\n  - id: x\n    kind: operator\n",
		"authorisations:\n  - {id: a, grantee: b, fields: {x: [\"~\"]}, validFrom: 2024-01-01, limits: {burst: -1}}\n",
		"services:\n  - {id: s, provider: \"\", baseUrl: \"https://u@h/#f\", classification: 99, fields: [\"a\"]}\n",
		"integrations:\n  - {person: \"85.07.30-033.28\", participant: p, from: 2024-01-01T00:00:00.5+14:00, to: 0001-01-01}\n",
		"services:\n  - {id: s, subject: enterprise, concernsPerson: true, operations: [{id: \"\", path: /x}, {id: a, path: \"{subject}\"}]}\n",
		"authorisations:\n  - {id: a, services: [s], operations: {s: [x], t: []}, capacities: [{sector: \"1\", code: c, kind: animal}]}\n",
		"integrations:\n  - {kind: enterprise, person: \"BE 0403.170.701\", participant: p, sector: \"1\", capacity: c}\n",
		"a: &a [*a]\n", "participants: !!binary aGVsbG8=\n", "---\n---\n", "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	current := func() *crossroads.Network {
		n, err := apply.Parse(bytes.NewReader(sample))
		if err != nil {
			f.Fatal(err)
		}
		return n
	}()
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := apply.Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		_ = apply.Validate(n, nil, personid.INSZ{})
		_ = apply.Validate(n, current, personid.Opaque{})
		_ = apply.Diff(current, n, current.Integrations).String()
	})
}
