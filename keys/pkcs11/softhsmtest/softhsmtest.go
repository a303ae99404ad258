//go:build cgo

// Package softhsmtest gives tests a fresh SoftHSM2 token.
package softhsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/keys/pkcs11"
)

// Token initialises a fresh SoftHSM2 token in a temporary directory (via
// SOFTHSM2_CONF, for the rest of the test) and returns its configuration
// and the token directory. Without SoftHSM2 the test is skipped, except in
// CI (CROSSROADS_REQUIRE_POSTGRES set), where .ci/run installs it.
func Token(t *testing.T) (pkcs11.Config, string) {
	t.Helper()
	module := ""
	for _, m := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("CROSSROADS_REQUIRE_POSTGRES") != "" {
			t.Fatal("SoftHSM2 is not installed (apt-get install softhsm2)")
		}
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2): PKCS#11 provider not tested")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "crossroads-test", "--pin", "1234", "--so-pin", "12345678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, out)
	}
	return pkcs11.Config{Module: module, TokenLabel: "crossroads-test", PIN: "1234"}, tokens
}
