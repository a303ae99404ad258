package pki

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
)

func TestParseSerialSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"0a1b2c":                 "a1b2c",
		"0A1B2C":                 "a1b2c",
		"a1b2c":                  "a1b2c",
		"0a:1b:2c":               "a1b2c",
		"0A:1B:2C":               "a1b2c",
		"00:0a:1b:2c":            "a1b2c",
		"serial=0A1B2C":          "a1b2c",
		"0x0a1b2c":               "a1b2c",
		" 0a1b2c\n":              "a1b2c",
		"0":                      "0",
		"00":                     "0",
		strings.Repeat("f", 128): strings.Repeat("f", 128),
	} {
		got, err := ParseSerial(in)
		if err != nil || got != want {
			t.Errorf("ParseSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseSerialRejects(t *testing.T) {
	for _, in := range []string{"", " ", "xyz", "0a-1b", ":0a", "0a:", "0a::1b", "0a 1b", "é", "0x", strings.Repeat("f", 129), strings.Repeat("0a:", 200)} {
		_, err := ParseSerial(in)
		if err == nil {
			t.Errorf("ParseSerial(%q) accepted", in)
			continue
		}
		if !errors.Is(err, crossroads.ErrInvalid) || !errors.Is(err, ErrInvalidSerial) {
			t.Errorf("ParseSerial(%q): %v does not wrap ErrInvalid and ErrInvalidSerial", in, err)
		}
	}
}

// TestParseSerialOpenSSLForms: a serial as openssl prints it is read back
// as the one SerialHex gives.
func TestParseSerialOpenSSLForms(t *testing.T) {
	n, _ := new(big.Int).SetString("00ff0a0b0c0d0e0f10111213141516", 16)
	want := serialText(n)
	b := n.Bytes()
	var colon []string
	for _, x := range append([]byte{0}, b...) {
		colon = append(colon, strings.ToUpper(hex2(x)))
	}
	for _, in := range []string{"serial=" + strings.ToUpper(want), strings.Join(colon, ":"), strings.ToLower(strings.Join(colon, ":"))} {
		if got, err := ParseSerial(in); err != nil || got != want {
			t.Errorf("ParseSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func hex2(b byte) string { return string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15]) }

func FuzzParseSerial(f *testing.F) {
	for _, s := range []string{"0a:1b", "SERIAL=00FF", "0x1", "", "::", "ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseSerial(s)
		if err != nil {
			return
		}
		if crossroads.ValidSerial(c) != nil {
			t.Fatalf("ParseSerial(%q) = %q, which the stores refuse", s, c)
		}
		if again, err := ParseSerial(c); err != nil || again != c {
			t.Fatalf("canonical %q does not parse to itself: %q, %v", c, again, err)
		}
		if canonicalSerial(s) != c {
			t.Fatalf("canonicalSerial(%q) = %q, ParseSerial %q", s, canonicalSerial(s), c)
		}
	})
}
