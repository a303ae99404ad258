// Command crossroads runs the Crossroads hub and its tools.
//
// Each command lives in its own file and registers itself with register
// (subcommands with sub); this file only dispatches. Help is handled here,
// once for every command: --help, -h and 'help <command>' print usage,
// exit 0 and do nothing else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is an entry of the command table: a leaf with run, a group of
// subcommands, or both (a leaf whose first argument may name a subcommand).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
	subs    map[string]*command
}

var commands = map[string]*command{}

// register adds a command; called from init functions.
func register(name, summary string, run func(ctx context.Context, args []string) error) *command {
	c := &command{name: name, summary: summary, run: run}
	commands[name] = c
	return c
}

// sub adds a subcommand to c and returns c.
func (c *command) sub(name, summary string, run func(ctx context.Context, args []string) error) *command {
	if c.subs == nil {
		c.subs = map[string]*command{}
	}
	c.subs[name] = &command{name: c.name + " " + name, summary: summary, run: run}
	return c
}

// errUsage reports bad flags or arguments; usage has already been printed.
var errUsage = errors.New("usage")

// errHelp reports that help was asked for and printed: exit 0.
var errHelp = errors.New("help")

func sortedNames(m map[string]*command) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printCommands(w io.Writer, title string, m map[string]*command) {
	fmt.Fprintf(w, "%s:\n", title)
	for _, n := range sortedNames(m) {
		fmt.Fprintf(w, "  %-12s %s\n", n, m[n].summary)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: crossroads <command> [flags]")
	fmt.Fprintln(w)
	printCommands(w, "commands", commands)
	fmt.Fprintln(w, "\nRun 'crossroads <command> --help' (or 'crossroads help <command>') for a command's flags.")
	fmt.Fprintln(w, "Every flag can also be set as CROSSROADS_<FLAG> or in a YAML file named by --config.")
}

func groupUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: crossroads %s <subcommand> [flags]\n\n%s\n\n", c.name, c.summary)
	printCommands(w, "subcommands", c.subs)
	fmt.Fprintf(w, "\nRun 'crossroads %s <subcommand> --help' for its flags.\n", c.name)
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// wantsHelp reports whether a help flag appears among args, before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// dispatch runs c with args. With a help flag anywhere in args, a leaf is
// given only "--help", so that it prints its usage before doing anything.
func dispatch(ctx context.Context, c *command, args []string) error {
	if len(args) > 0 && c.subs[args[0]] != nil {
		return dispatch(ctx, c.subs[args[0]], args[1:])
	}
	if c.subs != nil && c.run == nil {
		if len(args) == 0 {
			groupUsage(os.Stderr, c)
			return errUsage
		}
		if isHelp(args[0]) {
			if len(args) > 1 && args[0] == "help" {
				if s, ok := c.subs[args[1]]; ok {
					return dispatch(ctx, s, []string{"--help"})
				}
			}
			groupUsage(os.Stdout, c)
			return errHelp
		}
		s, ok := c.subs[args[0]]
		if !ok && wantsHelp(args) {
			groupUsage(os.Stdout, c)
			return errHelp
		}
		if !ok {
			fmt.Fprintf(os.Stderr, "crossroads %s: unknown subcommand %q\n\n", c.name, args[0])
			groupUsage(os.Stderr, c)
			return errUsage
		}
		return dispatch(ctx, s, args[1:])
	}
	if wantsHelp(args) {
		args = []string{"--help"}
	}
	return c.run(ctx, args)
}

// run is main without os.Exit: it returns the exit status.
func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return status(c, dispatch(ctx, c, append(args[2:len(args):len(args)], "--help")))
			}
			fmt.Fprintf(os.Stderr, "crossroads: unknown command %q\n", args[1])
			return 2
		}
		usage(os.Stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "crossroads: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	return status(c, dispatch(ctx, c, args[1:]))
}

func status(c *command, err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(os.Stderr, "crossroads %s: %v\n", c.name, err)
	return 1
}

func main() {
	if len(os.Args) > 1 && !isHelp(os.Args[1]) && !wantsHelp(os.Args[1:]) {
		tuneGC()
		tuneProcs()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// join is strings.Join for messages.
func join(s []string) string { return strings.Join(s, " ") }
