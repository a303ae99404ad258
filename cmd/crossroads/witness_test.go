package main

import (
	"path/filepath"
	"testing"
)

// TestWitnessKeyFileRoundTrip: a created witness key file is read back as
// the same key, for 200 keys (one in two used to fail: the key was split on
// "+", a base64 character); a different --name is refused.
func TestWitnessKeyFileRoundTrip(t *testing.T) {
	for i := range 200 {
		dir := filepath.Join(t.TempDir(), "w")
		created, isNew, err := loadOrCreateWitnessKey(dir, "witness.example/w1")
		if err != nil || !isNew {
			t.Fatalf("key %d: create: %v, new %v", i, err, isNew)
		}
		read, isNew, err := loadOrCreateWitnessKey(dir, "")
		if err != nil || isNew || read.VerifierKey() != created.VerifierKey() {
			t.Fatalf("key %d: read back: %v, new %v", i, err, isNew)
		}
		if i == 0 {
			if _, _, err := loadOrCreateWitnessKey(dir, "other.example/w2"); err == nil {
				t.Fatal("a key of another name was accepted")
			}
			if _, _, err := loadOrCreateWitnessKey(filepath.Join(t.TempDir(), "none"), ""); err == nil {
				t.Fatal("no key and no name: accepted")
			}
		}
	}
}
