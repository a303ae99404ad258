package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestKeysCommands: list, rotate a key, rotate with an unknown kind, and
// 'audit check' on the hub's directory opens the trail through the
// keyring.
func TestKeysCommands(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CROSSROADS_CA_PASSPHRASE", "a long test passphrase")
	if err := caInit(ctx, []string{"--dir", dir}); err != nil {
		t.Fatal(err)
	}
	if err := runKeys(ctx, []string{"list", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	if err := runKeys(ctx, []string{"rotate", "kek", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	if err := runKeys(ctx, []string{"rotate", "nonsense", "--dir", dir}); err == nil {
		t.Fatal("rotated an unknown kind")
	}
	if err := keysRotate(ctx, nil); err != errUsage {
		t.Fatalf("rotate without a kind: %v", err)
	}
	if err := runKeys(ctx, []string{"frobnicate"}); err != errUsage {
		t.Fatalf("unknown subcommand: %v", err)
	}
	if err := runKeys(ctx, []string{"list", "--dir", dir, "--pkcs11-module", "/nonexistent.so", "--pkcs11-token", "x"}); err == nil {
		t.Fatal("opened a missing PKCS#11 module")
	}
	if !hubKeys(filepath.Join(dir, "audit")) {
		t.Fatal("the hub's audit directory is not recognised")
	}
	if err := auditCheck(ctx, []string{"--dir", filepath.Join(dir, "audit")}); err != nil {
		t.Fatalf("audit check through the keyring: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit", "audit-keys")); !os.IsNotExist(err) {
		t.Fatal("audit check created plaintext keys beside the hub's")
	}
}
