package pki

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealWithPassphrase(t *testing.T) {
	pass := []byte("pass")
	sealed, err := SealWithPassphrase("crossroads-root-key", []byte("secret"), pass)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("sealed holds the secret")
	}
	got, err := OpenWithPassphrase("crossroads-root-key", sealed, pass)
	if err != nil || string(got) != "secret" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := OpenWithPassphrase("crossroads-root-key", sealed, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := OpenWithPassphrase("crossroads-other", sealed, pass); !errors.Is(err, ErrCorruptKeyFile) {
		t.Fatalf("other format: %v", err)
	}
	for _, f := range []string{keyFileFormat, "other", ""} {
		if _, err := SealWithPassphrase(f, []byte("x"), pass); err == nil {
			t.Fatalf("sealed with format %q", f)
		}
		if _, err := OpenWithPassphrase(f, sealed, pass); err == nil {
			t.Fatalf("opened with format %q", f)
		}
	}
	if _, err := SealWithPassphrase("crossroads-root-key", []byte("x"), nil); err == nil {
		t.Fatal("sealed with an empty passphrase")
	}
}

func TestChangePassphrase(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitCA(dir, []byte("old passphrase"), "CA"); err != nil {
		t.Fatal(err)
	}
	if err := ChangePassphrase(dir, []byte("wrong"), []byte("new passphrase")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong old passphrase: %v", err)
	}
	if err := ChangePassphrase(dir, []byte("old passphrase"), []byte("short")); err == nil {
		t.Fatal("changed to a short passphrase")
	}
	if err := ChangePassphrase(dir, []byte("old passphrase"), []byte("new passphrase")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir, []byte("old passphrase")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase after change: %v", err)
	}
	if _, err := LoadCA(dir, []byte("new passphrase")); err != nil {
		t.Fatal(err)
	}
}
