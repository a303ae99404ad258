package demo

import (
	"strings"
	"testing"
)

// FuzzAddress: whatever the body, decoding a PUT address never panics, and
// an address that passes has three printable members of at most 128 bytes
// and a 4-digit postal code.
func FuzzAddress(f *testing.F) {
	for _, s := range []string{
		`{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`,
		`{"street":"a","postalCode":"9000"}`,
		`{"street":"a","postalCode":"9000","city":"Gent","x":1}`,
		`{"street":"a\u0000","postalCode":"9000","city":"Gent"}`,
		`{} {}`, `[`, `null`, `"x"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		a, err := decodeAddress(strings.NewReader(body))
		if err != nil || a.invalid() != "" {
			return
		}
		for _, v := range []string{a.Street, a.PostalCode, a.City} {
			if strings.TrimSpace(v) == "" || len(v) > 128 || strings.ContainsAny(v, "\x00\t\r\n\x7f") {
				t.Fatalf("accepted %q", body)
			}
		}
		if len(a.PostalCode) != 4 {
			t.Fatalf("accepted postal code %q", a.PostalCode)
		}
	})
}
