package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/crossroads-hub/crossroads/demo"
)

func init() {
	register("demo", "start a demo network and run its scenario", runDemo)
}

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "write ca.crt, certs/<participant>.crt|.key and network.yaml here (default: inside the data directory)")
	data := fs.String("data", "", "hub data directory (default: a new temporary directory)")
	listen := fs.String("listen", "127.0.0.1:8443", "address of the hub")
	people := fs.Int("people", 200, "number of synthetic people in the authentic sources")
	only := fs.Bool("scenario-only", false, "run the scenario and exit; non-zero if any step did not behave as expected")
	level := fs.String("log-level", "error", "hub log level while the demo runs")
	profile := fs.String("profile", "exchange", "which demo: "+profileNames())
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads demo [flags]\n\nStarts, on localhost, the hub, two authentic sources (population and employment registers)\nwith synthetic people, and client institutions; applies a demo network; runs a scenario\nshowing allowed exchanges, minimisation, each denial reason and a revoked certificate.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	o := demo.Options{Dir: *dir, DataDir: *data, Listen: *listen, People: *people, ScenarioOnly: *only, Logger: newLogger(*level)}
	run, ok := demoProfiles[*profile]
	if !ok {
		fmt.Fprintf(fs.Output(), "unknown profile %q: one of %s\n", *profile, profileNames())
		return errUsage
	}
	return run(ctx, o)
}

// demoProfiles are the demos: the exchange network (default) and the
// profiles that other files add in their init functions.
var demoProfiles = map[string]func(context.Context, demo.Options) error{
	"exchange": demo.Run,
}

func profileNames() string {
	names := make([]string, 0, len(demoProfiles))
	for n := range demoProfiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
