// Package personid validates and canonicalises person identifiers. The
// Belgian INSZ/NISS (national register and BIS numbers) is built in; a
// network can plug in its own Scheme.
package personid

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme validates person identifiers of one numbering scheme.
type Scheme interface {
	// Name identifies the scheme, e.g. "insz".
	Name() string
	// Canonical returns the canonical form of id, or an error saying why it
	// is not a valid identifier. It never echoes id in the error.
	Canonical(id string) (string, error)
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid subject identifier")

// INSZ is the Belgian social security identification number (INSZ/NISS):
// the national register number or, for people not in it, a BIS number.
type INSZ struct{}

// Name implements Scheme.
func (INSZ) Name() string { return "insz" }

// Canonical accepts 11 digits, optionally written with the usual separators
// ("85.07.30-033.28", "850730 033 28"), and returns the 11 digits.
//
// The check number is 97 − (first nine digits mod 97); for people born from
// 2000 on, it is computed over "2" followed by the nine digits. BIS numbers
// add 20 (sex unknown) or 40 (sex known) to the month. A month or day of 00
// is allowed (date of birth partly unknown).
func (INSZ) Canonical(id string) (string, error) {
	if len(id) > 32 {
		return "", fmt.Errorf("%w: too long", ErrInvalid)
	}
	var b [11]byte
	n := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			if n == 11 {
				return "", fmt.Errorf("%w: more than 11 digits", ErrInvalid)
			}
			b[n] = c
			n++
		case c == '.' || c == '-' || c == ' ':
		default:
			return "", fmt.Errorf("%w: unexpected character", ErrInvalid)
		}
	}
	if n != 11 {
		return "", fmt.Errorf("%w: want 11 digits, got %d", ErrInvalid, n)
	}
	month := int(b[2]-'0')*10 + int(b[3]-'0')
	day := int(b[4]-'0')*10 + int(b[5]-'0')
	switch {
	case month <= 12:
	case month >= 20 && month <= 32:
		month -= 20
	case month >= 40 && month <= 52:
		month -= 40
	default:
		return "", fmt.Errorf("%w: month out of range", ErrInvalid)
	}
	_ = month
	if day > 31 {
		return "", fmt.Errorf("%w: day out of range", ErrInvalid)
	}
	var base int64
	for i := 0; i < 9; i++ {
		base = base*10 + int64(b[i]-'0')
	}
	check := int64(b[9]-'0')*10 + int64(b[10]-'0')
	if 97-base%97 == check || 97-(2_000_000_000+base)%97 == check {
		if len(id) == 11 {
			return id, nil // already canonical: no copy
		}
		return string(b[:]), nil
	}
	return "", fmt.Errorf("%w: check digits do not match", ErrInvalid)
}

// Schemes returns the built-in schemes by name.
func Schemes() map[string]Scheme {
	return map[string]Scheme{"insz": INSZ{}, "opaque": Opaque{}, "cbe": Enterprise{}}
}

// Lookup returns the named scheme; "" means the default, INSZ.
func Lookup(name string) (Scheme, error) {
	if name == "" {
		return INSZ{}, nil
	}
	s, ok := Schemes()[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown person id scheme %q", name)
	}
	return s, nil
}

// Opaque accepts identifiers of 1–64 characters from [A-Za-z0-9._:-], for
// networks whose identifiers carry no check digits.
type Opaque struct{}

// Name implements Scheme.
func (Opaque) Name() string { return "opaque" }

// Canonical implements Scheme.
func (Opaque) Canonical(id string) (string, error) {
	if id == "" || len(id) > 64 {
		return "", fmt.Errorf("%w: want 1 to 64 characters", ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return "", fmt.Errorf("%w: unexpected character", ErrInvalid)
		}
	}
	return id, nil
}

// Make builds a valid INSZ from a birth date part (yymmdd, month possibly
// shifted for BIS), a 3-digit serial and whether the person was born from
// 2000 on. Used by the demo and tests to make synthetic people.
func Make(yymmdd string, serial int, born2000 bool) string {
	nine := fmt.Sprintf("%s%03d", yymmdd, serial%1000)
	var base int64
	for i := 0; i < 9; i++ {
		base = base*10 + int64(nine[i]-'0')
	}
	if born2000 {
		base += 2_000_000_000
	}
	return fmt.Sprintf("%s%02d", nine, 97-base%97)
}
