package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// bin is the crossroads binary built once for the tests that drive the CLI
// as an operator does.
var bin string

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	dir, err := os.MkdirTemp("", "crossroads-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "crossroads")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build crossroads: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testPassphrase = "a long test passphrase"

// cleanEnv is the environment without CROSSROADS_* settings, plus env.
func cleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CROSSROADS_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary in wd with the CA passphrase and env set.
func cli(t *testing.T, wd string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = wd
	cmd.Env = cleanEnv(append([]string{"CROSSROADS_CA_PASSPHRASE=" + testPassphrase}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("crossroads %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// ok runs cli and fails the test unless it exits 0.
func ok(t *testing.T, wd string, env []string, args ...string) string {
	t.Helper()
	r := cli(t, wd, env, args...)
	if r.code != 0 {
		t.Fatalf("crossroads %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs cli and fails the test if it exits 0.
func fails(t *testing.T, wd string, env []string, args ...string) result {
	t.Helper()
	r := cli(t, wd, env, args...)
	if r.code == 0 {
		t.Fatalf("crossroads %s succeeded:\n%s", strings.Join(args, " "), r.stdout)
	}
	return r
}

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
	if !isSet(fs, "dir") || !isSet(fs, "listen") || isSet(fs, "other") {
		t.Fatal("isSet does not say which flags got a value")
	}
}

// TestParseConfigYAMLLists: a YAML list in --config sets a repeatable flag
// once per item (it used to become one string "[a b]").
func TestParseConfigYAMLLists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("hostname:\n  - hub.example\n  - 10.0.0.1\nwitness:\n  - https://w1.example/ w1+0badc0de+AAAA\n  - https://w2.example/ w2+0badc0de+BBBB\n"), 0o600)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var hosts, witnesses listFlag
	fs.Var(&hosts, "hostname", "")
	fs.Var(&witnesses, "witness", "")
	if err := parseConfig(fs, []string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(hosts, "|") != "hub.example|10.0.0.1" || len(witnesses) != 2 || witnesses[1] != "https://w2.example/ w2+0badc0de+BBBB" {
		t.Fatalf("hosts %q, witnesses %q", hosts, witnesses)
	}
	os.WriteFile(file, []byte("hostname:\n  a: b\n"), 0o600)
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&hosts, "hostname", "")
	if err := parseConfig(fs, []string{"--config", file}); err == nil {
		t.Fatal("a YAML map was accepted as a flag value")
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o := fs.String("o", "table", "")
	pos, err := parseArgs(fs, []string{"participants", "-o", "json", "ops", "--", "-x"})
	if err != nil || *o != "json" || strings.Join(pos, " ") != "participants ops -x" {
		t.Fatalf("pos %q, o %q, err %v", pos, *o, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := parseConfig(fs, []string{"stray"}); err != errUsage {
		t.Fatalf("a positional argument was accepted: %v", err)
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

func TestMemTotal(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo here")
	}
	if m := memTotal(); m < 64<<20 {
		t.Fatalf("memTotal = %d", m)
	}
}
