package personid

import (
	"errors"
	"strings"
	"testing"
)

func TestEnterprise(t *testing.T) {
	valid := map[string]string{
		"0123456749":      "0123456749", // Stad Gent's (demo) number, canonical
		"0123.456.749":    "0123456749", // as the CBE writes it
		"0123 456 749":    "0123456749",
		"0123-456-749":    "0123456749",
		"BE0123456749":    "0123456749", // VAT form
		"be0123.456.749":  "0123456749",
		"BE 0123.456.749": "0123456749",
		"123.456.749":     "0123456749", // old nine-digit form, leading 0 implied
		"0203.201.340":    "0203201340",
		"1000.000.021":    "1000000021", // an enterprise number starting with 1
		"2.100.000.015":   "2100000015", // establishment unit
		"8.000.000.071":   "8000000071",
		"  0123.456.749":  "0123456749",
	}
	for in, want := range valid {
		got, err := Enterprise{}.Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	invalid := []string{
		"", "BE", "0123.456.748", // check digits off by one
		"0123456794",                                 // check digits swapped
		"9123456749",                                 // first digit 9
		"01234567490",                                // eleven digits
		"01234567",                                   // eight digits
		"0123_456_749", "0123/456/749", "０１２３４５６７４９", // other separators, full-width digits
		"NL0123456749", "BE0123456749B01", strings.Repeat("0", 40),
	}
	for _, in := range invalid {
		got, err := Enterprise{}.Canonical(in)
		if err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Canonical(%q): error %v does not wrap ErrInvalid", in, err)
		}
		if in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("Canonical(%q): the error echoes the input: %v", in, err)
		}
	}
}

func TestEstablishmentUnit(t *testing.T) {
	for in, want := range map[string]bool{"0123456749": false, "1000000021": false, "2100000015": true, "8000000071": true} {
		if got := IsEstablishmentUnit(in); got != want {
			t.Errorf("IsEstablishmentUnit(%q) = %v", in, got)
		}
	}
}

func TestMakeEnterprise(t *testing.T) {
	for _, eight := range []int{0, 1234567, 10000000, 21000000, 89999999} {
		n := MakeEnterprise(eight)
		if c, err := (Enterprise{}).Canonical(n); err != nil || c != n {
			t.Errorf("MakeEnterprise(%d) = %q: %v", eight, n, err)
		}
	}
}

func TestKinds(t *testing.T) {
	k := DefaultKinds(nil)
	if c, err := k.Canonical("", "85.07.30-033.28"); err != nil || c != "85073003328" {
		t.Errorf("person: %q, %v", c, err)
	}
	if c, err := k.Canonical("enterprise", "BE0123.456.749"); err != nil || c != "0123456749" {
		t.Errorf("enterprise: %q, %v", c, err)
	}
	if _, err := k.Canonical("enterprise", "85073003328"); err == nil {
		t.Error("an INSZ passed as an enterprise number")
	}
	if _, err := k.Canonical("person", "0123456749"); err == nil {
		t.Error("an enterprise number passed as an INSZ")
	}
	if _, err := k.Canonical("vessel", "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
	if k := DefaultKinds(Opaque{}); k["person"].Name() != "opaque" {
		t.Error("the person scheme is not pluggable")
	}
}

// FuzzEnterprise: Canonical never panics, its output is canonical (10
// digits, first 0–8, valid check), canonicalising it again is the identity,
// and its errors never echo the input.
func FuzzEnterprise(f *testing.F) {
	for _, s := range []string{"0123.456.749", "BE0123456749", "123.456.749", "2.100.000.015", "0123456748", "be", "9999999999", "0.1.2.3.4.5.6.7.4.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Enterprise{}.Canonical(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if len(in) > 3 && strings.Contains(err.Error(), in) {
				t.Fatalf("error echoes the input: %v", err)
			}
			return
		}
		if len(c) != 10 || c[0] > '8' || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("Canonical(%q) = %q: not canonical", in, c)
		}
		again, err := Enterprise{}.Canonical(c)
		if err != nil || again != c {
			t.Fatalf("Canonical(%q) = %q, %v", c, again, err)
		}
	})
}
