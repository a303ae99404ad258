package load

import (
	"strings"
	"testing"
)

// FuzzParseMix: mix files (JSON and YAML) never panic the parser; every
// request it returns has a method and a path under the target.
func FuzzParseMix(f *testing.F) {
	f.Add([]byte(`{"requests":[{"name":"a","weight":3,"method":"get","path":"/v1/x","header":{"A":"b"},"expect":200}]}`), true)
	f.Add([]byte(`{"requests":[{"path":"/x","bodyJson":{"a":[1,2,{"b":null}]}}]}`), true)
	f.Add([]byte(`{"requests":[{"path":"x","body":"a","bodyJson":1}]}`), true)
	f.Add([]byte("requests:\n  - path: /v1/x\n    bodyJson: {a: [1, 2]}\n    header: {X: y}\n"), false)
	f.Add([]byte("requests:\n  - &a {path: /x}\n  - *a\n"), false)
	f.Add([]byte("a: &a [*a, *a]\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		format := "yaml"
		if asJSON {
			format = "json"
		}
		reqs, err := ParseMix(data, format)
		if err != nil {
			return
		}
		if len(reqs) == 0 {
			t.Fatal("no requests and no error")
		}
		for _, r := range reqs {
			if r.Method == "" || !strings.HasPrefix(r.Path, "/") {
				t.Fatalf("bad request accepted: %+v", r)
			}
		}
	})
}
