package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/bench"
)

func init() {
	register("bench", "benchmark the hub against a bare TLS proxy and the provider (in-process demo network)", runBench)
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		duration    = fs.Duration("duration", 10*time.Second, "measured window of each run")
		warmup      = fs.Duration("warmup", 2*time.Second, "warm-up of each run, not measured")
		concurrency = fs.Int("concurrency", 64, "closed loop: number of workers")
		rate        = fs.Float64("rate", 1000, "open loop: requests per second")
		people      = fs.Int("people", 10000, "synthetic people in the demo network (the subjects of the mix)")
		subjects    = fs.Int("subjects", 2000, "how many of the people the mix asks about (spread over the population)")
		denied      = fs.Float64("denied", 0.1, "share of the mix the hub denies (uncovered purpose), in [0, 1)")
		cpuprofile  = fs.String("cpuprofile", "", "write a CPU profile of the whole process during the closed-loop hub run to this file")
		openProfile = fs.String("open-cpuprofile", "", "write a CPU profile of the whole process during the open-loop hub run to this file")
		traceFile   = fs.String("trace", "", "write an execution trace (go tool trace) of the whole process during the open-loop hub run to this file")
		out         = fs.String("out", "", "also write the markdown to this file")
		skipOpen    = fs.Bool("skip-open", false, "skip the open-loop runs")
		skipClosed  = fs.Bool("skip-closed", false, "skip the closed-loop runs")
		level       = fs.String("log-level", "error", "hub log level")
		nodes       = fs.String("nodes", "", "multi-node mode: node counts to measure in one run, e.g. 1,2,3 ('serve' processes behind HAProxy; needs --database-url and --log-database)")
		dbURL       = fs.String("database-url", "", "multi-node mode: a fresh PostgreSQL database")
		logDB       = fs.String("log-database", "", "multi-node mode: MariaDB/MySQL DSN of the shared log")
		separate    = fs.Bool("separate", false, "run the hub as a process of its own, pinned to core 0 (taskset), the generator and provider on the other cores")
		hubChild    = fs.Bool("hub-child", false, "internal: the hub process of --separate (talks JSON lines on stdin/stdout)")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads bench [flags]\n\nStarts the demo network in this process (hub on 127.0.0.1, data in a temporary directory),\na bare TLS reverse proxy to the same population register with the same certificates, and\nruns the same mix against hub, bare proxy and provider: closed loop, then open loop.\nThe generator shares the machine with the hub; with --separate, the hub (and the bare proxy)\nrun as a process of their own, pinned to core 0, the generator and provider on the others.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *hubChild {
		return bench.ServeHub(ctx, bench.Options{People: *people, Logger: newLogger(*level)}, os.Stdin, os.Stdout)
	}
	if *nodes != "" {
		return runBenchNodes(ctx, *nodes, *dbURL, *logDB, min(*concurrency, 32), min(*people, 2000), *warmup, *duration, *out)
	}
	res, err := bench.Run(ctx, bench.Options{
		Duration: *duration, Warmup: *warmup, Concurrency: *concurrency, Rate: *rate,
		People: *people, Subjects: min(*subjects, max(*people-1, 1)), Denied: *denied, CPUProfile: *cpuprofile,
		OpenCPUProfile: *openProfile, Trace: *traceFile,
		SkipOpen: *skipOpen, SkipClosed: *skipClosed, Separate: *separate,
		Command:  "crossroads " + strings.Join(os.Args[1:], " "),
		Progress: os.Stderr, Logger: newLogger(*level),
	})
	if err != nil {
		return err
	}
	md := res.Markdown()
	fmt.Print(md)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	return nil
}
