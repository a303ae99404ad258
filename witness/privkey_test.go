package witness

import (
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestPrivateKeyRoundTrip1000 generates 1,000 keys (about three in four
// contain a "+" in their base64, which a split on "+" breaks) and reads
// each back.
func TestPrivateKeyRoundTrip1000(t *testing.T) {
	plus := 0
	for i := range 1000 {
		skey, c, err := GenerateKey("witness.example.org/w1")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(skey, "+") > 4 {
			plus++
		}
		got, err := ParsePrivateKey(skey + "\n")
		if err != nil {
			t.Fatalf("key %d %q: %v", i, skey, err)
		}
		if got.Name() != c.Name() || got.VerifierKey() != c.VerifierKey() {
			t.Fatalf("key %d: read back as another key", i)
		}
		// x/mod agrees on the format.
		if _, err := note.NewSigner(skey); err != nil {
			t.Fatalf("key %d: x/mod refuses it: %v", i, err)
		}
	}
	if plus == 0 {
		t.Fatal("no generated key had a '+' in its base64: the test proves nothing")
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	skey, _, err := GenerateKey("w")
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := GenerateKey("w")
	_, _, otherKey := cut3(other)
	name, id, _ := cut3(skey)
	for _, bad := range []string{
		"",
		"PRIVATE+KEY",
		"PUBLIC+KEY+w+00000000+AAAA",
		"PRIVATE+KEY+w+zzzzzzzz+" + otherKey,
		"PRIVATE+KEY+" + name + "+" + id + "+" + otherKey, // ID of another key
		"PRIVATE+KEY+" + name + "+" + id + "+!!!!",
		"PRIVATE+KEY+" + name + "+" + id,
		"PRIVATE+KEY+bad name+" + id + "+" + otherKey,
	} {
		if _, err := ParsePrivateKey(bad); err == nil {
			t.Errorf("ParsePrivateKey(%q) accepted", bad)
		}
	}
	if _, _, err := GenerateKey("has+plus"); err == nil {
		t.Error("a key name with '+' was accepted")
	}
}

func cut3(skey string) (name, id, key string) {
	rest := strings.TrimPrefix(skey, "PRIVATE+KEY+")
	name, rest, _ = strings.Cut(rest, "+")
	id, key, _ = strings.Cut(rest, "+")
	return
}

func FuzzParsePrivateKey(f *testing.F) {
	skey, _, _ := GenerateKey("witness.example/w")
	f.Add(skey)
	f.Add("PRIVATE+KEY+a+00000000+AQ==")
	f.Add("PRIVATE+KEY+++++")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParsePrivateKey(s)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to a key that parses to the same one.
		again, err := ParsePrivateKey(MarshalPrivateKey(c.Name(), c.key))
		if err != nil || again.VerifierKey() != c.VerifierKey() {
			t.Fatalf("re-encoded key differs: %v", err)
		}
	})
}
