package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

func TestParseConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("listen: file:1\ndir: from-file\nlog-level: warn\n"), 0o600)
	t.Setenv("CROSSROADS_DIR", "from-env")
	t.Setenv("CROSSROADS_LOG_LEVEL", "debug")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	listen := fs.String("listen", "default", "")
	dir := fs.String("dir", "default", "")
	level := fs.String("log-level", "info", "")
	other := fs.String("other", "default", "")
	if err := parseConfig(fs, []string{"--config", file, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if *level != "error" || *dir != "from-env" || *listen != "file:1" || *other != "default" {
		t.Fatalf("flag>env>file>default broken: level=%s dir=%s listen=%s other=%s", *level, *dir, *listen, *other)
	}
}

func TestParseConfigRejectsUnknownSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("lisen: typo\n"), 0o600)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("listen", "", "")
	if err := parseConfig(fs, []string{"--config", file}); err == nil {
		t.Fatal("a misspelt setting was accepted")
	}
}

// TestCAAndApplyCommands drives the CLI as an operator would: init the CA,
// issue a certificate, apply a network file (dry run, then for real, then
// again as a no-op), revoke and list; and a broken file fails.
func TestCAAndApplyCommands(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	out := t.TempDir()
	t.Setenv("CROSSROADS_CA_PASSPHRASE", "a long test passphrase")
	if err := runCA(ctx, []string{"init", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	if err := runCA(ctx, []string{"init", "--dir", dir}); err == nil {
		t.Fatal("a second init overwrote the CA")
	}
	if err := runCA(ctx, []string{"issue", "--dir", dir, "--participant", "ops", "--out", out}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ops.crt", "ops.key"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("issue wrote no %s: %v", f, err)
		}
	}
	if err := runCA(ctx, []string{"issue", "--dir", dir, "--participant", "Not Valid", "--out", out}); err == nil {
		t.Fatal("an invalid participant id was issued a certificate")
	}
	network := filepath.Join("..", "..", "apply", "testdata", "network.yaml")
	for _, args := range [][]string{{"--dry-run"}, nil, nil} {
		if err := runApply(ctx, append([]string{"--dir", dir, "-f", network}, args...)); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("participants:\n  - {id: x, kind: spaceship}\n"), 0o600)
	if err := runApply(ctx, []string{"--dir", dir, "-f", bad}); err == nil {
		t.Fatal("an invalid network file was applied")
	}
	if err := runCA(ctx, []string{"revoke", "--dir", dir, "--serial", "00"}); err == nil {
		t.Fatal("revoking an unknown serial succeeded")
	}
	if err := runCA(ctx, []string{"list", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CROSSROADS_CA_PASSPHRASE", "the wrong passphrase!")
	if err := runCA(ctx, []string{"issue", "--dir", dir, "--participant", "x", "--out", out}); err == nil {
		t.Fatal("issued with a wrong passphrase")
	}
}

func TestMemTotal(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo here")
	}
	if m := memTotal(); m < 64<<20 {
		t.Fatalf("memTotal = %d", m)
	}
}
