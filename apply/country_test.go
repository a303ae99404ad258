package apply_test

import (
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
)

// A national backend names at most one valid country (none: a peer hub
// that is no member of the federation gateway); no other kind names one;
// two backends never share a country (issue 11, seed 004 members).
func TestValidateCountry(t *testing.T) {
	backend := func(n *crossroads.Network, i int, c string) {
		n.Participants[i].Kind, n.Participants[i].Country = crossroads.KindNationalBackend, c
	}
	for name, tc := range map[string]struct {
		mutate     func(n *crossroads.Network)
		path, want string
	}{
		"lower-case country": {func(n *crossroads.Network) { backend(n, 0, "be") }, "participants[0].country", "needs its country"},
		"three letters":      {func(n *crossroads.Network) { backend(n, 0, "BEL") }, "participants[0].country", "needs its country"},
		"shared country": {func(n *crossroads.Network) {
			backend(n, 0, "BE")
			backend(n, 1, "BE")
		}, "participants[1].country", "already the country"},
		"institution with country": {func(n *crossroads.Network) { n.Participants[2].Country = "BE" }, "participants[2].country", "only participants of kind national-backend"},
	} {
		t.Run(name, func(t *testing.T) {
			n := sample(t)
			tc.mutate(n)
			err := apply.Validate(n, nil, personid.INSZ{})
			if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %s: %s", err, tc.path, tc.want)
			}
		})
	}
}

// A national backend without a country (a secure-processing peer hub) is
// valid; the federation gateway refuses it (efgs/TestAuthentication).
func TestBackendWithoutCountry(t *testing.T) {
	n := sample(t)
	n.Participants[0].Kind, n.Participants[0].Country = crossroads.KindNationalBackend, ""
	if err := apply.Validate(n, nil, personid.INSZ{}); err != nil {
		t.Fatalf("a backend without a country: %v", err)
	}
}
