package personid

import (
	"fmt"
	"strings"
)

// Enterprise is the Belgian enterprise number of the Crossroads Bank for
// Enterprises (CBE/KBO/BCE) and the establishment-unit number: 10 digits,
// the last two a check of 97 − (first eight digits mod 97). Enterprise
// numbers start with 0 or 1, establishment units with 2 to 8.
type Enterprise struct{}

// Name implements Scheme.
func (Enterprise) Name() string { return "cbe" }

// Canonical accepts the written forms users type — "0123.456.749",
// "0123 456 749", "BE0123456749", "BE 0123.456.749", and the old nine-digit
// form "123.456.749" (a leading 0 implied) — and returns the 10 digits.
func (Enterprise) Canonical(id string) (string, error) {
	if len(id) > 32 {
		return "", fmt.Errorf("%w: too long", ErrInvalid)
	}
	s := id
	if len(s) >= 2 && strings.EqualFold(s[:2], "BE") {
		s = s[2:]
	}
	var b [10]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == 10 {
				return "", fmt.Errorf("%w: more than 10 digits", ErrInvalid)
			}
			b[n] = c
			n++
		case c == '.' || c == ' ' || c == '-':
		default:
			return "", fmt.Errorf("%w: unexpected character", ErrInvalid)
		}
	}
	switch n {
	case 10:
	case 9: // the old VAT-style form: a leading 0 implied
		copy(b[1:], b[:9])
		b[0] = '0'
	default:
		return "", fmt.Errorf("%w: want 10 digits, got %d", ErrInvalid, n)
	}
	if b[0] == '9' {
		return "", fmt.Errorf("%w: first digit must be 0–8", ErrInvalid)
	}
	var base int64
	for i := 0; i < 8; i++ {
		base = base*10 + int64(b[i]-'0')
	}
	check := int64(b[8]-'0')*10 + int64(b[9]-'0')
	if 97-base%97 != check {
		return "", fmt.Errorf("%w: check digits do not match", ErrInvalid)
	}
	if n == 10 && len(id) == 10 {
		return id, nil // already canonical (10 digits, nothing else): no copy
	}
	return string(b[:]), nil
}

// IsEstablishmentUnit reports whether a canonical CBE number is an
// establishment unit (first digit 2–8) rather than an enterprise.
func IsEstablishmentUnit(canonical string) bool {
	return len(canonical) == 10 && canonical[0] >= '2' && canonical[0] <= '8'
}

// MakeEnterprise builds a valid CBE number from its first eight digits
// (first digit 0 or 1 for an enterprise, 2–8 for an establishment unit).
// Used by the demo and tests to make synthetic companies.
func MakeEnterprise(eight int) string {
	base := int64(eight % 100_000_000)
	return fmt.Sprintf("%08d%02d", base, 97-base%97)
}

// Kinds maps each subject kind of a network ("person", "enterprise", or a
// kind the network adds) to the scheme of its identifiers.
type Kinds map[string]Scheme

// DefaultKinds returns the built-in kinds: persons under the given scheme
// (INSZ if nil) and enterprises under the CBE scheme.
func DefaultKinds(person Scheme) Kinds {
	if person == nil {
		person = INSZ{}
	}
	return Kinds{"person": person, "enterprise": Enterprise{}}
}

// Canonical validates id under the scheme of kind ("" means person).
func (k Kinds) Canonical(kind, id string) (string, error) {
	if kind == "" {
		kind = "person"
	}
	s, ok := k[kind]
	if !ok {
		return "", fmt.Errorf("%w: unknown subject kind", ErrInvalid)
	}
	return s.Canonical(id)
}
