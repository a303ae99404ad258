package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// commandPaths lists every command and subcommand of the command table.
func commandPaths() [][]string {
	var paths [][]string
	for _, n := range sortedNames(commands) {
		c := commands[n]
		if c.run != nil || c.subs == nil {
			paths = append(paths, []string{n})
		}
		if c.subs == nil {
			continue
		}
		if c.run == nil {
			paths = append(paths, []string{n}) // the group's own help
		}
		for _, s := range sortedNames(c.subs) {
			paths = append(paths, []string{n, s})
		}
	}
	return paths
}

// TestHelpDoesNothingElse walks the command table: for every command and
// subcommand, --help, -h, 'help <command>' and a --help after other flags
// print usage on standard output and exit 0, create no file (in the
// working directory, $HOME or $TMPDIR) and, where strace is installed,
// open no socket. ('ca init --help' used to create a CA, 'demo --help' to
// start the demo.)
func TestHelpDoesNothingElse(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 15 {
		t.Fatalf("only %d commands in the table", len(paths))
	}
	strace, _ := exec.LookPath("strace")
	if strace == "" {
		t.Log("strace not installed: checking files and exit status, not sockets")
	}
	for _, p := range paths {
		name := strings.Join(p, " ")
		variants := [][]string{
			append(append([]string{}, p...), "--help"),
			append(append([]string{}, p...), "-h"),
			append([]string{"help"}, p...),
			append(append([]string{}, p...), "--dir", "x", "--serial", "00", "--help"),
		}
		for _, args := range variants {
			t.Run(strings.Join(args, "_"), func(t *testing.T) {
				wd, home, tmp := t.TempDir(), t.TempDir(), t.TempDir()
				trace := filepath.Join(t.TempDir(), "trace")
				argv := append([]string{bin}, args...)
				if strace != "" {
					argv = append([]string{strace, "-f", "-qq", "-e", "trace=bind,listen,connect", "-o", trace}, argv...)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
				cmd.Dir = wd
				cmd.Env = cleanEnv("HOME="+home, "TMPDIR="+tmp, "CROSSROADS_CA_PASSPHRASE="+testPassphrase)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				if err := cmd.Run(); err != nil {
					t.Fatalf("crossroads %s: %v\n%s", strings.Join(args, " "), err, errb.String())
				}
				if !strings.Contains(out.String(), "usage: crossroads "+name) {
					t.Fatalf("crossroads %s printed no usage of %q on stdout:\n%s", strings.Join(args, " "), name, out.String())
				}
				for _, d := range []string{wd, home, tmp} {
					if ents, _ := os.ReadDir(d); len(ents) > 0 {
						t.Fatalf("crossroads %s created %s", strings.Join(args, " "), ents[0].Name())
					}
				}
				if strace != "" {
					b, _ := os.ReadFile(trace)
					for _, l := range strings.Split(string(b), "\n") {
						if strings.Contains(l, "listen(") || strings.Contains(l, "bind(") || strings.Contains(l, "connect(") && !strings.Contains(l, "AF_UNIX") {
							t.Fatalf("crossroads %s opened a socket: %s", strings.Join(args, " "), l)
						}
					}
				}
			})
		}
	}
}

// TestHelpListsEveryCommand: the top-level usage names every command (the
// project's before-stop check reads it to find them).
func TestHelpListsEveryCommand(t *testing.T) {
	out := ok(t, t.TempDir(), nil, "--help")
	var listed []string
	f := false
	for _, l := range strings.Split(out, "\n") {
		if l == "commands:" {
			f = true
			continue
		}
		if f && strings.HasPrefix(l, "  ") {
			listed = append(listed, strings.Fields(l)[0])
		}
	}
	want := sortedNames(commands)
	sort.Strings(listed)
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Fatalf("usage lists %v, the table has %v", listed, want)
	}
	if r := cli(t, t.TempDir(), nil); r.code != 2 {
		t.Fatalf("no command: exit %d", r.code)
	}
	if r := cli(t, t.TempDir(), nil, "no-such-command"); r.code != 2 {
		t.Fatalf("unknown command: exit %d", r.code)
	}
	if r := cli(t, t.TempDir(), nil, "ca", "no-such"); r.code != 2 {
		t.Fatalf("unknown subcommand: exit %d", r.code)
	}
}
