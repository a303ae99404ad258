package minimise_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/crossroads-hub/crossroads/minimise"
)

func ExampleGrants_Stream() {
	auth, _ := minimise.Compile([]string{"/name", "/address", "/children/name"})
	op, _ := minimise.Compile([]string{"/name", "/address/city", "/children"})
	g := minimise.Intersect(auth, op) // what the authorisation grants of what the operation returns
	resp := strings.NewReader(`{"name":"Jan","ssn":"85073003328","address":{"street":"Kerkstraat 1","city":"Gent"},
		"children":[{"name":"An","born":"2010-01-01"},{"name":"Piet"}]}`)
	if err := g.Stream(os.Stdout, resp); err != nil {
		fmt.Println(err) // the output so far must be discarded
	}
	// Output: {"name":"Jan","address":{"city":"Gent"},"children":[{"name":"An"},{"name":"Piet"}]}
}

func ExampleValidate() {
	fmt.Println(minimise.Validate(strings.NewReader(`{"amount":1,"amount":2}`), 0))
	fmt.Println(minimise.Validate(bytes.NewReader([]byte(`{"address":{"city":"Gent"}}`)), 0))
	// Output:
	// not well-formed JSON: duplicate member name at byte 20
	// <nil>
}
