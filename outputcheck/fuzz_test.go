package outputcheck

import (
	"testing"
)

func FuzzParseRules(f *testing.F) {
	for _, s := range []string{
		"threshold: 5\nactions: {zero: ignore, missing: fail}\n",
		`{"p_ratio": 0.2, "dominance_n": 3, "dominance_k": 0.75}`,
		"", "- a", "threshold: 1e400", "actions: {threshold: review}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRules(b)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed rules do not validate: %v", err)
		}
		for _, rule := range AllRules {
			switch r.Action(rule) {
			case Fail, Review, Ignore:
			default:
				t.Fatalf("rule %s has action %q", rule, r.Action(rule))
			}
		}
	})
}
