package spe

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  string
		final bool
		want  string
	}{
		{"csv", "region,sex,n\nEast,F,3\nWest,M,4\n", true, TypeCSV},
		{"semicolon csv", "region;n\nEast;3\n", true, TypeCSV},
		{"csv with BOM", "\ufeffa,b\n1,2\n", true, TypeCSV},
		{"csv cut mid-line", "a,b\n1,2\n3,4\n5,", false, TypeCSV},
		{"parquet", "PAR1\x15\x00\x15", false, TypeParquet},
		{"json", "  {\"a\": 1}", true, TypeJSON},
		{"json array", "[1,2]", true, TypeJSON},
		{"text", "Dear colleague,\nsee attached.\n", true, TypeText},
		{"one column", "name\nAlice\nBob\n", true, TypeText},
		{"ragged", "a,b\n1\n", true, TypeText},
		{"binary", "MZ\x90\x00\x03\x00\x00\x00", false, ""},
		{"zip", "PK\x03\x04\x14\x00\x00\x00", false, ""},
		{"latin-1", "r\xe9gion,n\nEst,3\n", true, ""},
		{"empty", "", true, TypeText},
	} {
		if got := Sniff([]byte(tc.head), tc.final); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// The name plays no part: only the bytes are looked at.
	long := strings.Repeat("East,F,3\n", 1000)
	if Sniff([]byte("region,sex,n\n"+long), false) != TypeCSV {
		t.Error("long csv")
	}
}

func TestCheckWhole(t *testing.T) {
	if err := checkWhole(strings.NewReader("a,b\n1,2\n"), TypeCSV, 8); err != nil {
		t.Errorf("csv: %v", err)
	}
	if err := checkWhole(strings.NewReader("a,b\n1,2\n3\n"), TypeCSV, 10); err == nil {
		t.Error("ragged csv accepted")
	}
	if err := checkWhole(strings.NewReader(`{"a":1}{"b":2}`), TypeJSON, 14); err == nil {
		t.Error("two JSON values accepted")
	}
	pq := "PAR1" + strings.Repeat("x", 10) + "PAR1"
	if err := checkWhole(strings.NewReader(pq), TypeParquet, int64(len(pq))); err != nil {
		t.Errorf("parquet: %v", err)
	}
	if err := checkWhole(strings.NewReader("PAR1xxxxxxxxxxxx"), TypeParquet, 16); err == nil {
		t.Error("parquet without footer accepted")
	}
}

func TestParseChecksum(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for _, v := range []string{"sha256 " + good, "sha1 " + good} {
		if _, err := parseChecksum(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"", "sha256", "md5 " + good, "sha256 not-base64!", "crc32 AAAA"} {
		if _, err := parseChecksum(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "PAR1", "{}", "text\n", "\x00\x01", "a;b\n", "\"a\",\"b\"\n\"1\n2\",3\n"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, final bool) {
		switch typ := Sniff(b, final); typ {
		case "", TypeCSV, TypeJSON, TypeParquet, TypeText:
			if typ == TypeParquet && !bytes.HasPrefix(b, []byte("PAR1")) {
				t.Fatal("parquet without magic")
			}
		default:
			t.Fatalf("type %q", typ)
		}
	})
}

func FuzzParseChecksum(f *testing.F) {
	f.Add("sha256 " + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("sha1 AAAA")
	f.Add("x")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseChecksum(v)
		if err == nil && c.h == nil {
			t.Fatalf("%q: a checksum without a hash", v)
		}
	})
}

func FuzzOpener(f *testing.F) {
	k := make([]byte, 32)
	a, _ := newAEAD(k)
	f.Add(sealSegment(nil, a, "p", "f", 0, []byte("hello")), int64(5))
	f.Add([]byte{0, 0, 0, 1, 2}, int64(1))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if size < 0 || size > 1<<20 {
			return
		}
		o, _ := newOpener(bytes.NewReader(b), k, "p", "f", size, nil)
		out, err := io.ReadAll(o)
		if err == nil && int64(len(out)) != size {
			t.Fatalf("read %d bytes, want %d", len(out), size)
		}
	})
}
