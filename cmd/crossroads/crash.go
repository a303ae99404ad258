package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/crossroads-hub/crossroads/crash"
)

func init() {
	register("crash", "kill -9 the hub under load, restart it, and verify the audit trail and registers", runCrash)
}

func runCrash(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("crash", flag.ContinueOnError)
	var (
		kills    = fs.Int("kills", 20, "SIGKILLs to send")
		minUp    = fs.Duration("min-up", 300*time.Millisecond, "shortest time under load between ready and kill")
		maxUp    = fs.Duration("max-up", 2*time.Second, "longest time under load between ready and kill")
		early    = fs.Float64("early", 0.2, "share of kills that hit the hub while it starts")
		settle   = fs.Duration("settle", time.Second, "load after the last restart, before the clean stop")
		clients  = fs.Int("clients", 8, "concurrent exchange clients")
		people   = fs.Int("people", 2000, "synthetic people in the demo network")
		dir      = fs.String("dir", "", "directory for the data and the hub's log (default: a temporary one, removed if the run passes)")
		seed     = fs.Uint64("seed", 0, "random seed (0: from the clock)")
		child    = fs.Bool("child", false, "internal: run the hub on --data (the harness's child process)")
		data     = fs.String("data", "", "internal, with --child: the data directory")
		listen   = fs.String("listen", "127.0.0.1:0", "internal, with --child: the hub's address")
		logLevel = fs.String("log-level", "warn", "internal, with --child: the hub's log level")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads crash [flags]\n\nRuns the hub as a child process on a demo data directory under load, kills it with SIGKILL\nat random moments, restarts it, and verifies the audit trail, the receipts the clients got,\nand the integration and authorisation changes. Exits non-zero if anything is wrong.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *child {
		if *data == "" {
			fmt.Fprintln(fs.Output(), "--child needs --data")
			return errUsage
		}
		return crash.Child(ctx, *data, *listen, *people, newLogger(*logLevel))
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the crossroads binary: %w", err)
	}
	rep, err := crash.Run(ctx, crash.Options{
		Binary: bin, Dir: *dir, Kills: *kills, MinUp: *minUp, MaxUp: *maxUp, EarlyKills: *early,
		Settle: *settle, Clients: *clients, People: *people, Seed: *seed, Progress: os.Stderr,
	})
	if rep != nil {
		fmt.Print(rep.String())
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errors.New("verification failed")
	}
	return nil
}
