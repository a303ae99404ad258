package pki

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crossroads-hub/crossroads"
)

// maxSerialDigits bounds a serial: RFC 5280 allows 20 octets; the stores
// accept up to 128 hex digits.
const maxSerialDigits = 128

// ErrInvalidSerial is returned (wrapped, with crossroads.ErrInvalid) for a
// string that is not a certificate serial number.
var ErrInvalidSerial = errors.New("pki: invalid certificate serial")

// ParseSerial reads a certificate serial number written in hex as people
// and tools write it — any case, with or without leading zeros, with or
// without ':' (openssl x509 -serial prints "serial=0A1B…", openssl x509
// -text "0a:1b:…"), an optional "0x" or "serial=" prefix — and returns the
// canonical form the registers use (SerialHex: lowercase, no separators,
// no leading zeros). Every place that takes a serial from outside (the
// CLI, the admin API) goes through it.
func ParseSerial(s string) (string, error) {
	t := strings.TrimSpace(s)
	if v, ok := cutPrefixFold(t, "serial="); ok {
		t = v
	}
	if v, ok := cutPrefixFold(t, "0x"); ok {
		t = v
	}
	if len(t) > 3*maxSerialDigits {
		return "", fmt.Errorf("%w: %w: too long", crossroads.ErrInvalid, ErrInvalidSerial)
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == ':' && i > 0 && i < len(t)-1 && t[i-1] != ':':
			continue
		default:
			return "", fmt.Errorf("%w: %w: %q is not hex digits (optionally ':'-separated)", crossroads.ErrInvalid, ErrInvalidSerial, s)
		}
		b = append(b, c)
	}
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	if len(b) == 0 {
		return "", fmt.Errorf("%w: %w: empty", crossroads.ErrInvalid, ErrInvalidSerial)
	}
	if len(b) > maxSerialDigits {
		return "", fmt.Errorf("%w: %w: more than %d hex digits", crossroads.ErrInvalid, ErrInvalidSerial, maxSerialDigits)
	}
	return string(b), nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
