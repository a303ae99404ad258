package personid

import (
	"errors"
	"testing"
)

func TestINSZ(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"85073003328", "85073003328", true},     // 97 - 850730033 % 97 = 28
		{"85.07.30-033.28", "85073003328", true}, // separators
		{"85073003329", "", false},               // wrong check
		{Make("010203", 45, true), "", true},     // born 2000+
		{Make("010203", 45, false), "", true},    // same digits before 2000
		{Make("852730", 1, false), "", true},     // BIS, sex unknown
		{Make("854730", 1, false), "", true},     // BIS, sex known
		{Make("850000", 7, false), "", true},     // month and day unknown
		{Make("851330", 7, false), "", false},    // month 13
		{Make("853330", 7, false), "", false},    // month 33
		{Make("850732", 7, false), "", false},    // day 32
		{"8507300332", "", false},                // 10 digits
		{"850730033281", "", false},              // 12 digits
		{"85O73003328", "", false},               // letter O
		{"", "", false},
	}
	for _, tc := range tests {
		got, err := INSZ{}.Canonical(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("Canonical(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Canonical(%q) error %v does not wrap ErrInvalid", tc.in, err)
		}
		if tc.ok && tc.want != "" && got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMake2000RuleDistinguishes(t *testing.T) {
	a, b := Make("010203", 45, true), Make("010203", 45, false)
	if a == b {
		t.Fatalf("2000 rule should change the check digits: %s", a)
	}
}

func TestOpaque(t *testing.T) {
	if _, err := (Opaque{}).Canonical("abc-DEF_1.2:3"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a b", "a/b", string(make([]byte, 65))} {
		if _, err := (Opaque{}).Canonical(bad); err == nil {
			t.Errorf("Opaque accepted %q", bad)
		}
	}
}

func FuzzINSZ(f *testing.F) {
	for _, s := range []string{"85073003328", "85.07.30-033.28", "", "99999999999", "00000000097"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := INSZ{}.Canonical(s)
		if err != nil {
			return
		}
		if len(c) != 11 {
			t.Fatalf("canonical %q not 11 digits", c)
		}
		again, err := INSZ{}.Canonical(c)
		if err != nil || again != c {
			t.Fatalf("canonical form not stable: %q -> %q, %v", c, again, err)
		}
	})
}

func TestCanonicalFormsReturnedAsIs(t *testing.T) {
	for _, tc := range []struct {
		s        Scheme
		in, want string
	}{
		{INSZ{}, "85073003328", "85073003328"},
		{INSZ{}, "85.07.30-033.28", "85073003328"},
		{Enterprise{}, "0123456749", "0123456749"},
		{Enterprise{}, "123456.749", "0123456749"}, // nine digits and a separator: ten bytes, not canonical
		{Enterprise{}, "BE0123456749", "0123456749"},
	} {
		got, err := tc.s.Canonical(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s(%q) = %q, %v; want %q", tc.s.Name(), tc.in, got, err, tc.want)
		}
	}
}
